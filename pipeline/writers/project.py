"""OUT/minemap.qgz: a QGIS project with the products (styled as their .qml), the zones and
districts, and the evidence layers, grouped and ordered; every path relative to OUT.

Written as QGIS's own XML (no QGIS needed to run minemap); the tests open it in real QGIS.
"""

from __future__ import annotations

import os
import uuid
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pyproj import CRS

from .. import store
from ..grid import Grid
from .styles import legend_nodes

QGIS_VERSION = "3.22.16-Białowieża"


@dataclass(frozen=True)
class ProjectLayer:
    """One layer of the project. `source` is a path; `style` a renderer: the .qml text of a
    raster, or for vectors a key of SYMBOLS ("outline", "zones", "points", "released", "extent"…)."""

    title: str
    source: Path
    kind: str  # "raster" or "vector"
    crs: str  # WKT
    style: str
    visible: bool = True
    geometry: str = "Polygon"  # vectors: Point, Line or Polygon
    label_field: str | None = None  # a field name, or a QGIS expression with `label_expression`
    layer: str | None = None  # vectors: layer name inside the file
    categories: tuple[tuple[str, str, str], ...] = ()  # (value, colour "#rrggbb", label): by `category_field`
    category_field: str = ""
    label_expression: bool = False
    label_scale: float = 0.0  # labels drawn only at 1:label_scale and larger (0: always)
    draw_scale: float = 0.0  # the layer drawn only at 1:draw_scale and larger (0: always)


def write_project(path: Path, out_dir: Path, grid: Grid, title: str, groups: list[tuple[str, list[ProjectLayer]]],
                  extra: tuple[ET.Element, ...] = ()) -> None:
    """Write the .qgz (a zip holding one .qgs) at `path`; layer paths are made relative to `out_dir`.
    `extra` elements (e.g. the print layouts) go into the project as they are."""
    root = ET.Element("qgis", projectname=title, version=QGIS_VERSION)
    ET.SubElement(root, "homePath", path="")
    ET.SubElement(root, "title").text = title
    ET.SubElement(root, "autotransaction", active="0")
    ET.SubElement(root, "evaluateDefaultValues", active="0")
    ET.SubElement(root, "trust", active="0")
    ET.SubElement(root, "projectFlags", set="")
    ET.SubElement(root, "projectCrs").append(_srs(grid.crs.to_wkt()))
    tree = ET.SubElement(root, "layer-tree-group")
    ET.SubElement(tree, "customproperties")
    layers = ET.SubElement(root, "projectlayers")
    order = []
    for name, members in groups:
        group = ET.SubElement(tree, "layer-tree-group", name=name, checked="Qt::Checked", expanded="1",
                              groupLayer="")
        ET.SubElement(group, "customproperties")
        for layer in members:
            lid, source, provider = layer_ref(layer, out_dir)
            node = ET.SubElement(group, "layer-tree-layer", id=lid, name=layer.title, source=source,
                                 providerKey=provider, checked="Qt::Checked" if layer.visible else "Qt::Unchecked",
                                 expanded="1" if layer.visible else "0", legend_exp="", patch_size="-1,-1",
                                 legend_split_behavior="0")
            nodes = legend_nodes(layer.style) if layer.kind == "raster" else ()
            props = ET.SubElement(node, "customproperties")
            if nodes:  # a marked ramp: the labelled values only (0, the class thresholds, 1)
                # QGIS reads the order as one string, "1,3,5" (a string list only when of one item)
                ET.SubElement(ET.SubElement(props, "Option", type="Map"), "Option", type="QString",
                              name="legend/node-order", value=",".join(map(str, nodes)))
            layers.append(_maplayer(layer, lid, source))
            order.append(lid)
    ET.SubElement(root, "layerorder")
    props = ET.SubElement(root, "properties")
    paths = ET.SubElement(props, "Paths")
    ET.SubElement(paths, "Absolute", type="bool").text = "false"
    srs = ET.SubElement(props, "SpatialRefSys")  # QGIS reads projectCrs only with projections enabled
    ET.SubElement(srs, "ProjectionsEnabled", type="int").text = "1"
    authority = CRS.from_wkt(grid.crs.to_wkt()).to_authority()
    ET.SubElement(srs, "ProjectCrs", type="QString").text = ":".join(authority) if authority else ""
    canvas = ET.SubElement(root, "mapcanvas", name="theMapCanvas", annotationsVisible="1")
    ET.SubElement(canvas, "units").text = "meters"
    extent = ET.SubElement(canvas, "extent")
    left, bottom, right, top = grid.geobox.extent.boundingbox
    for key, value in zip(("xmin", "ymin", "xmax", "ymax"), (left, bottom, right, top)):
        ET.SubElement(extent, key).text = repr(float(value))
    ET.SubElement(canvas, "rotation").text = "0"
    ET.SubElement(canvas, "destinationsrs").append(_srs(grid.crs.to_wkt()))
    root.extend(extra)
    ET.indent(root)
    text = "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(root, encoding="unicode")
    tmp = path.with_name(f".{path.name}.tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{path.stem}.qgs", text)
    os.replace(tmp, path)


