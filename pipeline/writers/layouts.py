"""The QGIS print layouts of minemap.qgz: a one-page briefing and an atlas over the districts.

Written as the XML QGIS 3.22 itself writes for a `QgsPrintLayout` (attributes left out take
QGIS's defaults), so a team prints from QGIS without rebuilding title, legend and caveat.
"""

from __future__ import annotations

import math
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from .project import ProjectLayer, layer_ref, symbol
from .styles import legend_nodes

PAGE = (297.0, 210.0)  # A4 landscape, mm
MAP_BOX = (14.0, 26.0, 170.0, 172.0)  # x, y, width, height of the map on the page, mm
SIDE_X = 192.0  # left edge of the legend column, mm
SIDE_W = 98.0  # its width, mm
NORTH_ARROW = ":/images/north_arrows/layout_default_north_arrow.svg"  # QGIS's own, always there


# the atlas page's figures, from the district's row of districts.gpkg (evaluated by QGIS per page);
# attribute() is NULL, not an error, for a column a run did not write (P_res without released land)
FIGURES = "\n".join([
    'Figures for [% "district" %]',
    "Assessed: [% format_number(100 * \"assessed_share\", 0) %] % of [% format_number(\"area_km2\", 0) %] km²",
    "Mean P_res: [% format_number(coalesce(attribute(@atlas_feature, 'mean_residual'), \"mean_pc\"), 2) %]",
    "High or very high: [% format_number(\"km2_high\" + \"km2_very_high\", 1) %] km²",
    "Estimated remaining mines: [% format_number(\"remaining_mines\", 0) %]",
])


@dataclass(frozen=True)
class Layouts:
    """What both layouts show: `layers` top to bottom (also the legend), `coverage` the districts
    (the atlas is left out without them), the extent in the project CRS, the page texts."""

    out_dir: Path
    title: str
    subtitle: str
    layers: list[ProjectLayer]
    coverage: ProjectLayer | None
    extent: tuple[float, float, float, float]
    caveat: str
    run_date: str
    credits: str
    name_field: str = "district"
    atlas_layers: list[ProjectLayer] = field(default_factory=list)  # above `layers` on atlas pages (field tasks)
    atlas_boxes: list[tuple[float, float]] = field(default_factory=list)  # each district's bbox width, height (m)


def layouts_element(spec: Layouts) -> ET.Element:
    """<Layouts> holding "minemap briefing" and, with districts, "minemap districts atlas"."""
    root = ET.Element("Layouts")
    root.append(_layout("minemap briefing", spec, spec.title, spec.subtitle, atlas=False))
    if spec.coverage is not None:  # the page title is the district's name, evaluated by QGIS per page
        root.append(_layout("minemap districts atlas", spec, f'[% "{spec.name_field}" %]',
                            f"{spec.title}: {spec.subtitle}", atlas=True))
    return root


def view_settings(spec: Layouts) -> ET.Element | None:
    """The project's scales (Project Properties › View settings): the atlas pages' scales, which QGIS's
    layout designer and processing exports hand to the atlas ("predefined scales" mode)."""
    if spec.coverage is None or not atlas_scales(spec.atlas_boxes)[0]:
        return None
    view = ET.Element("ProjectViewSettings", UseProjectScales="1")
    scales = ET.SubElement(view, "Scales")
    for scale in atlas_scales(spec.atlas_boxes)[0]:
        ET.SubElement(scales, "Scale", Value=f"{scale:g}")
    return view


