"""A district page: its map (the drawing, kept between runs: see `pack`) and its words (heading,
zone ranks, figures, zone list: drawn each run and stamped over the drawing)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import shapely
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .. import assessed
from ..columns import fmt, readable
from ..maps import OUTLINE, cells_digest
from . import mapgrid, measure
from .brief import Briefing
from .drawing import (CLEARED, DPI, HALO, PAGE, RECORD, ZONE, Window, cell_repeat, fill, finish_map, new_page,
                      outlines, pdf_bytes, ramp_legend, raster, text_table, when, widen, wrap)

if TYPE_CHECKING:
    import geopandas


MAX_LABELS = 60  # zone ranks written on one page's map
RECORDS_AS_DOTS = 200  # more records than this in a page's view are drawn as counts per square


def drawing_bytes(b: Briefing, row, look: Look) -> bytes:
    """A district page's drawing as PDF bytes (a module-level function: a worker process can run it)."""
    return pdf_bytes(district_map(b, row, look))


def for_drawing(b: Briefing) -> Briefing:
    """`b` as far as `district_map` uses it (the look carries the page's own records, areas and
    zones): sent to a worker per drawing, so not the region's records, areas and zone table (MBs)."""
    districts = b.districts[["geometry"]] if b.districts is not None else None
    return replace(b, inputs={}, districts=districts, zones=None, records=np.empty(0, object),
                   cleared=np.empty(0, object), evaluation=None, changes=None, change=None)


@dataclass
class Look:
    """What a district page's map shows: the view, the cells read for it, and the zones,
    cleared areas and records within it."""

    view: tuple[float, float, float, float]
    data: np.ma.MaskedArray | None  # None: not read (the same cells as last run, see `district_look`)
    extent: tuple[float, float, float, float]
    near: "geopandas.GeoDataFrame | None"  # zones meeting the view
    listed: "geopandas.GeoDataFrame | None"  # the district's zones (see `zones_in`)
    cleared: list
    records: np.ndarray  # (n, 2) points
    window: str = ""  # which cells of which file: overview level, window, shape (see `Window`)
    digest: str = ""  # of the cells and their mask
    where: "Window | None" = None  # those cells, to read them when the page is drawn
    hidden: np.ndarray | None = None  # which of them were not assessed (drawn as a hatch)


MAP_BOX = (0.45, 0.8, 6.85, 6.4)  # a district page's map: x, y, width, height in inches (grid labels in the margins)
NOTE_Y = MAP_BOX[1] - 0.2  # the line under the eastings: the grid named (left) and the written scale (right)


def district_view(geometry) -> tuple[float, float, float, float]:
    """What a district page's map shows (left, bottom, right, top): the district and a margin,
    widened to the map box's shape."""
    x0, y0, x1, y1 = geometry.bounds
    margin = 0.08 * max(x1 - x0, y1 - y0, 1.0)
    return widen((x0 - margin, y0 - margin, x1 + margin, y1 + margin), MAP_BOX[2] / MAP_BOX[3])


def district_look(b: Briefing, row) -> Look:
    """What the page shows. Its cells are not read when an update left them alone: the window
    meets no redone chunk (`b.redone`) and the last run recorded their digest (`b.looks`)."""
    box = MAP_BOX
    view = district_view(row.geometry)
    where = Window.of(b.raster, view, round(max(box[2], box[3]) * DPI))  # as fine as the box at DPI needs
    extent, window = where.extent, where.key(b.raster_title)
    left, right, bottom, top = extent
    untouched = b.redone is not None and not any(  # the window shares no cell with a redone chunk
        c[0] < right and left < c[2] and c[1] < top and bottom < c[3] for c in b.redone)  # c: l, b, r, t
    if untouched and window in b.looks:
        data, digest, hidden = None, b.looks[window], None
    else:
        data, hidden = _cells(b, where)
        digest = _digest(data, hidden)
    seen = shapely.box(*view)
    cleared = list(b.cleared[_meeting(b.cleared, seen)]) if len(b.cleared) else []
    zones, near, listed = b.zones, None, None
    if zones is not None:
        near = zones[shapely.intersects(zones.geometry.values, seen)] if len(zones) else zones
        listed = zones_in(near, row) if len(zones) else zones
    shown = b.records[_meeting(b.records, seen)] if len(b.records) else b.records
    pts = shapely.get_coordinates(shown).reshape(-1, 2)
    return Look(view, data, extent, near, listed, cleared, pts, window, digest, where, hidden)