def layer_ref(layer: ProjectLayer, out_dir: Path) -> tuple[str, str, str]:
    """A layer's project id (stable between runs), its source relative to `out_dir`, its provider."""
    lid = f"{_slug(layer.title)}_{uuid.uuid5(uuid.NAMESPACE_URL, str(layer.source) + layer.title).hex[:12]}"
    return lid, _relative(layer.source, out_dir, layer.layer), "gdal" if layer.kind == "raster" else "ogr"


def _maplayer(layer: ProjectLayer, lid: str, source: str) -> ET.Element:
    attrs = {"type": layer.kind, "hasScaleBasedVisibilityFlag": "1" if layer.draw_scale else "0",
             "refreshOnNotifyEnabled": "0", "autoRefreshEnabled": "0", "styleCategories": "AllStyleCategories"}
    if layer.draw_scale:  # QGIS's minScale: the most zoomed-out scale the layer is drawn at
        attrs.update(minScale=repr(float(layer.draw_scale)), maxScale="0")
    if layer.kind == "vector":
        attrs.update(geometry=layer.geometry, labelsEnabled="1" if layer.label_field else "0", readOnly="0",
                     simplifyDrawingHints="1", simplifyDrawingTol="1", simplifyLocal="1", simplifyAlgorithm="0",
                     simplifyMaxScale="1")
    m = ET.Element("maplayer", attrs)
    ET.SubElement(m, "id").text = lid
    ET.SubElement(m, "datasource").text = source
    ET.SubElement(m, "layername").text = layer.title
    ET.SubElement(m, "srs").append(_srs(layer.crs))
    if layer.kind == "raster":
        ET.SubElement(m, "provider").text = "gdal"
        style = ET.fromstring(layer.style.split("\n", 1)[1] if layer.style.startswith("<!DOCTYPE") else layer.style)
        for child in style:
            m.append(child)
        return m
    ET.SubElement(m, "provider", encoding="UTF-8").text = "ogr"
    m.append(_categorized(layer.category_field, layer.categories) if layer.categories else _renderer(layer.style))
    if layer.label_field:
        m.append(_labels(layer.label_field, layer.style, expression=layer.label_expression, scale=layer.label_scale))
    ET.SubElement(m, "blendMode").text = "0"
    ET.SubElement(m, "featureBlendMode").text = "0"
    ET.SubElement(m, "layerOpacity").text = "1"
    return m


GRAY = """<qgis version="3.22.16" styleCategories="AllStyleCategories"><pipe>
<rasterrenderer type="singlebandgray" grayBand="1" gradient="BlackToWhite" opacity="0.8" alphaBand="-1" nodataColor="">
<rasterTransparency/><minMaxOrigin><limits>None</limits><extent>WholeRaster</extent><statAccuracy>Estimated</statAccuracy>
<cumulativeCutLower>0.02</cumulativeCutLower><cumulativeCutUpper>0.98</cumulativeCutUpper><stdDevFactor>2</stdDevFactor></minMaxOrigin>
<contrastEnhancement><minValue>{lo}</minValue><maxValue>{hi}</maxValue><algorithm>StretchToMinimumMaximum</algorithm></contrastEnhancement>
</rasterrenderer><brightnesscontrast brightness="0" contrast="0" gamma="1"/>
<huesaturation saturation="0" grayscaleMode="0" colorizeOn="0" colorizeStrength="100" colorizeRed="255" colorizeGreen="128" colorizeBlue="128" invertColors="0"/>
<rasterresampler maxOversampling="2"/></pipe><blendMode>0</blendMode></qgis>"""


