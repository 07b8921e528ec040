"""PNG maps of the products for briefings: the .qml colours, a legend with units, scale bar,
north arrow, district outlines and names, and a title with the run date.

Drawn with matplotlib's object API (no pyplot: no global state, safe in threads), from the
file's overviews (a decimated read), so a 121 M-cell product maps in about a second.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # noqa: E402  (headless; harmless if already set)
import numpy as np
import rasterio
from matplotlib import patheffects
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import BoundaryNorm, LinearSegmentedColormap, ListedColormap, Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from mpl_toolkits.axes_grid1.anchored_artists import AnchoredSizeBar
from rasterio.enums import Resampling

from .styles import Legend


def render_map(tif: Path, png: Path, *, title: str, subtitle: str, unit: str, legend: Legend,
               districts=None, name_field: str = "name", max_pixels: int = 1400, dpi: int = 110) -> None:
    """Write `png`, a map of the single-band `tif` coloured as `legend` (atomic replace)."""
    with rasterio.open(tif) as ds:
        scale = max(ds.width, ds.height) / max_pixels
        shape = (max(1, round(ds.height / max(scale, 1))), max(1, round(ds.width / max(scale, 1))))
        data = ds.read(1, out_shape=shape, masked=True, resampling=Resampling.nearest)
        b = ds.bounds
    width_in, map_w = 9.0, 0.66  # the map takes 66 % of the width; legend to its right
    map_h_in = width_in * map_w * (b.top - b.bottom) / (b.right - b.left)
    top_in, bottom_in = 0.95, 0.3  # title lines above, a margin below
    height_in = map_h_in + top_in + bottom_in
    fig = Figure(figsize=(width_in, height_in), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.03, bottom_in / height_in, map_w, map_h_in / height_in))
    cmap, norm = _colours(legend)
    image = ax.imshow(data, extent=(b.left, b.right, b.bottom, b.top), cmap=cmap, norm=norm,
                      interpolation="nearest")
    if districts is not None and len(districts):
        districts.boundary.plot(ax=ax, color="#333333", linewidth=0.7)
        halo = [patheffects.withStroke(linewidth=2.5, foreground="white")]
        for name, geom in zip(districts[name_field], districts.geometry):
            p = geom.representative_point()
            ax.annotate(str(name), (p.x, p.y), ha="center", va="center", fontsize=8, fontweight="bold",
                        color="#222222", path_effects=halo)
    ax.set_xlim(b.left, b.right)
    ax.set_ylim(b.bottom, b.top)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("")
    ax.set_ylabel("")
    _scale_bar(ax, b.right - b.left)
    ax.annotate("N", xy=(0.95, 0.96), xytext=(0.95, 0.86), xycoords="axes fraction", ha="center", va="center",
                fontsize=12, fontweight="bold", arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.5})
    fig.text(0.03, 1 - 0.15 / height_in, title, fontsize=14, fontweight="bold", va="top")
    fig.text(0.03, 1 - 0.55 / height_in, subtitle, fontsize=8.5, color="#444444", va="top")
    if legend.kind == "ramp":
        mid, half = (bottom_in + map_h_in / 2) / height_in, min(2.2, map_h_in / 2.5) / height_in
        bar = fig.colorbar(image, cax=fig.add_axes((0.74, mid - half, 0.025, 2 * half)))
        bar.set_label(unit)
    else:
        handles = [Patch(facecolor=s.color, edgecolor="#555555", label=s.label) for s in legend.stops]
        fig.legend(handles=handles, title=unit, loc="center left",
                   bbox_to_anchor=(0.71, (bottom_in + map_h_in / 2) / height_in), fontsize=8,
                   title_fontsize=9, frameon=False)
    tmp = png.with_name(f".{png.name}.tmp")
    fig.savefig(tmp, format="png", facecolor="white")
    os.replace(tmp, png)


def _colours(legend: Legend):
    """A colormap and norm reproducing the .qml style of `legend`."""
    stops = legend.stops
    colours = [s.color for s in stops]
    if legend.kind == "ramp":
        lo, hi = stops[0].value, stops[-1].value
        span = (hi - lo) or 1.0
        cmap = LinearSegmentedColormap.from_list("ramp", [((s.value - lo) / span, s.color) for s in stops])
        return cmap, Normalize(lo, hi)
    if legend.kind == "palette":  # integer codes: one bin around each
        bounds = [stops[0].value - 0.5] + [s.value + 0.5 for s in stops]
        return ListedColormap(colours), BoundaryNorm(bounds, len(colours))
    # classes: each stop's value is its class's upper bound, inclusive as in QGIS ("discrete": value ≤ bound)
    uppers = [float(np.nextafter(s.value, np.inf)) if math.isfinite(s.value) else 1e30 for s in stops]
    return ListedColormap(colours), BoundaryNorm([-1e30, *uppers], len(colours))


def _scale_bar(ax, width_m: float) -> None:
    """A round length (1, 2 or 5 × 10^k m) near a fifth of the map's width."""
    target = width_m / 5
    base = 10 ** math.floor(math.log10(target))
    length = max(m * base for m in (1, 2, 5) if m * base <= target)
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} m"
    ax.add_artist(AnchoredSizeBar(ax.transData, length, label, "lower left", pad=0.6, borderpad=0.8, sep=4,
                                  frameon=True, size_vertical=width_m / 300, color="black"))