def _layout(name: str, spec: Layouts, heading: str, subheading: str, atlas: bool) -> ET.Element:
    layout = ET.Element("Layout", name=name, units="mm", printResolution="300", worldFileMap="")
    ET.SubElement(layout, "Snapper", snapToGrid="0", tolerance="5", snapToItems="1", snapToGuides="1")
    ET.SubElement(layout, "Grid", resUnits="mm", resolution="10", offsetUnits="mm", offsetY="0", offsetX="0")
    pages = ET.SubElement(layout, "PageCollection")
    pages.append(_fill("255,255,255,255"))
    page = _item(pages, "65638", (0, 0, *PAGE), uuid_=_uuid(name, "page"), zValue="0", background="true")
    page.append(_fill("255,255,255,255"))
    ET.SubElement(pages, "GuideCollection", visible="1")
    map_uuid = _uuid(name, "map")
    x, y, w, h = MAP_BOX
    m = _item(layout, "65639", MAP_BOX, uuid_=map_uuid, zValue="1", background="true", frame="true",
              keepLayerSet="true", followPreset="false", followPresetName="", drawCanvasItems="true",
              mapRotation="0", mapFlags="0", labelMargin="0,mm", isTemporal="0")
    xmin, ymin, xmax, ymax = _fit(spec.extent, w / h)
    ET.SubElement(m, "Extent", xmin=repr(xmin), ymin=repr(ymin), xmax=repr(xmax), ymax=repr(ymax))
    layer_set = ET.SubElement(m, "LayerSet")
    shown = [*spec.atlas_layers, *spec.layers] if atlas else spec.layers
    for layer in shown:
        lid, source, provider = layer_ref(layer, spec.out_dir)
        ET.SubElement(layer_set, "Layer", source=source, name=layer.title, provider=provider).text = lid
    m.append(_grid(name, xmax - xmin, dynamic=atlas))  # the atlas's scale changes with each district
    scales = atlas_scales(spec.atlas_boxes) if atlas and spec.atlas_boxes else None
    scales = scales if scales and scales[0] else None
    # Predefined (1): each page at the first project scale its district fits (see `atlas_scales`)
    ET.SubElement(m, "AtlasMap", atlasDriven="1" if atlas else "0", margin="0.1", scalingMode="1" if scales else "2")
    ET.SubElement(m, "labelBlockingItems")
    clip = ET.SubElement(m, "atlasClippingSettings", clippingType="1", restrictLayers="0", enabled="0",
                         forceLabelsInside="0")
    ET.SubElement(clip, "layersToClip")
    ET.SubElement(m, "itemClippingSettings", clippingType="1", clipSource="", enabled="0", forceLabelsInside="0")
    _label(layout, name, "title", heading, (x, 4, PAGE[0] - 2 * x, 9), 16, bold=True)
    _label(layout, name, "subtitle", subheading, (x, 13, PAGE[0] - 2 * x, 6), 10)
    _label(layout, name, "caveat", spec.caveat, (x, 19, PAGE[0] - 2 * x, 5), 9, colour="165,0,38,255")
    _legend(layout, name, [layer_ref(layer, spec.out_dir) + (layer.title, layer.kind, legend_nodes(layer.style)
                                                             if layer.kind == "raster" else ()) for layer in shown],
            map_uuid, by_map=atlas)
    _item(layout, "65640", (SIDE_X + SIDE_W - 16, 148, 12, 18), uuid_=_uuid(name, "north"), zValue="4",
          mapUuid=map_uuid, file=NORTH_ARROW, mode="0", resizeMode="0", northMode="0", northOffset="0", anchorPoint="0",
          pictureRotation="0", pictureWidth="12", pictureHeight="18", svgFillColor="0,0,0,255",
          svgBorderColor="0,0,0,255", svgBorderWidth="0.2", background="false")
    # the briefing's map scale is fixed: segments of a round 1, 2 or 5 × 10ⁿ km about 25 mm long; the
    # atlas's changes per district: QGIS fits segments to the bar's widths, which `atlas_scales` makes
    # give 1, 2 or 5 × 10ⁿ km at every page's scale
    per_segment = _nice((xmax - xmin) / 1000 * 25 / w)
    widest = scales[1] if scales else 20.0
    _item(layout, "65646", (SIDE_X, 172, SIDE_W - 10, 12), uuid_=_uuid(name, "scale"), zValue="3",
          mapUuid=map_uuid, style="Single Box", unitType="km", unitLabel="km", numMapUnitsPerScaleBarUnit="1",
          numSegments="2", numSegmentsLeft="0", numUnitsPerSegment=repr(per_segment),
          segmentSizeMode="1" if atlas else "0", minBarWidth=repr(2 * SHORTEST * widest),
          maxBarWidth=repr(2 * widest), height="3", labelBarSpace="3", boxContentSpace="1", alignment="0",
          background="false")
    _label(layout, name, "date", f"Run {spec.run_date}", (SIDE_X, 188, SIDE_W, 5), 8)
    _label(layout, name, "credits", spec.credits, (SIDE_X, 193, SIDE_W, 5), 8)
    if atlas and spec.coverage is not None:
        _label(layout, name, "figures", FIGURES, (SIDE_X, 104, SIDE_W - 20, 40), 8)
        lid, source, provider = layer_ref(spec.coverage, spec.out_dir)
        ET.SubElement(layout, "Atlas", coverageLayer=lid, coverageLayerName=spec.coverage.title,
                      coverageLayerSource=source, coverageLayerProvider=provider, enabled="1", hideCoverage="0",
                      filterFeatures="0", sortFeatures="1", sortKey=spec.name_field, sortAscending="1",
                      pageNameExpression=f'"{spec.name_field}"',
                      filenamePattern=f"'district_' || \"{spec.name_field}\"")
    return layout