def gray_style(lo: float, hi: float) -> str:
    """A grey stretch from lo to hi, for evidence rasters (e.g. drone anomaly intensity)."""
    return GRAY.format(lo=lo, hi=hi)


SYMBOLS = {  # symbol type, symbol layer class, properties
    "outline": ("fill", "SimpleFill", {"color": "0,0,0,0", "style": "no", "outline_color": "40,40,40,255",
                                       "outline_width": "0.5", "outline_style": "solid", "outline_width_unit": "MM"}),
    # zones: a thick black outline and a cross hatch, no fill colour (apart from the risk ramp's reds; #13)
    "zones": ("fill", "SimpleFill", {"color": "0,0,0,200", "style": "diagonal_x", "outline_color": "0,0,0,255",
                                     "outline_width": "0.9", "outline_style": "solid", "outline_width_unit": "MM"}),
    "fill": ("fill", "SimpleFill", {"color": "120,120,120,60", "style": "solid", "outline_color": "90,90,90,255",
                                    "outline_width": "0.2", "outline_style": "solid", "outline_width_unit": "MM"}),
    "cleared": ("fill", "SimpleFill", {"color": "31,120,180,110", "style": "solid", "outline_color": "31,120,180,255",
                                       "outline_width": "0.3", "outline_style": "solid", "outline_width_unit": "MM"}),
    "minefields": ("fill", "SimpleFill", {"color": "0,0,0,0", "style": "b_diagonal", "outline_color": "103,0,31,255",
                                          "outline_width": "0.4", "outline_style": "dash", "outline_width_unit": "MM"}),
    "released": ("fill", "SimpleFill", {"color": "33,113,181,90", "style": "f_diagonal", "outline_color": "8,48,107,255",
                                        "outline_width": "0.4", "outline_style": "solid", "outline_width_unit": "MM"}),
    "extent": ("fill", "SimpleFill", {"color": "0,0,0,0", "style": "no", "outline_color": "110,110,110,255",
                                      "outline_width": "0.5", "outline_style": "dot", "outline_width_unit": "MM"}),
    "points": ("marker", "SimpleMarker", {"name": "triangle", "color": "103,0,31,255", "size": "1.6",
                                          "size_unit": "MM", "outline_color": "255,255,255,255",
                                          "outline_width": "0.2", "outline_style": "solid"}),
}


def _renderer(style: str) -> ET.Element:
    r = ET.Element("renderer-v2", type="singleSymbol", symbollevels="0", enableorderby="0", forceraster="0")
    sym = hatch_symbol("0") if style == "not_assessed" else symbol(*SYMBOLS[style], name="0")
    if style == "outline":  # districts: the atlas page's own in a thick black outline (grey: no ramp colour)
        _define(sym.find("layer"), {"outlineWidth": "if($id = @atlas_featureid, 1.6, 0.5)",
                                    "outlineColor": "if($id = @atlas_featureid, '0,0,0,255', '40,40,40,255')"})
    ET.SubElement(r, "symbols").append(sym)
    ET.SubElement(r, "rotation")
    ET.SubElement(r, "sizescale")
    return r


def _categorized(field: str, categories: tuple[tuple[str, str, str], ...]) -> ET.Element:
    """One outline per value of `field` (the field tasks by class): the class colour over a white
    casing, no fill, so the products and the zones' hatch stay readable inside."""
    r = ET.Element("renderer-v2", type="categorizedSymbol", attr=field, symbollevels="0", enableorderby="0",
                   forceraster="0", referencescale="-1")
    cats, syms = ET.SubElement(r, "categories"), ET.SubElement(r, "symbols")
    for k, (value, colour, label) in enumerate(categories):
        ET.SubElement(cats, "category", render="true", symbol=str(k), value=value, label=label, type="string")
        syms.append(outline_symbol(colour, name=str(k)))
    ET.SubElement(r, "rotation")
    ET.SubElement(r, "sizescale")
    return r


TASK_INSET = 0.5  # mm: each task's box drawn this far inside its edges, clear of the zone's outline


