"""QGIS styles (.qml sidecars): QGIS applies FILE.qml to FILE.tif when it opens the layer."""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

RED_TO_GREEN = ["#1a9850", "#91cf60", "#d9ef8b", "#fee08b", "#fc8d59", "#d73027"]  # low → high risk


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


def pseudocolor(stops: list[Stop], discrete: bool = False) -> str:
    """A single-band pseudocolour style: interpolated ramp, or classes with upper bounds."""
    lo, hi = stops[0].value, stops[-1].value
    if discrete:
        hi = stops[-2].value if len(stops) > 1 else hi
    items = "\n".join(f'          <item alpha="255" value={quoteattr(_num(s.value))} '
                      f'color={quoteattr(s.color)} label={quoteattr(s.label)}/>' for s in stops)
    kind = "DISCRETE" if discrete else "INTERPOLATED"
    return (_header()
            + f'    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" alphaBand="-1"'
              f' classificationMin="{_num(lo)}" classificationMax="{_num(hi)}" nodataColor="">\n'
            + _min_max(lo, hi)
            + '      <rastershader>\n'
              f'        <colorrampshader colorRampType="{kind}" classificationMode="{2 if discrete else 1}" clip="0"'
              f' minimumValue="{_num(lo)}" maximumValue="{_num(hi)}" labelPrecision="2">\n'
            + items + '\n        </colorrampshader>\n      </rastershader>\n    </rasterrenderer>\n' + _footer())


def paletted(entries: list[Stop]) -> str:
    """A categorical style: one colour per integer value."""
    items = "\n".join(f'        <paletteEntry value="{int(e.value)}" color={quoteattr(e.color)} alpha="255"'
                      f' label={quoteattr(e.label)}/>' for e in entries)
    return (_header() + '    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">\n'
            + _min_max(entries[0].value, entries[-1].value)
            + '      <colorPalette>\n' + items + '\n      </colorPalette>\n    </rasterrenderer>\n' + _footer())


def ramp(lo: float, hi: float, colors: list[str], precision: int = 2) -> list[Stop]:
    """Evenly spaced stops from lo to hi, labelled with their values."""
    n = len(colors) - 1
    values = [lo + (hi - lo) * k / n for k in range(n + 1)]
    return [Stop(v, c, f"{v:.{precision}f}") for v, c in zip(values, colors)]


RISK_COLOURS = ["#1a9850", "#fee08b", "#fc8d59", "#d73027", "#67001f", "#40004b"]


@dataclass(frozen=True)
class Legend:
    """How a product is coloured: `kind` is "ramp" (interpolated), "classes" (each stop's value is
    the upper bound of its class) or "palette" (integer codes). The .qml styles and the PNG maps
    are both drawn from it, so they always agree."""

    kind: str
    stops: list[Stop]


INSUFFICIENT_COLOUR = "#9e9e9e"  # neutral grey: no colour of the risk ramp, never read as "low"
RELEASED_COLOURS = ["#f7fbff", "#c6dbef", "#6baed6", "#2171b5", "#08306b"]  # blue: apart from the risk ramp


def risk_class_legend(names: list[str], thresholds: list[float], min_evidence: int = 0,
                      symbol: str = "P_c") -> Legend:
    """Each class coloured and labelled with its name and `symbol` range; with `min_evidence`, code 0
    "insufficient evidence" in grey first."""
    bounds = [0.0, *thresholds, 1.0]
    stops = [Stop(k + 1, RISK_COLOURS[min(k, len(RISK_COLOURS) - 1)],
                  f"{name} ({symbol} {bounds[k]:g}–{bounds[k + 1]:g})") for k, name in enumerate(names)]
    if min_evidence > 0:
        stops.insert(0, Stop(0, INSUFFICIENT_COLOUR, f"insufficient evidence (< {min_evidence} of H_m, S_t, V_i)"))
    return Legend("palette", stops)


def product_legend(name: str, vmin: float | None, vmax: float | None) -> Legend:
    """A product's colours, using its value range where the scale is data-driven."""
    vmin = 0.0 if vmin is None else vmin
    vmax = 1.0 if vmax is None else vmax
    if name in ("contamination_probability", "residual_probability"):
        return Legend("ramp", ramp(0.0, 1.0, RED_TO_GREEN))
    if name == "released_share":
        return Legend("ramp", ramp(0.0, 1.0, RELEASED_COLOURS))
    if name == "evidence_count":
        return Legend("palette", [Stop(0, "#bdbdbd", "0 layers (no evidence)"), Stop(1, "#c6dbef", "1 layer"),
                                  Stop(2, "#6baed6", "2 layers"), Stop(3, "#08519c", "3 layers (all evidence)")])
    if name == "clearance_sustainability":
        return Legend("classes", [Stop(0.5, "#d73027", "≤ 0.50 unsustainable"),
                                  Stop(0.7, "#fc8d59", "0.50–0.70 below threshold"),
                                  Stop(0.85, "#91cf60", "0.70–0.85 sustainable (> 0.7)"),
                                  Stop(float("inf"), "#1a9850", "> 0.85 sustainable")])
    if name == "environmental_impact":
        bound = max(abs(vmin), abs(vmax), 1e-6)
        return Legend("ramp", ramp(-bound, bound, ["#2166ac", "#67a9cf", "#f7f7f7", "#ef8a62", "#b2182b"]))
    greens = ["#f7fcf5", "#c7e9c0", "#74c476", "#238b45", "#00441b"]
    lo, hi = max(vmin, 0.0), max(vmax, 1e-6)
    if hi <= lo:  # one value everywhere (a one-cell region, constant inputs): no ramp to spread
        return uniform_legend(lo, greens[2])
    return Legend("ramp", ramp(lo, hi, greens, precision=3))


def uniform_legend(value: float, color: str) -> Legend:
    """One colour for the one value a product takes (a ramp from a value to itself has no scale:
    QGIS and matplotlib both reject it); the label says it is every valid cell's value."""
    return Legend("classes", [Stop(value, color, f"{value:.4g} (every cell with a value)")])


def qml(legend: Legend) -> str:
    """The .qml text (QGIS applies FILE.qml to FILE.tif on open) for a legend."""
    if legend.kind == "palette":
        return paletted(legend.stops)
    return pseudocolor(legend.stops, discrete=legend.kind == "classes")


def risk_class_style(names: list[str], thresholds: list[float]) -> str:
    return qml(risk_class_legend(names, thresholds))


def product_style(name: str, vmin: float | None, vmax: float | None) -> str:
    return qml(product_legend(name, vmin, vmax))


def _num(v: float) -> str:
    return "inf" if v == float("inf") else repr(float(v))