def _cells(b: Briefing, where: "Window") -> tuple[np.ma.MaskedArray, np.ndarray | None]:
    """The raster's cells in `where` and which of them were not assessed (None: no such rule)."""
    data = where.read(b.raster)
    if b.hidden is None:
        return data, None
    return data, b.hidden.mask(data, assessed.read_window(b.hidden.source, where.level, where.window, where.shape))


def _digest(data: np.ma.MaskedArray, hidden: np.ndarray | None) -> str:
    """Of the cells a page draws: their values and mask, and the not-assessed ones."""
    digest = cells_digest(data)
    return digest if hidden is None else hashlib.sha256(f"{digest}/{cells_digest(np.ma.MaskedArray(hidden))}"
                                                        .encode()).hexdigest()[:32]


def with_cells(b: Briefing, look: Look) -> Look:
    """`look` with its cells read, to draw it."""
    if look.data is not None:
        return look
    data, hidden = _cells(b, look.where)
    return replace(look, data=data, hidden=hidden)


def _meeting(geoms: np.ndarray, seen) -> np.ndarray:
    """Which of `geoms` (None allowed) meet `seen`, in one vectorised test."""
    return shapely.intersects(np.asarray(geoms, dtype=object), seen)


SHARED = 0.1  # a zone homed in another district is listed here too when at least this share of it lies here
SHARED_KM2 = 1.0  # or at least this many km²


def zones_in(zones: "geopandas.GeoDataFrame", row) -> "geopandas.GeoDataFrame":
    """The zones a district page numbers and lists, by rank: those of the district (their
    `district`, where most of them lie) and those of a neighbour with a good part here (≥ 10 %
    or ≥ 1 km²: a long zone along a front line lies in several districts, and its tasks do), with
    `here_km2` (their km² in this district), `shared` and where their rank is written (`at_x`,
    `at_y`: inside this district)."""
    geom = row.geometry
    shapely.prepare(geom)
    meet = shapely.intersects(np.asarray(zones.geometry.values, dtype=object), geom)
    here = np.zeros(len(zones))
    here[meet] = shapely.area(shapely.intersection(np.asarray(zones.geometry.values, dtype=object)[meet], geom)) / 1e6
    own = (zones["district"] == str(row["district"])).to_numpy()
    keep = own | (here >= np.minimum(SHARED * zones["area_km2"].to_numpy(), SHARED_KM2))
    out = zones[keep].assign(here_km2=here[keep], shared=~own[keep])
    points = [(g if own_ else shapely.intersection(g, geom)).representative_point()
              for g, own_ in zip(out.geometry.values, own[keep])]
    return out.assign(at_x=[p.x for p in points], at_y=[p.y for p in points]).sort_values("rank", kind="stable")