def _item(parent: ET.Element, kind: str, box: tuple, uuid_: str, **attrs: str) -> ET.Element:
    x, y, w, h = box
    u = uuid_
    base = {"type": kind, "uuid": u, "templateUuid": u, "id": "", "groupUuid": "", "position": f"{x},{y},mm",
            "positionOnPage": f"{x},{y},mm", "size": f"{w},{h},mm", "referencePoint": "0", "itemRotation": "0",
            "visibility": "1", "positionLock": "false", "excludeFromExports": "0", "opacity": "1", "blendMode": "0",
            "frame": "false", "frameJoinStyle": "miter", "outlineWidthM": "0.3,mm"}
    item = ET.SubElement(parent, "LayoutItem", {**base, **attrs})
    ET.SubElement(item, "FrameColor", alpha="255", red="0", green="0", blue="0")
    ET.SubElement(item, "BackgroundColor", alpha="255", red="255", green="255", blue="255")
    return item


def _label(layout: ET.Element, name: str, key: str, text: str, box: tuple, size: int, bold: bool = False,
           colour: str = "0,0,0,255") -> None:
    """A text item; `[% expression %]` in `text` is evaluated by QGIS (the atlas title)."""
    item = _item(layout, "65641", box, uuid_=_uuid(name, key), zValue="5", labelText=text, htmlState="0",
                 halign="1", valign="32", marginX="0", marginY="0", background="false")
    weight = 75 if bold else 50
    ET.SubElement(item, "LabelFont", description=f"Sans Serif,{size},-1,5,{weight},0,0,0,0,0", style="")
    r, g, b, a = colour.split(",")
    ET.SubElement(item, "FontColor", red=r, green=g, blue=b, alpha=a)


def _legend(layout: ET.Element, name: str, layers: list[tuple[str, str, str, str, str, tuple[int, ...]]],
            map_uuid: str, by_map: bool = False) -> None:
    """A legend of the map's own layers only (a fixed list, not the whole project), in words: a
    raster shows its ramp only, not QGIS's band-name line ("Band 1: … (Gray)"); a marked ramp its
    labelled values (0, the class thresholds, 1), each in its colour. `by_map` (atlas pages): only
    what the page's map draws (no field tasks where their scale hides them)."""
    item = _item(layout, "65642", (SIDE_X, 26, SIDE_W, 110), uuid_=_uuid(name, "legend"), zValue="2", map_uuid=map_uuid,
                 title="Legend", resizeToContents="1", columnCount="1", symbolWidth="7", symbolHeight="4",
                 boxSpace="2", columnSpace="2", lineSpacing="1", wrapChar="", legendFilterByAtlas="0",
                 **({"legendFilterByMap": "1"} if by_map else {}),
                 splitLayer="0", equalColumnWidth="0", rasterBorder="1", rasterBorderColor="0,0,0,255",
                 rasterBorderWidth="0", titleAlignment="1", symbolAlignment="1", fontColor="#000000",
                 background="true")
    styles = ET.SubElement(item, "styles")
    for style, size, top in (("title", 11, 0), ("group", 9, 2), ("subgroup", 9, 2), ("symbol", 7, 1.5),
                             ("symbolLabel", 7, 1.5)):
        s = ET.SubElement(styles, "style", name=style, alignment="1", indent="0", marginTop=str(top),
                          marginBottom="2" if style == "title" else "0",
                          marginLeft="2" if style == "symbolLabel" else "0")
        ET.SubElement(s, "styleFont", description=f"Sans Serif,{size},-1,5,{75 if style != 'symbolLabel' else 50},"
                      "0,0,0,0,0", style="")
    tree = ET.SubElement(item, "layer-tree-group")
    ET.SubElement(tree, "customproperties")
    for lid, source, provider, title, kind, nodes in layers:  # (id, source, provider, title, kind, nodes)
        node = ET.SubElement(tree, "layer-tree-layer", id=lid, name=title, source=source, providerKey=provider,
                             checked="Qt::Checked", expanded="1", legend_exp="", patch_size="-1,-1",
                             legend_split_behavior="0")
        props = ET.SubElement(ET.SubElement(node, "customproperties"), "Option", type="Map")
        ET.SubElement(props, "Option", type="QString", name="legend/title-label", value=title)
        if kind == "raster":  # legend node 0 is the band's name, node 1 the ramp (or the marked values)
            # QGIS reads the order as one string, "1,3,5" (a string list only when of one item)
            ET.SubElement(props, "Option", type="QString", name="legend/node-order",
                          value=",".join(map(str, nodes or (1,))))


