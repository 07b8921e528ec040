"""What every page of the pack draws with: the A4 page and its footer, the raster cells read
for a box on it (`Window`), the map in the styles' colours, outlines, fills, legends and text tables."""

from __future__ import annotations

import io
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import rasterio
import shapely
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.cm import ScalarMappable
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from rasterio.windows import Window as RasterWindow

from .. import assessed
from ..maps import _colours, _scale_bar, coloured, legend_title, north_arrow
from ..paths import polygon_paths
from ..styles import Legend
from . import measure

if TYPE_CHECKING:
    from .brief import Briefing


PAGE = (11.69, 8.27)  # A4 landscape, inches
DPI = 200  # print resolution: rasters are read at most this fine for their size on the page; outlines,
# fills and record points are drawn as images at it too (thousands of vector zone paths made one page take seconds)
ZONE, CLEARED, RECORD = "#000000", "#1f78b4", "#111111"
HALO = [patheffects.withStroke(linewidth=2.2, foreground="white")]


def pdf_bytes(fig: Figure) -> bytes:
    """A one-page PDF of `fig` (a district drawing, kept and overlaid by `pack`)."""
    buf = io.BytesIO()
    with PdfPages(buf) as pages:
        pages.savefig(fig, dpi=DPI)
    return buf.getvalue()


TEXT_W = PAGE[0] - 0.8  # between the side margins, inches


def new_page(b: Briefing, number: int, total: int, heading: str, subheading: str,
             room: float | None = None) -> tuple[Figure, float]:
    """An A4 landscape page with its heading and the footer every page carries (label, run, page).
    Returns it and where its content may start, inches from the top (below the subheading).
    `room`: how far from the top heading and subheading may reach (a map starts there); without
    it they take what they need, wrapped to the page's width."""
    fig = Figure(figsize=PAGE, dpi=72, facecolor="white")  # rasters go in unresampled: dpi is for points only
    w, h = PAGE
    size, lines = heading_lines(heading)
    fig.text(0.4 / w, 1 - 0.3 / h, "\n".join(lines), fontsize=size, fontweight="bold", va="top", linespacing=1.15)
    below = max(0.68, 0.3 + len(lines) * size * 1.2 / 72 + 0.06)
    sub_size, sub = subheading_lines(subheading, None if room is None else room - below)
    fig.text(0.4 / w, 1 - below / h, "\n".join(sub), fontsize=sub_size, color="#444444", va="top")
    _footer(fig, b, f"minemap {b.version} · run {when(b.created)} · page {number} of {total}")
    return fig, below + len(sub) * sub_size * 1.2 / 72


HEADING_IN = 0.55  # room for a page's heading above its subheading (the map starts 1.07 in from the top)


def heading_lines(heading: str, width_in: float = TEXT_W) -> tuple[float, list[str]]:
    """A heading's font size and lines: 16 pt on one line when it fits, else smaller and wrapped
    (a district's name can be longer than the page: shown whole, never cut)."""
    for size in (16, 13, 11, 9, 8):
        lines = measure.lines(heading, width_in, size, "bold")
        if len(lines) == 1 or len(lines) * size * 1.2 / 72 <= HEADING_IN:
            return size, lines
    return size, lines


def subheading_lines(text: str, room: float | None) -> tuple[float, list[str]]:
    """The subheading's size and lines: one line at 9 pt, 8 or 7 when it fits, else wrapped at
    7 pt; within `room` inches of height when given (its last line then cut with "…")."""
    for size in (9, 8, 7):
        if measure.width(text, size) <= TEXT_W:
            return size, [text]
    lines = measure.lines(text, TEXT_W, 7)
    most = len(lines) if room is None else max(1, int(room / (7 * 1.2 / 72)))
    if len(lines) > most:
        lines = lines[:most - 1] + [measure.one_line(" ".join(lines[most - 1:]), TEXT_W, 7)]
    return 7, lines


def _footer(fig: Figure, b: Briefing, run: str) -> None:
    """The run and page number on the right; the label (e.g. "SYNTHETIC sample data: …") on the
    left in the room beside it: smaller, then on two lines, never over the run (the summary
    shows the label whole)."""
    w, h = PAGE
    fig.text(1 - 0.4 / w, 0.22 / h, run, fontsize=8, color="#444444", va="bottom", ha="right")
    if not b.label:
        return
    room = TEXT_W - measure.width(run, 8) - 0.3
    size = next((s for s in (8.5, 7.5, 6.5) if measure.width(b.label, s, "bold") <= room), None)
    if size is not None:
        lines = [b.label]
    else:
        size, lines = 6.5, measure.balanced(b.label, room, 6.5, "bold")
        if len(lines) > 2:
            lines = [lines[0], measure.one_line(" ".join(lines[1:]), room, size, "bold")]
    fig.text(0.4 / w, 0.22 / h, "\n".join(lines), fontsize=size, fontweight="bold", color="#b2182b", va="bottom",
             linespacing=1.1)