def district_map(b: Briefing, row, look: Look) -> Figure:
    """A district page's drawing: the map around it at print resolution and its legends; what
    changes with ranks, figures or the run is drawn over it by `district_text`."""
    fig = Figure(figsize=PAGE, dpi=72, facecolor="white")  # rasters go in unresampled: dpi is for points only
    w, h = PAGE
    box = MAP_BOX
    view, data, extent = look.view, look.data, look.extent
    ax = _map_axes(fig, view)
    image = raster(ax, data, extent, b.legend, cell_repeat(data.shape[1], extent[1] - extent[0], view[2] - view[0], box[2]))
    if look.hidden is not None:
        assessed.draw(ax, look.hidden, extent, zorder=2, rasterized=True)
    if look.cleared:
        fill(ax, look.cleared, CLEARED)
    if b.districts is not None:
        outlines(ax, b.districts.geometry.values, "#777777", 0.6)
    outlines(ax, [row.geometry], OUTLINE, 1.6)
    if look.near is not None and len(look.near):
        outlines(ax, look.near.geometry.values, ZONE, 0.9)
    record = Line2D([], [], marker="o", ls="", color=RECORD, markersize=3, label="mine record")
    if len(look.records) > RECORDS_AS_DOTS:  # hundreds of dots hide the map: a count per square instead
        side, centres, counts = record_counts(look.records, view)
        ax.scatter(centres[:, 0], centres[:, 1], s=4 + 140 * counts / counts.max(), facecolors="none",
                   edgecolors=RECORD, linewidths=0.8, zorder=5, rasterized=True)
        km = f"{side / 1000:g} km" if side >= 1000 else f"{side:g} m"
        record = Line2D([], [], marker="o", ls="", markerfacecolor="none", markeredgecolor=RECORD, markersize=6,
                        label=f"mine records per {km} square\n(circle area ∝ count; {len(look.records):,} in view)")
    elif len(look.records):
        pts = look.records
        ax.scatter(pts[:, 0], pts[:, 1], s=8, c=RECORD, marker="o", linewidths=0.3, edgecolors="white", zorder=5,
                   rasterized=True)
    finish_map(ax)
    step = mapgrid.draw(ax, view, (box[2], box[3]))
    fig.text(box[0] / w, NOTE_Y / h, mapgrid.words(b.grid_crs, step), fontsize=7.5, va="top", color="#222222")
    # right column: legends (the figures and zones come with the text)
    x = box[0] + box[2] + 0.35
    ramp_legend(fig, image, b, (x, 7.0, 3.3, 0.12))
    handles = [Patch(facecolor="none", edgecolor=ZONE, label="priority zone (rank)"),
               Line2D([], [], color=OUTLINE, lw=1.6, label="district"),
               Patch(facecolor=CLEARED, alpha=0.45, edgecolor=CLEARED, label="cleared area"), record]
    if b.hidden is not None:
        handles.append(assessed.legend_patch(wrap(b.hidden.label, 40)))
    fig.legend(handles=handles, loc="upper left", bbox_to_anchor=(x / w, 6.55 / h), ncols=2, fontsize=7.5,
               frameon=False, handlelength=1.5, borderaxespad=0)
    return fig


def record_counts(points: np.ndarray, view: tuple[float, float, float, float],
                  across: int = 30) -> tuple[float, np.ndarray, np.ndarray]:
    """Records counted per square of a round side (1, 2 or 5 × 10^k m, about `across` squares
    over the view), aligned to the CRS origin: the side, the squares' centres and their counts."""
    target = (view[2] - view[0]) / across
    base = 10 ** math.floor(math.log10(target))
    side = max(m * base for m in (1, 2, 5) if m * base <= target)
    cells, counts = np.unique(np.floor(points / side).astype(np.int64), axis=0, return_counts=True)
    return side, (cells + 0.5) * side, counts


def _map_axes(fig: Figure, view: tuple[float, float, float, float]) -> Axes:
    w, h = PAGE
    box = MAP_BOX
    ax = fig.add_axes((box[0] / w, box[1] / h, box[2] / w, box[3] / h))
    ax.set_xlim(view[0], view[2])
    ax.set_ylim(view[1], view[3])
    ax.set_aspect("equal")
    return ax


def district_text(b: Briefing, row, figures: list[tuple[str, str]], look: Look, number: int, total: int) -> Figure:
    """A district page's words on a transparent page, stamped over its drawing: heading, footer,
    the zones' ranks on the map, the district's figures and zones."""
    name = str(row["district"])
    fig, _ = new_page(b, number, total, f"District: {name}", f"{b.raster_title} with priority zones, mine records "
                      f"and cleared areas · region {b.region} · run {when(b.created)}", room=0.95)
    fig.patch.set_visible(False)
    w, h = PAGE
    fig.text((MAP_BOX[0] + MAP_BOX[2]) / w, NOTE_Y / h,
             f"Scale 1 : {written_scale(look.view[2] - look.view[0], MAP_BOX[2]):,} (printed on A4)".replace(",", " "),
             fontsize=7.5, ha="right", va="top", color="#222222")
    if look.listed is not None and len(look.listed):
        ax = _map_axes(fig, look.view)
        ax.set_axis_off()
        # the district's riskiest zones get their rank (as many as a page can read; a 10 m grid
        # can hold thousands, whose haloed labels took most of the pack's time and hid the map);
        # neighbours' zones are outlined on the drawing but not numbered: their numbers are on their
        # pages (a zone reaching well into this district is numbered here too, inside the district)
        labelled = look.listed.nsmallest(MAX_LABELS, "rank")
        for rank, px, py in zip(labelled["rank"], labelled["at_x"], labelled["at_y"]):
            # the halo under the rank as its own (outlined) text, so the rank stays text: found by a search
            for style in ({"color": "white", "path_effects": HALO}, {"color": "black"}):
                ax.annotate(str(rank), (px, py), ha="center", va="center", fontsize=6.5, fontweight="bold",
                            zorder=6, annotation_clip=True, **style)
    x = MAP_BOX[0] + MAP_BOX[2] + 0.35
    fig.text(x / w, 5.95 / h, "District figures", fontsize=10, fontweight="bold", va="top")
    top = 5.72
    if str(row.get("assessment", "")) == "mostly not assessed":  # said before any figure is read
        share = row.get("assessed_share", math.nan)
        note = "\n".join(measure.lines(f"Mostly not assessed ({100 * share:.0f} % of its area has enough evidence): "
                                        "its figures are not a ranking, and it is briefed after every assessed district.",
                                        PAGE[0] - 0.4 - x, 8, "bold"))  # to the page's margin
        fig.text(x / w, top / h, note, fontsize=8, fontweight="bold", color="#b2182b", va="top", linespacing=1.3)
        top -= 0.2 + 0.16 * len(note.splitlines())
    # a long table of figures (assessed share, both means, a class per column…) in smaller type, so
    # the district's riskiest zones still fit below it
    y = text_table(fig, x, top, [2.5, 0.95], None, [list(f) for f in figures], fontsize=8 if len(figures) <= 20 else 7,
                   right=[False, True])
    fig.text(x / w, (y - 0.12) / h, "Priority zones in this district", fontsize=10, fontweight="bold", va="top")
    _zone_list(fig, x, y - 0.35, look.listed)
    return fig


