"""The coordinate grid on a district page's map: lines at a round interval of the grid's CRS,
labelled with their easting and northing in the margin, so a team lead can read a position off
the printed page and match it to a GPS unit or a task's coordinates."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.axes import Axes

STEPS = (1, 2, 2.5, 5)  # × 10^k m: consecutive intervals at most 2 × apart, so ≥ 3 lines where 7 were too many
MOST = 6  # lines along either axis at most
LABEL_PT = 6.5
LINE = "#4d4d4d"  # thin and half transparent: the risk colours stay readable under it


def interval(view: tuple[float, float, float, float]) -> float:
    """The finest round interval (1, 2, 2.5 or 5 × 10^k m) giving at most `MOST` lines along
    either axis of `view` (left, bottom, right, top)."""
    span = max(view[2] - view[0], view[3] - view[1])
    k = math.floor(math.log10(span / MOST)) - 1
    for step in (m * 10.0 ** e for e in range(k, k + 3) for m in STEPS):
        if max(len(lines(view[0], view[2], step)), len(lines(view[1], view[3], step))) <= MOST:
            return step
    raise AssertionError("unreachable: 10^(k+2) m is more than a sixth of the view")


def lines(low: float, high: float, step: float) -> np.ndarray:
    """The multiples of `step` strictly between `low` and `high` (none on the map's frame)."""
    first, last = math.floor(low / step) + 1, math.ceil(high / step) - 1
    return np.arange(first, last + 1) * step


def label(value: float, step: float, axis: str) -> str:
    """A line's coordinate as printed: km when the interval is whole km ("685 km E"), else metres
    ("4 394 500 m N"); thousands apart by a space, as the written scale."""
    if step >= 1000:
        decimals = 0 if step % 1000 == 0 else 1
        return f"{value / 1000:,.{decimals}f} km {axis}".replace(",", " ")
    return f"{value:,.0f} m {axis}".replace(",", " ")


def words(crs_name: str, step: float) -> str:
    """The note naming the grid once on the page, e.g. "Grid: WGS 84 / UTM zone 38N (EPSG:32638),
    lines every 5 km"."""
    every = f"{step / 1000:g} km" if step >= 1000 else f"{step:g} m"
    return f"Grid: {crs_name or 'the grid CRS'}, lines every {every}"


def draw(ax: Axes, view: tuple[float, float, float, float], box: tuple[float, float]) -> float:
    """Grid lines over the map (above the cells and the not-assessed hatch, below outlines and
    records), eastings labelled below the frame and northings up its left side (`box`: the map's
    width and height in inches; a label near a corner runs inwards from its line rather than past
    the frame); returns the interval."""
    step = interval(view)
    for axis, (low, high), size, letter in ((ax.xaxis, (view[0], view[2]), box[0], "E"),
                                            (ax.yaxis, (view[1], view[3]), box[1], "N")):
        at = lines(low, high, step)
        axis.set_ticks(at)
        texts = axis.set_ticklabels([label(v, step, letter) for v in at])
        for value, text in zip(at, texts):
            half = len(text.get_text()) * LABEL_PT * 0.6 / 72 / 2  # DejaVu: ≤ 0.6 em a character
            inches = (value - low) / (high - low) * size
            end = "start" if inches < half else "end" if size - inches < half else "middle"
            if letter == "E":
                text.set_horizontalalignment({"start": "left", "end": "right", "middle": "center"}[end])
            else:
                text.set_rotation(90)
                text.set_verticalalignment({"start": "bottom", "end": "top", "middle": "center"}[end])
    ax.tick_params(length=3, width=0.5, pad=1.5, labelsize=LABEL_PT, colors="#333333")
    ax.set_axisbelow(False)  # zorder 2.5: over the hatch (2), under fills (3), outlines (4) and records (5)
    ax.grid(True, color=LINE, linewidth=0.45, alpha=0.55)
    return step


def crs_words(wkt: str) -> str:
    """A CRS in words, e.g. "WGS 84 / UTM zone 38N (EPSG:32638)" (its name alone when it has no EPSG code)."""
    from pyproj import CRS

    crs = CRS.from_wkt(wkt)
    code = crs.to_epsg()
    return f"{crs.name} (EPSG:{code})" if code else crs.name