def outline_symbol(colour: str, name: str = "") -> ET.Element:
    """A fill symbol drawing only an outline, `TASK_INSET` inside the polygon (the zone's black
    outline stays whole where a task's edge runs along it): `colour` ("#rrggbb") 0.3 mm over a
    white 0.7 mm casing."""
    rgb = ",".join(str(int(colour[i:i + 2], 16)) for i in (1, 3, 5)) + ",255"
    sym = ET.Element("symbol", type="fill", name=name, alpha="1", clip_to_extent="1", force_rhr="0")
    for line, width in (("255,255,255,230", "0.7"), (rgb, "0.3")):
        layer = symbol("line", "SimpleLine", {"line_color": line, "line_width": width, "line_width_unit": "MM",
                                               "line_style": "solid", "joinstyle": "miter", "capstyle": "square",
                                               "offset": repr(TASK_INSET), "offset_unit": "MM"}).find("layer")
        sym.append(layer)
    return sym


def _define(layer: ET.Element, expressions: dict[str, str]) -> None:
    """Data-defined properties (QGIS expressions) on a symbol layer, e.g. {"outlineWidth": "…"}."""
    props = ET.SubElement(ET.SubElement(layer, "data_defined_properties"), "Option", type="Map")
    ET.SubElement(props, "Option", type="QString", name="name", value="")
    defined = ET.SubElement(props, "Option", type="Map", name="properties")
    for key, expression in expressions.items():
        prop = ET.SubElement(defined, "Option", type="Map", name=key)
        ET.SubElement(prop, "Option", type="bool", name="active", value="true")
        ET.SubElement(prop, "Option", type="QString", name="expression", value=expression)
        ET.SubElement(prop, "Option", type="int", name="type", value="3")
    ET.SubElement(props, "Option", type="QString", name="type", value="collection")


def symbol(kind: str, cls: str, props: dict[str, str], name: str = "") -> ET.Element:
    """A QGIS <symbol> of one symbol layer (`cls`, e.g. SimpleFill) with `props`."""
    sym = ET.Element("symbol", type=kind, name=name, alpha="1", clip_to_extent="1", force_rhr="0")
    sl = ET.SubElement(sym, "layer", {"class": cls, "enabled": "1", "pass": "0", "locked": "0"})
    options = ET.SubElement(sl, "Option", type="Map")
    for k, v in props.items():
        ET.SubElement(options, "Option", type="QString", name=k, value=v)
    return sym


# not assessed (issue #20): the PNG maps' and briefing's grey hatch on a light grey face, as
# line-pattern lines (scaled for print, unlike Qt's brush patterns), apart from every ramp colour
HATCH_FACE, HATCH_LINE = "224,224,224,255", "110,110,110,255"


def hatch_symbol(name: str = "") -> ET.Element:
    """A fill symbol: a light grey face, then grey lines 1.2 mm apart at 135° (as "\\" on the maps)."""
    sym = symbol("fill", "SimpleFill", {"color": HATCH_FACE, "style": "solid", "outline_color": HATCH_LINE,
                                         "outline_width": "0.2", "outline_style": "solid",
                                         "outline_width_unit": "MM"}, name=name)
    pattern = ET.SubElement(sym, "layer", {"class": "LinePatternFill", "enabled": "1", "pass": "0", "locked": "0"})
    options = ET.SubElement(pattern, "Option", type="Map")
    for k, v in {"angle": "135", "color": HATCH_LINE, "distance": "1.2", "distance_unit": "MM", "line_width": "0.25",
                 "line_width_unit": "MM", "offset": "0", "offset_unit": "MM"}.items():
        ET.SubElement(options, "Option", type="QString", name=k, value=v)
    pattern.append(symbol("line", "SimpleLine", {"line_color": HATCH_LINE, "line_width": "0.25",
                                                 "line_width_unit": "MM", "line_style": "solid",
                                                 "capstyle": "flat"}, name=f"@{name}@1"))
    return sym