def written_scale(width_m: float, width_in: float) -> int:
    """The map's scale denominator N (1 : N) for `width_m` metres of ground drawn `width_in`
    inches wide, to two significant figures (within 5 %: a reader measures with it, so it is
    rounded, never snapped to a round series)."""
    n = width_m / (width_in * 0.0254)
    step = 10 ** max(0, math.floor(math.log10(n)) - 1)
    return int(round(n / step) * step)


def _zone_list(fig: Figure, x: float, y: float, zones) -> None:
    """Rank, class, km² and mean P_c (or residual) of the district's zones, as many as fit."""
    if zones is None or not len(zones):  # none found, or none looked for: not the same thing
        fig.text(x / PAGE[0], y / PAGE[1], "not computed ([products.priority_zones] disabled)" if zones is None
                 else "none", fontsize=8, va="top", color="#444444")
        return
    # with released land, zones come from the residual and carry mean_residual instead of mean_pc
    cols = ["rank", "risk_class", "area_km2", "mean_residual" if "mean_residual" in zones else "mean_pc"]
    headers, rows, _ = readable(zones[cols])
    shared = zones["shared"].to_numpy() if "shared" in zones else np.zeros(len(zones), bool)
    lines = max(1, int((y - 0.75) / 0.16))  # that fit: rows, "and N more", a line for each shared zone listed
    n = min(len(rows), lines)
    while n > 1 and n + (n < len(rows)) + int(shared[:n].sum()) > lines:
        n -= 1  # the riskiest always listed
    rest, rows = zones.iloc[n:], rows[:n]
    shown = zones.iloc[:len(rows)]
    shared = shown[shared[:len(rows)]]
    for k in np.flatnonzero(shown["shared"].to_numpy()) if len(shared) else []:
        rows[k][0] = f"*{rows[k][0]}"  # homed in a neighbour: its km² here are said below
    # the last header ("Mean residual P_res", bold) is 1.26 in: right-aligned in 1.45, clear of "Area (km²)"
    y = text_table(fig, x, y, [0.5, 0.75, 0.85, 1.45], headers, rows, fontsize=7.5, right=[True, False, True, True])
    if len(rest):
        fig.text(x / PAGE[0], y / PAGE[1], f"and {len(rest)} more ({fmt(rest['area_km2'].sum(), 2)} km²): "
                 "see priority_zones.gpkg", fontsize=7.5, va="top", color="#444444")
        y -= 0.16
    for _, z in shared.iterrows():
        fig.text(x / PAGE[0], y / PAGE[1], measure.one_line(
            f"*{z['rank']}: {fmt(z['here_km2'], 2)} of its {fmt(z['area_km2'], 2)} km² lie here; listed under "
            f"{z['district']}", PAGE[0] - 0.4 - x, 7.5), fontsize=7.5, va="top", color="#444444")
        y -= 0.16