def _grid(name: str, width: float, dynamic: bool = False) -> ET.Element:
    """Coordinate grid in the project CRS (metres), about four lines across, thin grey, labelled
    left and below; `dynamic` (atlas pages): QGIS picks a round interval 30–60 mm apart per page."""
    step = _nice(width / 4)
    grid = ET.Element("ComposerMapGrid", name="grid", uuid=_uuid(name, "grid"), show="1", gridStyle="0",
                      intervalX=repr(step), intervalY=repr(step), offsetX="0", offsetY="0", crossLength="3",
                      unit="3" if dynamic else "0", blendMode="0", position="3", gridFrameStyle="0", gridFrameWidth="2",
                      gridFrameMargin="0", gridFramePenThickness="0.3", gridFramePenColor="0,0,0,255",
                      frameFillColor1="255,255,255,255", frameFillColor2="0,0,0,255", gridFrameSideFlags="15",
                      showAnnotation="1", annotationFormat="0", annotationPrecision="0", frameAnnotationDistance="1",
                      leftAnnotationDisplay="0", rightAnnotationDisplay="3", topAnnotationDisplay="3",
                      bottomAnnotationDisplay="0", leftAnnotationPosition="1", rightAnnotationPosition="1",
                      topAnnotationPosition="1", bottomAnnotationPosition="1", leftAnnotationDirection="1",
                      rightAnnotationDirection="1", topAnnotationDirection="0", bottomAnnotationDirection="0",
                      annotationExpression="", minimumIntervalWidth="30" if dynamic else "50",
                      maximumIntervalWidth="60" if dynamic else "100")
    ET.SubElement(grid, "lineStyle").append(symbol("line", "SimpleLine", {"line_color": "60,60,60,140",
                                                                          "line_width": "0.15", "line_style": "solid"}))
    return grid


def _fill(colour: str) -> ET.Element:
    return symbol("fill", "SimpleFill", {"color": colour, "style": "solid", "outline_style": "no"})


def _fit(extent: tuple[float, float, float, float], aspect: float) -> tuple[float, float, float, float]:
    """`extent` grown about its centre to the map item's width/height ratio (else QGIS stretches it)."""
    xmin, ymin, xmax, ymax = extent
    w, h = xmax - xmin, ymax - ymin
    if w / h < aspect:
        w = h * aspect
    else:
        h = w / aspect
    cx, cy = (xmin + xmax) / 2, (ymin + ymax) / 2
    return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2


def _nice(x: float) -> float:
    """1, 2 or 5 times a power of ten, at most `x`."""
    power = 10 ** math.floor(math.log10(x))
    return max(m * power for m in (1, 2, 5) if m * power <= x)


SHORTEST = 0.45  # the bar's least width, as a share of its widest: below ½, QGIS takes the first digit
ATLAS_MARGIN = 0.1  # around each district, at least (as QGIS's atlas margin)


def atlas_scales(boxes: list[tuple[float, float]]) -> tuple[list[float], float]:
    """The atlas's project scales and the scale bar's widest segment (mm), so that every page reads
    1, 2 or 5 × 10ⁿ km per segment. QGIS 3.22 fits a segment to the bar's width by taking the
    first significant digit of the longest one that fits (16 km → 10, 7.5 km → 7) and nothing
    makes it data-defined; so each district is shown at the least scale it fits with its margin
    at which that digit is 1, 2 or 5 (rounded to 2 significant digits), the widest segment (16–25
    mm) chosen to waste the least zoom over all districts. QGIS's "predefined scales" atlas mode
    picks the first listed scale a page's district fits."""
    w, h = MAP_BOX[2], MAP_BOX[3]
    needed = [n for n in (max(bw / w, bh / h) * 1000 * (1 + ATLAS_MARGIN) for bw, bh in boxes)
              if math.isfinite(n) and n > 0]  # an empty district has no box (its page keeps the last scale)
    if not needed:
        return [], 20.0
    best = None
    for widest in range(16, 26):
        scales = [_round_scale(n, widest) for n in needed]
        waste = max(s / n for s, n in zip(scales, needed))
        if best is None or waste < best[0] - 1e-9:
            best = (waste, sorted(set(scales)), float(widest))
    return best[1], best[2]


def _round_scale(needed: float, widest: float) -> float:
    """The least scale ≥ `needed`, of 2 significant digits, at which a segment `widest` mm long spans
    a length (km) whose first digit is 1, 2 or 5."""
    power = 10 ** (math.floor(math.log10(needed)) - 1)
    scale = math.ceil(needed / power - 1e-9) * power
    while _first_digit(scale * widest / 1e6) not in (1, 2, 5):
        power = 10 ** (math.floor(math.log10(scale)) - 1)
        scale = round(scale / power + 1) * power
    return float(scale)


def _first_digit(x: float) -> int:
    return int(x / 10 ** math.floor(math.log10(x)) + 1e-9)


def _uuid(layout: str, key: str) -> str:
    return "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"minemap/{layout}/{key}")) + "}"