def _labels(field: str, kind: str = "", expression: bool = False, scale: float = 0.0) -> ET.Element:
    """Labels that never overlap (QGIS drops a label with no free place): zone ranks first
    (priority 9), moved around their centroid 1 mm if need be; field task IDs next (priority 6,
    smaller, over their centroid, only at `scale` and larger); district names (priority 3) over the
    centroid. Zone interiors are obstacles to the others; task and district boundaries too, so no
    label sits on a border. Every obstacle weighs 1: with the zones' interiors at 2, QGIS 3.22
    placed no task ID at all (they all lie in zones; measured in tests/test_qgis.py)."""
    zones, tasks = kind == "zones", kind == "tasks"
    labeling = ET.Element("labeling", type="simple")
    settings = ET.SubElement(labeling, "settings", calloutType="simple")
    text = ET.SubElement(settings, "text-style", fieldName=field, isExpression="1" if expression else "0",
                         fontFamily="Sans Serif", fontSize="7" if tasks else "9", fontSizeUnit="Point",
                         fontWeight="50" if tasks else "75", namedStyle="Regular" if tasks else "Bold",
                         textColor="30,30,30,255", textOpacity="1", fontItalic="0", fontUnderline="0",
                         fontStrikeout="0", fontLetterSpacing="0", fontWordSpacing="0", blendMode="0",
                         multilineHeight="1", allowHtml="0", capitalization="0", previewBkgrdColor="255,255,255,255")
    ET.SubElement(text, "text-buffer", bufferDraw="1", bufferSize="0.8", bufferSizeUnits="MM",
                  bufferColor="255,255,255,255", bufferOpacity="0.85", bufferNoFill="1", bufferJoinStyle="128",
                  bufferBlendMode="0")
    ET.SubElement(settings, "text-format", wrapChar="", autoWrapLength="0", multilineAlign="3", plussign="0",
                  reverseDirectionSymbol="0", placeDirectionSymbol="0", formatNumbers="0", decimals="3",
                  addDirectionSymbol="0", leftDirectionSymbol="<", rightDirectionSymbol=">",
                  useMaxLineLengthForAutoWrap="1")
    ET.SubElement(settings, "placement", placement="0" if zones else "1", placementFlags="10", centroidInside="1",
                  centroidWhole="0", fitInPolygonOnly="0", offsetType="0",
                  priority="9" if zones else "6" if tasks else "3",
                  dist="1" if zones else "0",
                  xOffset="0", yOffset="0", offsetUnits="MM", quadOffset="4", overrunDistance="0",
                  repeatDistance="0", rotationAngle="0", maxCurvedCharAngleIn="25", maxCurvedCharAngleOut="-25",
                  layerType="PolygonGeometry", geometryGenerator="", geometryGeneratorEnabled="0",
                  geometryGeneratorType="PointGeometry", polygonPlacementFlags="2", preserveRotation="1",
                  overlapHandling="PreventOverlap", lineAnchorPercent="0.5", lineAnchorType="0",
                  lineAnchorClipping="0", distUnits="MM", labelOffsetMapUnitScale="3x:0,0,0,0,0,0",
                  distMapUnitScale="3x:0,0,0,0,0,0", predefinedPositionOrder="TR,TL,BR,BL,R,L,TSR,BSR",
                  repeatDistanceUnits="MM", overrunDistanceUnit="MM")
    ET.SubElement(settings, "rendering", obstacle="1", obstacleType="0" if zones else "1",
                  obstacleFactor="1", displayAll="0",
                  upsidedownLabels="0", labelPerPart="0", mergeLines="0", minFeatureSize="0", limitNumLabels="0",
                  maxNumLabels="2000", scaleVisibility="1" if scale else "0", scaleMin="0",
                  scaleMax=repr(float(scale)) if scale else "0", zIndex="0",
                  fontLimitPixelSize="0", fontMinPixelSize="3", fontMaxPixelSize="10000", drawLabels="1",
                  unplacedVisibility="0")
    return labeling


def _srs(wkt: str) -> ET.Element:
    crs = CRS.from_wkt(wkt)
    srs = ET.Element("spatialrefsys", nativeFormat="Wkt")
    ET.SubElement(srs, "wkt").text = crs.to_wkt("WKT2_2019")
    authority = crs.to_authority()
    ET.SubElement(srs, "authid").text = f"{authority[0]}:{authority[1]}" if authority else ""
    ET.SubElement(srs, "description").text = crs.name
    ET.SubElement(srs, "geographicflag").text = "true" if crs.is_geographic else "false"
    return srs


def _relative(source: Path, out_dir: Path, layer: str | None) -> str:
    if store.is_url(source):  # an object in a store: QGIS reads it through GDAL's virtual file systems
        return store.gdal_path(source)
    rel = os.path.relpath(source, out_dir)
    rel = rel if rel.startswith("..") else f"./{rel}"
    return f"{rel}|layername={layer}" if layer else rel


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text.lower()).strip("_")
