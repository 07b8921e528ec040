"""PNG maps of the products for briefings: the .qml colours, a legend with units, scale bar,
north arrow, district outlines and names, and a title with the date drawn.

Drawn with matplotlib's object API only (Figure + FigureCanvasAgg; no pyplot, which keeps
global state and is not thread-safe, and no geopandas plotting, which imports pyplot), from the
file's overviews (a decimated read), so a 121 M-cell product maps in about a second.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import textwrap
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib
import numpy as np
import rasterio
import shapely
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection
from matplotlib.colors import BoundaryNorm, Colormap, LinearSegmentedColormap, ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.image import imsave
from matplotlib.patches import Patch, Rectangle
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar
from rasterio.enums import Resampling

from . import assessed
from .styles import Legend

if TYPE_CHECKING:
    import geopandas

    from ..outdir import Kept

MAP_MAX_W_IN, MAP_MAX_H_IN = 7.0, 7.5  # the map's box; a tall or wide raster is fitted inside it
MAP_MIN_W_IN, MAP_MIN_H_IN = 3.5, 3.0
LEGEND_W_IN = 3.2  # room right of the map (trimmed away on save when the legend is narrower)
TITLE_IN, MARGIN_IN = 0.95, 0.3  # title lines above the map, margin below it
TITLE_CHAR_IN, TITLE_LINE_IN = 0.135, 0.27  # a 14 pt bold title: inches per character (DejaVu, wide), per line
OUTLINE = "#333333"
NODATA_HATCH = "#c8c8c8"  # light grey diagonal lines on white: "no data" on the PNG maps
MAP_STYLE = "2"  # in every map's key: raise it when the drawing changes (kept maps are drawn again)


def render_map(tif: Path, png: Path, *, title: str, subtitle: str, unit: str, legend: Legend,
               districts: geopandas.GeoDataFrame | None = None, name_field: str = "name",
               max_pixels: int | None = None, dpi: int = 200, stamp: str = "",
               kept: Kept | None = None, hidden: assessed.NotAssessed | None = None) -> tuple[str, bool]:
    """Write `png`, a map of band 1 of `tif` coloured exactly as `legend` (so it matches QGIS).

    `districts` must already be in the raster's CRS. The file is replaced atomically, so a reader
    never sees half a PNG. The raster is read no finer than the map box at `dpi` needs.
    Returns the map's key (`map_key`: everything it shows but `stamp`, the date written before
    `subtitle`) and whether `kept` (an earlier run's map of that key) was copied instead of drawing.
    `hidden`: where the cells were not assessed, drawn as a grey hatch over whatever they hold.
    The PNG's "minemap:map" text says where the map lies in it (pixel box and map extent).
    """
    tif, png = Path(tif), Path(png)
    max_pixels = max_pixels or math.ceil(max(MAP_MAX_W_IN, MAP_MAX_H_IN) * dpi)
    with rasterio.open(tif) as ds:
        # a decimated read: GDAL serves it from the internal overviews instead of every cell
        scale = max(1.0, max(ds.width, ds.height) / max_pixels)
        shape = (max(1, round(ds.height / scale)), max(1, round(ds.width / scale)))
        data = ds.read(1, out_shape=shape, masked=True, resampling=Resampling.nearest)
        b = ds.bounds
        metres = ds.crs is None or ds.crs.is_projected
    mask = hidden.read(data) if hidden is not None else None
    key = map_key(data, tuple(b), metres, title, subtitle, unit, legend, districts, name_field, dpi,
                  (hidden.label, cells_digest(np.ma.MaskedArray(mask))) if mask is not None else None)
    png.parent.mkdir(parents=True, exist_ok=True)
    if kept is not None and kept.reuse(key, png):
        return key, True
    subtitle = f"{stamp} · {subtitle}" if stamp and subtitle else stamp or subtitle
    width_m, height_m = b.right - b.left, b.top - b.bottom
    fit = min(MAP_MAX_W_IN / width_m, MAP_MAX_H_IN / height_m)  # inches per map unit
    # a thin strip still gets a box big enough for the legend, scale bar and arrow: white around it
    map_w_in, map_h_in = max(width_m * fit, MAP_MIN_W_IN), max(height_m * fit, MAP_MIN_H_IN)
    cx, cy, half_w, half_h = (b.left + b.right) / 2, (b.bottom + b.top) / 2, map_w_in / fit / 2, map_h_in / fit / 2
    # a long title (a change map naming its runs) wraps to the map's and legend's width, never cut
    lines = textwrap.wrap(title, max(20, int((map_w_in + LEGEND_W_IN - 0.3) / TITLE_CHAR_IN))) or [""]
    extra_in = TITLE_LINE_IN * (len(lines) - 1)
    fig_w_in, fig_h_in = map_w_in + LEGEND_W_IN + 0.3, map_h_in + TITLE_IN + extra_in + MARGIN_IN
    fig = Figure(figsize=(fig_w_in, fig_h_in), dpi=dpi, facecolor="white")
    FigureCanvasAgg(fig)
    left = 0.3 / fig_w_in
    ax = fig.add_axes((left, MARGIN_IN / fig_h_in, map_w_in / fig_w_in, map_h_in / fig_h_in))
    ax.set_facecolor("white")  # nodata is transparent: the background shows through
    # no data (outside the region, or no value) hatched in light grey under the raster, so it never
    # reads as a near-white colour of a ramp (E = 0, P_c 0)
    ax.add_patch(Rectangle((b.left, b.bottom), width_m, height_m, facecolor="white", edgecolor=NODATA_HATCH,
                           hatch="////", linewidth=0, zorder=0))
    # coloured first (nodata transparent), then resampled to the page by nearest neighbour: only
    # the legend's exact colours appear, class breaks are decided on the file's values
    ax.imshow(coloured(data, legend), extent=(b.left, b.right, b.bottom, b.top), interpolation="nearest")
    if mask is not None:  # over the cells' colours (if any): never a ramp colour there
        assessed.draw(ax, mask, (b.left, b.right, b.bottom, b.top), zorder=2)
    image = ScalarMappable(*reversed(_colours(legend)))  # for the colour bar
    if districts is not None and len(districts):
        _districts(ax, districts, name_field)
    ax.set_xlim(cx - half_w, cx + half_w)
    ax.set_ylim(cy - half_h, cy + half_h)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if metres:
        _scale_bar(ax, 2 * half_w, 2 * half_h)
    north_arrow(ax)
    fig.text(left, 1 - 0.15 / fig_h_in, "\n".join(lines), fontsize=14, fontweight="bold", va="top", linespacing=1.2)
    fig.text(left, 1 - (0.55 + extra_in) / fig_h_in, subtitle, fontsize=8.5, color="#444444", va="top")
    legend_x = (0.3 + map_w_in + 0.3) / fig_w_in
    mid = (MARGIN_IN + map_h_in / 2) / fig_h_in
    no_data = Patch(facecolor="white", edgecolor=NODATA_HATCH, hatch="////", label="no data")
    extra = [no_data] if mask is None else [assessed.legend_patch(textwrap.fill(hidden.label, 34)), no_data]
    if legend.kind == "ramp":
        half = min(2.2, map_h_in / 2.5) / fig_h_in
        bar = fig.colorbar(image, cax=fig.add_axes((legend_x, mid - half, 0.22 / fig_w_in, 2 * half)))
        bar.set_ticks([s.value for s in legend.stops], labels=[s.label for s in legend.stops])
        bar.ax.set_title(legend_title(legend, unit), fontsize=9, loc="left", pad=8)
        fig.legend(handles=extra, loc="upper left", bbox_to_anchor=(legend_x - 0.1 / fig_w_in, mid - half - 0.1 / fig_h_in),
                   fontsize=8, frameon=False)
    else:
        handles = [Patch(facecolor=s.color, edgecolor="#555555", label=s.label) for s in legend.stops] + extra
        fig.legend(handles=handles, title=legend_title(legend, unit), loc="center left", bbox_to_anchor=(legend_x - 0.1 / fig_w_in, mid),
                   fontsize=8, title_fontsize=9, frameon=False, alignment="left")
    tmp = png.with_name(f".{png.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # unique per writer
    try:
        pixels, (x0, y0) = _drawn_and_trimmed(fig, pad_inches=0.15)
        box = ax.get_window_extent()  # display pixels, origin bottom left
        h = fig.canvas.get_width_height()[1]
        where = {"box_px": [round(box.x0 - x0, 2), round(h - box.y1 - y0, 2), round(box.x1 - x0, 2),
                            round(h - box.y0 - y0, 2)], "view": [*ax.get_xlim(), *ax.get_ylim()]}
        imsave(tmp, pixels, format="png", metadata={"Title": title, "Description": subtitle,
                                                    "minemap:map": json.dumps(where)}, pil_kwargs={"compress_level": 3})
        os.replace(tmp, png)
    finally:
        tmp.unlink(missing_ok=True)
    return key, False


def map_key(data: np.ma.MaskedArray, bounds: tuple, metres: bool, title: str, subtitle: str, unit: str,
            legend: Legend, districts: geopandas.GeoDataFrame | None, name_field: str, dpi: int,
            hidden: tuple | None = None) -> str:
    """A hash of everything a map shows but its date: same key, same drawing (so an update keeps
    the maps of products whose cells did not change, see `outdir.Kept`)."""
    h = hashlib.sha256()
    for part in (MAP_STYLE, matplotlib.__version__, dpi, bounds, metres, title, subtitle, unit, repr(legend),
                 cells_digest(data), hidden):
        h.update(repr(part).encode() + b"\0")
    if districts is not None:
        h.update(repr(len(districts)).encode())
        for name, geom in zip(districts[name_field], districts.geometry):
            h.update(repr(name).encode() + b"\0" + (shapely.to_wkb(geom) if geom is not None else b""))
    return h.hexdigest()[:32]


def cells_digest(data: np.ma.MaskedArray) -> str:
    """A hash of cells as read: shape, type, values and mask (what a drawing of them depends on)."""
    h = hashlib.sha256(repr((data.shape, str(data.dtype))).encode())
    h.update(np.ma.getdata(data).tobytes())
    h.update(np.ma.getmaskarray(data).tobytes())
    return h.hexdigest()[:32]


def legend_title(legend: Legend, fallback: str, width: int = 30) -> str:
    """The legend's title in words (or `fallback`), wrapped to fit beside the map."""
    return textwrap.fill(legend.title or fallback, width)


def _drawn_and_trimmed(fig: Figure, pad_inches: float) -> tuple[np.ndarray, tuple[int, int]]:
    """The figure drawn once, cut to its artists plus a margin (what savefig's bbox_inches="tight"
    gives, but that draws everything twice: half of a map's time), and where the cut starts
    (x, y pixels from the top left)."""
    canvas = fig.canvas
    canvas.draw()
    box = fig.get_tightbbox(canvas.get_renderer()).padded(pad_inches)  # inches, origin bottom left
    pixels = np.asarray(canvas.buffer_rgba())[..., :3]  # the facecolor is opaque white
    h, w = pixels.shape[:2]
    dpi = fig.dpi
    x0, x1 = max(0, math.floor(box.x0 * dpi)), min(w, math.ceil(box.x1 * dpi))
    y0, y1 = max(0, h - math.ceil(box.y1 * dpi)), min(h, h - math.floor(box.y0 * dpi))
    return pixels[y0:y1, x0:x1], (x0, y0)


def coloured(data: np.ma.MaskedArray, legend: Legend, nodata: str = "none") -> np.ndarray:
    """`data` as RGBA bytes in the legend's colours (as QGIS draws it), nodata in `nodata`
    ("none": transparent). Bytes resample four times faster than values through a colormap."""
    cmap, norm = _colours(legend)
    return cmap.with_extremes(bad=nodata)(norm(_prepare(data, legend)), bytes=True)


def _prepare(data: np.ma.MaskedArray, legend: Legend) -> np.ma.MaskedArray:
    """Hide codes a palette does not list, as QGIS's paletted renderer does (not the nearest class);
    classes compare in float64, where their ±1e300 outer bounds fit."""
    if legend.kind == "classes":
        return data.astype(np.float64)
    if legend.kind != "palette":
        return data
    codes = [s.value for s in legend.stops]
    return np.ma.masked_where(~np.isin(np.ma.getdata(data), codes), data)


def _colours(legend: Legend) -> tuple[Colormap, Normalize]:
    """A colormap and norm reproducing the .qml style of `legend`."""
    stops = legend.stops
    colours = [s.color for s in stops]
    if legend.kind == "ramp":
        lo, hi = stops[0].value, stops[-1].value
        span = (hi - lo) or 1.0
        cmap = LinearSegmentedColormap.from_list("ramp", [((s.value - lo) / span, s.color) for s in stops])
        return cmap, Normalize(lo, hi)  # out of range: the end colours, as QGIS with clip="0"
    if legend.kind == "palette":  # integer codes: one bin around each
        values = sorted(s.value for s in stops)
        colours = [c for _, c in sorted((s.value, s.color) for s in stops)]
        bounds = [values[0] - 0.5, *[(a + b) / 2 for a, b in zip(values, values[1:])], values[-1] + 0.5]
        return ListedColormap(colours), BoundaryNorm(bounds, len(colours))
    if legend.kind != "classes":
        raise ValueError(f"unknown legend kind {legend.kind!r}")
    # classes: each stop's value is its class's upper bound, inclusive as in QGIS ("discrete": value ≤ bound)
    uppers = [float(np.nextafter(s.value, np.inf)) if math.isfinite(s.value) else 1e300 for s in stops]
    return ListedColormap(colours), BoundaryNorm([-1e300, *uppers], len(colours))


def _districts(ax: Axes, districts: geopandas.GeoDataFrame, name_field: str) -> None:
    """Thin dark outlines and names with a white halo (readable on any colour)."""
    geoms = [g for g in districts.geometry if g is not None and not g.is_empty]
    lines = [np.asarray(part.coords)[:, :2] for g in geoms for part in shapely.get_parts(g.boundary)]
    ax.add_collection(LineCollection(lines, colors=OUTLINE, linewidths=0.7, zorder=3), autolim=False)
    halo = [patheffects.withStroke(linewidth=2.5, foreground="white")]
    for name, geom in zip(districts[name_field], districts.geometry):
        if geom is None or geom.is_empty or name is None or name != name:  # no place or no name (NaN)
            continue
        p = geom.representative_point()  # inside the polygon, unlike the centroid
        ax.annotate(textwrap.fill(str(name), 24), (p.x, p.y), ha="center", va="center", fontsize=8, fontweight="bold",
                    color="#222222", path_effects=halo, zorder=4)


def north_arrow(ax: Axes) -> None:
    """An arrow and "N" in the top right corner (the grid is north-up)."""
    ax.annotate("N", xy=(0.95, 0.97), xycoords="axes fraction", xytext=(0, -48), textcoords="offset points",
                ha="center", va="center", fontsize=12, fontweight="bold",
                arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.5},
                path_effects=[patheffects.withStroke(linewidth=3, foreground="white")])


def _scale_bar(ax: Axes, width_m: float, height_m: float) -> None:
    """A round length (1, 2 or 5 × 10^k m) near a fifth of the map's width."""
    target = width_m / 5
    base = 10 ** math.floor(math.log10(target))
    length = max(m * base for m in (1, 2, 5) if m * base <= target)
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax.add_artist(AnchoredSizeBar(ax.transData, length, label, "lower left", pad=0.5, borderpad=0.8, sep=4,
                                  frameon=True, size_vertical=min(width_m, height_m) / 250, color="black",
                                  fontproperties={"size": 9}))