def when(created: str) -> str:
    return f"{created[:16].replace('T', ' ')} UTC"


def hatch(ax: Axes, hidden: assessed.NotAssessed | None, where: "Window", data: np.ma.MaskedArray,
           mask: np.ndarray | None = None) -> None:
    """Land not assessed in `where` (the cells of `data`) as the grey hatch, drawn as an image at
    DPI like the outlines; `mask` when it was read already."""
    if hidden is None:
        return
    if mask is None:
        mask = hidden.mask(data, assessed.read_window(hidden.source, where.level, where.window, where.shape))
    assessed.draw(ax, mask, where.extent, zorder=2, rasterized=True)


@dataclass(frozen=True)
class Window:
    """Which cells a page reads: an overview level, a window in it, and every how-many-th cell."""

    level: int | None
    window: tuple[int, int, int, int]  # col_off, row_off, width, height at that level
    shape: tuple[int, int]
    extent: tuple[float, float, float, float]  # left, right, bottom, top

    def key(self, name: str) -> str:
        return repr((name, self.level, self.window, self.shape))

    def read(self, tif: Path) -> np.ma.MaskedArray:
        with rasterio.open(tif, **({} if self.level is None else {"overview_level": self.level})) as ds:
            data = ds.read(1, window=RasterWindow(*self.window), masked=True)  # then every scale-th cell: a
            # VRT's sources would each pick their own nearest cells
        rows, cols = (np.minimum(((np.arange(n) + 0.5) * size / n).astype(np.intp), size - 1)
                      for n, size in zip(self.shape, data.shape))
        return data[rows][:, cols]

    @classmethod
    def of(cls, tif: Path, view: tuple[float, float, float, float] | None, max_pixels: int) -> "Window":
        """Band 1 within `view` (all when None), at most `max_pixels` across: the coarsest overview
        level still as fine as the page needs, opened as that level and thinned here, so a VRT of
        staged pieces and the COG made of them give the same cells."""
        with rasterio.open(tif) as ds:
            win = RasterWindow(0, 0, ds.width, ds.height)
            if view is not None:
                inv = ~ds.transform
                c0, r0 = inv @ (view[0], view[3])
                c1, r1 = inv @ (view[2], view[1])
                c0, r0 = max(0, math.floor(c0)), max(0, math.floor(r0))
                c1, r1 = min(ds.width, math.ceil(c1)), min(ds.height, math.ceil(r1))
                win = RasterWindow(c0, r0, max(1, c1 - c0), max(1, r1 - r0))
            scale = max(1.0, max(win.width, win.height) / max_pixels)
            factors = ds.overviews(1)
        level = max((k for k, f in enumerate(factors) if f <= scale), default=None, key=lambda k: factors[k])
        with rasterio.open(tif, **({} if level is None else {"overview_level": level})) as ds:
            if level is not None:  # the window at that level, widened to whole cells
                f = factors[level]
                c0, r0 = int(win.col_off) // f, int(win.row_off) // f
                c1 = min(ds.width, math.ceil((win.col_off + win.width) / f))
                r1 = min(ds.height, math.ceil((win.row_off + win.height) / f))
                win = RasterWindow(c0, r0, max(1, c1 - c0), max(1, r1 - r0))
            scale = max(1.0, max(win.width, win.height) / max_pixels)
            shape = (max(1, round(win.height / scale)), max(1, round(win.width / scale)))
            left, bottom, right, top = rasterio.windows.bounds(win, ds.transform)
        return cls(level, (int(win.col_off), int(win.row_off), int(win.width), int(win.height)), shape,
                   (left, right, bottom, top))


def raster(ax: Axes, data, extent, legend: Legend, repeat: int = 1) -> ScalarMappable:
    """The cells in the legend's colours, embedded unresampled; each cell `repeat` × `repeat`
    pixels, so coarse cells print as sharp squares in any viewer. Returns the colours' mappable."""
    cmap, norm = _colours(legend)
    ax.set_facecolor("white")
    rgb = coloured(data, legend, nodata="white")[..., :3]
    if repeat > 1:
        rgb = rgb.repeat(repeat, axis=0).repeat(repeat, axis=1)
    ax.imshow(rgb, extent=extent, interpolation="none")
    return ScalarMappable(norm, cmap)


def cell_repeat(cells: int, extent_m: float, view_m: float, box_in: float) -> int:
    """How many pixels per cell bring `cells` across `extent_m` metres nearest to DPI on a map box
    of `box_in` inches showing `view_m` metres: cells read for the page at 199.9 per inch stay one
    pixel each (rounding up made them 2 × 2: four times the pixels to compress for nothing)."""
    ppi = cells / max(extent_m / view_m * box_in, 1e-9)
    return max(1, min(8, round(DPI / ppi)))


