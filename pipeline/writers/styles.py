"""QGIS styles (.qml sidecars): QGIS applies FILE.qml to FILE.tif when it opens the layer."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, replace
from xml.sax.saxutils import quoteattr

from ..formulas import SUSTAINABLE

# Colour-vision-safe palettes (no red–green pair; "low" never green) from ColorBrewer (Brewer, Penn
# State); tests/test_colours.py checks them under a deuteranopia simulation (Machado 2009).
YL_OR_RD = ["#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026"]  # ColorBrewer YlOrRd-6: probabilities
PU_OR = ["#5e3c99", "#b2abd2", "#f7f7f7", "#fdb863", "#e66101"]  # ColorBrewer PuOr-5 reversed: E < 0 purple, > 0 orange
BU_PU = ["#edf8fb", "#b3cde3", "#8c96c6", "#8856a7", "#810f7c"]  # ColorBrewer BuPu-5: R_e (0 pale; no grey-looking teal)


@dataclass(frozen=True)
class Stop:
    value: float
    color: str
    label: str


def _header() -> str:
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" \
           '<qgis version="3.22.16" styleCategories="AllStyleCategories">\n  <pipe>\n'


def _footer() -> str:
    return ('    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>\n'
            '    <huesaturation saturation="0" grayscaleMode="0" colorizeOn="0" colorizeStrength="100"'
            ' colorizeRed="255" colorizeGreen="128" colorizeBlue="128" invertColors="0"/>\n'
            '    <rasterresampler maxOversampling="2"/>\n  </pipe>\n  <blendMode>0</blendMode>\n</qgis>\n')


def _min_max(lo: float, hi: float) -> str:
    return ('      <rasterTransparency/>\n      <minMaxOrigin><limits>None</limits><extent>WholeRaster</extent>'
            '<statAccuracy>Exact</statAccuracy><cumulativeCutLower>0.02</cumulativeCutLower>'
            '<cumulativeCutUpper>0.98</cumulativeCutUpper><stdDevFactor>2</stdDevFactor></minMaxOrigin>\n')


def pseudocolor(stops: list[Stop], discrete: bool = False, marks: tuple[Stop, ...] = ()) -> str:
    """A single-band pseudocolour style: interpolated ramp, or classes with upper bounds. With `marks`
    (a ramp's labelled values), the legend lists those values, each in its ramp colour, and QGIS
    draws the same ramp (a mark's colour lies on it); the other stops are unlabelled."""
    lo, hi = stops[0].value, stops[-1].value
    if discrete:
        hi = stops[-2].value if len(stops) > 1 else hi
    legend = ""
    if marks:
        labels = {m.value: m.label for m in marks}
        stops = sorted({s.value: Stop(s.value, s.color, labels.get(s.value, "")) for s in
                        [*stops, *(Stop(m.value, ramp_colour(stops, m.value), m.label) for m in marks)]}.values(),
                       key=lambda s: s.value)
        legend = ('\n          <rampLegendSettings direction="0" prefix="" suffix="" orientation="2"'
                  ' useContinuousLegend="0" minimumLabel="" maximumLabel=""/>')
    items = "\n".join(f'          <item alpha="255" value={quoteattr(_num(s.value))} '
                      f'color={quoteattr(s.color)} label={quoteattr(s.label)}/>' for s in stops) + legend
    kind = "DISCRETE" if discrete else "INTERPOLATED"
    return (_header()
            + f'    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" alphaBand="-1"'
              f' classificationMin="{_num(lo)}" classificationMax="{_num(hi)}" nodataColor="">\n'
            + _min_max(lo, hi)
            + '      <rastershader>\n'
              f'        <colorrampshader colorRampType="{kind}" classificationMode="{2 if discrete else 1}" clip="0"'
              f' minimumValue="{_num(lo)}" maximumValue="{_num(hi)}" labelPrecision="2">\n'
            + items + '\n        </colorrampshader>\n      </rastershader>\n    </rasterrenderer>\n' + _footer())


def ramp_colour(stops: list[Stop], value: float) -> str:
    """The colour an interpolated ramp gives `value` (linear in RGB between stops, as QGIS and
    matplotlib both draw it)."""
    for a, b in zip(stops, stops[1:]):
        if a.value <= value <= b.value:
            t = (value - a.value) / (b.value - a.value)
            ca, cb = (tuple(int(c.color[i:i + 2], 16) for i in (1, 3, 5)) for c in (a, b))
            return "#" + "".join(f"{round(x + (y - x) * t):02x}" for x, y in zip(ca, cb))
    return stops[0].color if value < stops[0].value else stops[-1].color


def legend_nodes(style: str) -> tuple[int, ...]:
    """The legend lines of a .qml to show in QGIS (its `legend/node-order`; () all): a marked ramp's
    labelled values, after the band's name (line 0)."""
    if "useContinuousLegend" not in style:
        return ()
    shader = ET.fromstring(style.split("\n", 1)[1] if style.startswith("<!DOCTYPE") else style).find(
        ".//colorrampshader")
    settings = shader.find("rampLegendSettings") if shader is not None else None
    if settings is None or settings.get("useContinuousLegend") != "0":
        return ()
    return tuple(k + 1 for k, item in enumerate(shader.findall("item")) if item.get("label"))


def paletted(entries: list[Stop]) -> str:
    """A categorical style: one colour per integer value."""
    items = "\n".join(f'        <paletteEntry value="{int(e.value)}" color={quoteattr(e.color)} alpha="255"'
                      f' label={quoteattr(e.label)}/>' for e in entries)
    return (_header() + '    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">\n'
            + _min_max(entries[0].value, entries[-1].value)
            + '      <colorPalette>\n' + items + '\n      </colorPalette>\n    </rasterrenderer>\n' + _footer())


def ramp(lo: float, hi: float, colors: list[str]) -> list[Stop]:
    """Evenly spaced stops from lo to hi, labelled with their values."""
    n = len(colors) - 1
    values = [lo + (hi - lo) * k / n for k in range(n + 1)]
    return [Stop(v, c, f"{v:.4g}") for v, c in zip(values, colors)]


# risk classes low → high: pale yellow, orange, red, dark red (YlOrRd), dark purple (ColorBrewer RdPu-9's darkest)
RISK_COLOURS = ["#ffffb2", "#fecc5c", "#fd8d3c", "#e31a1c", "#800026", "#49006a"]


@dataclass(frozen=True)
class Legend:
    """How a product is coloured: `kind` is "ramp" (interpolated), "classes" (each stop's value is
    the upper bound of its class) or "palette" (integer codes). The .qml styles and the PNG maps
    are both drawn from it, so they always agree."""

    kind: str
    stops: list[Stop]
    title: str = ""  # in words with the unit, e.g. "Contamination probability P_c (0–1)"
    marks: tuple[Stop, ...] = ()  # a ramp's values its QGIS legend lists (0, the class thresholds, 1)


INSUFFICIENT_COLOUR = "#9e9e9e"  # neutral grey: no colour of the risk ramp, never read as "low"
RELEASED_COLOURS = ["#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b"]  # blue: apart from the risk ramp


DIRECT_WORDS = "or a mine record, minefield or hazard: minemap's rule"


def risk_class_legend(names: list[str], thresholds: list[float], min_evidence: int | str = 0,
                      symbol: str = "P_c", direct_class: str | None = None) -> Legend:
    """Each class coloured and labelled with its name and `symbol` range; with `min_evidence` (a
    count, or the words of what is too little), code 0 "insufficient evidence" in grey first; the
    `direct_class` says that direct evidence lifts a cell to it (issue #20)."""
    bounds = [0.0, *thresholds, 1.0]
    stops = [Stop(k + 1, colour, f"{name} ({symbol} {bounds[k]:g}–{bounds[k + 1]:g}"
                                 f"{', ' + DIRECT_WORDS if name == direct_class else ''})")
             for k, (name, colour) in enumerate(zip(names, spread(RISK_COLOURS, len(names))))]
    if min_evidence:
        words = min_evidence if isinstance(min_evidence, str) else \
            f"fewer than {min_evidence} of: mine records, soil map, drone survey"
        stops.insert(0, Stop(0, INSUFFICIENT_COLOUR, f"insufficient evidence ({words})"))
    return Legend("palette", stops, f"Risk class (from {symbol})")


def spread(colours: list[str], n: int) -> list[str]:
    """`n` colours from first to last of `colours`, evenly picked (4 of 6: 1st, 3rd, 4th, 6th), or
    interpolated when there are more classes than colours."""
    if n <= 1:
        return colours[:n]
    if n <= len(colours):
        return [colours[round(k * (len(colours) - 1) / (n - 1))] for k in range(n)]
    from matplotlib.colors import LinearSegmentedColormap, to_hex
    cmap = LinearSegmentedColormap.from_list("spread", colours)
    return [to_hex(cmap(k / (n - 1))) for k in range(n)]


CSC_BREAKS = [(0.5, "#e66101", "unsustainable"), (SUSTAINABLE, "#fdb863", "below threshold"),
              (0.85, "#92c5de", f"sustainable (> {SUSTAINABLE:g})"), (math.inf, "#0571b0", "sustainable")]  # orange | blue
EVIDENCE_STOPS = [Stop(0, "#bdbdbd", "0 layers (no evidence)"), Stop(1, "#c6dbef", "1 layer"),
                  Stop(2, "#6baed6", "2 layers"), Stop(3, "#08519c", "3 layers (all evidence)")]


def ramp_legend(lo: float, hi: float, colours: list[str], title: str,
                natural: tuple[float, float] = (0.0, 1.0)) -> Legend:
    """An interpolated ramp over [lo, hi]; an end inside the `natural` range of the values says
    that values beyond it take the end colour."""
    stops = ramp(lo, hi, colours)
    if lo > natural[0]:  # values below lo are drawn in the first colour: say so
        stops[0] = Stop(lo, stops[0].color, f"≤ {stops[0].label}")
    if hi < natural[1]:
        stops[-1] = Stop(hi, stops[-1].color, f"≥ {stops[-1].label}")
    return Legend("ramp", stops, title)


def csc_legend(lo: float, hi: float, title: str) -> Legend:
    """Classes around the paper's CSC threshold (`SUSTAINABLE`), bounded by the range [lo, hi]."""
    # the breaks inside the range; the last class is the one holding hi, open upwards
    holding_hi = next(b for b in CSC_BREAKS if b[0] >= hi)
    breaks = [b for b in CSC_BREAKS if lo < b[0] < hi] + [(math.inf, *holding_hi[1:])]
    bounds = [b[0] for b in breaks[:-1]]
    labels = ([f"≤ {bounds[0]:.2f}"] if bounds else []) + [f"{a:.2f}–{z:.2f}" for a, z in zip(bounds, bounds[1:])] \
        + [f"> {bounds[-1]:.2f}" if bounds else "all"]
    return Legend("classes", [Stop(b[0], b[1], f"{text} {b[2]}") for b, text in zip(breaks, labels)], title)


def qml(legend: Legend) -> str:
    """The .qml text (QGIS applies FILE.qml to FILE.tif on open) for a legend."""
    if legend.kind == "palette":
        return paletted(legend.stops)
    return pseudocolor(legend.stops, discrete=legend.kind == "classes", marks=legend.marks)


def _num(v: float) -> str:
    return "inf" if v == float("inf") else repr(float(v))


# field-facing words on maps, pages and layouts (issue #20 §9); the symbols stay in the technical
# sections (equations, run.json, the product files' tags)
E_UNITS = "mines per km² minus percentage points cleared"


def in_field_words(name: str, legend: Legend, not_assessed: str = "", layers: str = "") -> Legend:
    """`legend` as the field reads it: the risk classes' code 0 named as the maps' hatch
    (`not_assessed`, the run's rule in words), E's unit in words, the evidence count's `layers`
    in words."""
    if name == "risk_class" and not_assessed:
        return replace(legend, stops=[Stop(s.value, s.color, not_assessed) if s.value == 0 else s
                                      for s in legend.stops])
    if name == "environmental_impact":
        return replace(legend, title=f"Environmental impact E ({E_UNITS})")
    if name == "evidence_count" and layers:
        return replace(legend, title=f"Evidence layers behind P_c (of {layers})")
    return legend