def widen(bounds: tuple[float, float, float, float], aspect: float) -> tuple[float, float, float, float]:
    """`bounds` widened to the axes' width/height ratio, centred."""
    x0, y0, x1, y1 = bounds
    cx, cy, bw, bh = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    if bw / bh < aspect:
        bw = bh * aspect
    else:
        bh = bw / aspect
    return cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2


def fit(ax: Axes, extent, aspect: float) -> None:
    left, right, bottom, top = extent
    v = widen((left, bottom, right, top), aspect)
    ax.set_xlim(v[0], v[2])
    ax.set_ylim(v[1], v[3])
    ax.set_aspect("equal")


def finish_map(ax: Axes) -> None:
    """No ticks; a north arrow and a scale bar of a round length (the axes' limits are the view)."""
    ax.set_xticks([])
    ax.set_yticks([])
    north_arrow(ax)
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    _scale_bar(ax, x1 - x0, y1 - y0)


def ramp_legend(fig: Figure, image, b: Briefing, box: tuple[float, float, float, float]) -> None:
    """A horizontal colour bar (ramps) or a row of patches (classes) with the unit."""
    w, h = PAGE
    if b.legend.kind == "ramp":
        bar = fig.colorbar(image, cax=fig.add_axes((box[0] / w, box[1] / h, box[2] / w, box[3] / h)),
                           orientation="horizontal")
        bar.set_ticks([s.value for s in b.legend.stops], labels=[s.label for s in b.legend.stops])
        bar.ax.tick_params(labelsize=7)
        bar.ax.set_title(legend_title(b.legend, f"{b.raster_title} [{b.unit}]", 60), fontsize=8, loc="left")
    else:
        handles = [Patch(facecolor=s.color, edgecolor="#555555", label=s.label) for s in b.legend.stops]
        fig.legend(handles=handles, title=legend_title(b.legend, f"{b.raster_title} [{b.unit}]", 60), loc="lower left",
                   bbox_to_anchor=(box[0] / w, box[1] / h), fontsize=7, title_fontsize=8, frameon=False, ncols=2)


def outlines(ax: Axes, geoms, colour: str, width: float) -> None:
    lines = [np.asarray(part.coords)[:, :2] for g in geoms if g is not None and not g.is_empty
             for part in shapely.get_parts(g.boundary)]
    ax.add_collection(LineCollection(lines, colors=colour, linewidths=width, zorder=4, rasterized=True), autolim=False)


def fill(ax: Axes, geoms, colour: str) -> None:
    """Polygons (holes kept) filled half-transparent with a solid edge."""
    paths = polygon_paths(geoms)
    if paths:
        ax.add_collection(PathCollection(paths, facecolors=colour, edgecolors=colour, alpha=0.45, linewidths=0.6,
                                         zorder=3, rasterized=True), autolim=False)


def text_table(fig: Figure, x: float, y: float, widths: list[float], header: list[str] | None,
                rows: list[list[str]], fontsize: float = 8, right: list[bool] | None = None) -> float:
    """Rows of text from (x, y) inches downwards, columns `widths` inches wide, numbers
    right-aligned; returns the y (inches) below the last row. One text per column (drawing text
    is most of a page's time)."""
    w, h = PAGE
    step = fontsize / 72 * 1.5
    right = right or [False] * len(widths)
    if header:
        _columns(fig, x, y, widths, [[c] for c in header], fontsize, right, "bold")
        y -= step
        fig.add_artist(Line2D([x / w, (x + sum(widths)) / w], [(y + 0.03) / h] * 2, lw=0.5, color="#888888"))
    if rows:
        _columns(fig, x, y, widths, [list(c) for c in zip(*rows)], fontsize, right, "normal")
    return y - step * len(rows)


def _columns(fig: Figure, x: float, y: float, widths: list[float], columns: list[list[str]], fontsize: float,
             right: list[bool], weight: str) -> None:
    """One text per column; a cell longer than its column is cut ("…"), never running into the
    next one (a right-aligned cell may also take what the left-aligned cell before it in its row
    leaves)."""
    w, h = PAGE
    spare = [0.0] * max((len(c) for c in columns), default=0)  # per row: the column before's unused width
    for cells, width, r in zip(columns, widths, right):
        cells = [measure.one_line(c, width - 0.1 + (s if r else 0.0), fontsize, weight) for c, s in zip(cells, spare)]
        spare = [0.0 if r else width - 0.1 - measure.width(c, fontsize, weight) for c in cells]
        fig.text((x + width - 0.08 if r else x) / w, y / h, "\n".join(cells), fontsize=fontsize, va="top",
                 ha="right" if r else "left", multialignment="right" if r else "left", fontweight=weight,
                 linespacing=1.475)  # baselines 1.5 × fontsize apart, as `step` (DejaVu: 1.0167 × spacing)
        x += width


def wrap(text: str, width: int) -> str:
    return textwrap.fill(text, width)
