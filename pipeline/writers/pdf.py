"""OUT/briefing.pdf: the pack a team lead hands on without opening QGIS: a cover, one A4
landscape page per district and, once `minemap evaluate` has run, its results.

Drawn with matplotlib's object API (Figure + PdfPages; no pyplot, which keeps global state) in
the same colours as the .qml styles (`Legend`). Rasters are read decimated, so GDAL serves them
from the products' overviews at the resolution the page needs (≤ 200 dpi), and embedded
unresampled; vectors stay vectors.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import textwrap
import threading
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas
import pikepdf
import rasterio
import shapely
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.path import Path as MplPath
from rasterio.windows import Window

from . import assessed
from .columns import column, fmt, readable
from .maps import OUTLINE, _colours, _scale_bar, cells_digest, coloured, legend_title, north_arrow
from .styles import Legend

if TYPE_CHECKING:
    import geopandas

PAGE = (11.69, 8.27)  # A4 landscape, inches
DPI = 200  # print resolution: rasters are read at most this fine for their size on the page; outlines,
# fills and record points are drawn as images at it too (thousands of vector zone paths made one page take seconds)
ZONE, CLEARED, RECORD = "#000000", "#1f78b4", "#111111"
MAX_LABELS = 60  # zone ranks written on one page's map
RECORDS_AS_DOTS = 200  # more records than this in a page's view are drawn as counts per square
PAGE_STYLE = "5"  # in every stored district page's key: raise it when the page's drawing changes
HALO = [patheffects.withStroke(linewidth=2.2, foreground="white")]
CAVEAT = ("A model of the evidence listed, not a survey result. P_c is the estimated probability of "
          "contamination from mine records, soil and drone data; where evidence is thin (see "
          "evidence_count.tif) a low value is not proof that land is safe. Confirm on the ground "
          "before any land is released or entered.")


@dataclass
class Briefing:
    """What the pack shows; geometries are in the raster's CRS."""

    title: str
    region: str
    created: str  # ISO UTC
    version: str
    label: str
    inputs: dict[str, list[str]]  # file → the variables it feeds (as in run.json "inputs")
    raster: Path  # P_c, or the residual risk: a readable file with overviews
    raster_title: str
    unit: str
    legend: Legend
    districts: geopandas.GeoDataFrame | None = None  # the district table, with geometry
    zones: geopandas.GeoDataFrame | None = None
    records: np.ndarray = field(default_factory=lambda: np.empty(0, object))  # mine-record points
    cleared: np.ndarray = field(default_factory=lambda: np.empty(0, object))  # cleared-area polygons
    evaluation: dict | None = None
    evaluation_written: str = ""  # when evaluation.json was written (it may predate this run)
    caveat: str = CAVEAT
    changes: list[str] | None = None  # zone changes since the previous run, in words (None: first run)
    change: tuple[Path, Legend] | None = None  # change_since_previous.tif and its colours
    redone: list[tuple[float, float, float, float]] | None = None  # an update's redone chunks (None: all new)
    looks: dict[str, str] = field(default_factory=dict)  # the last run's page cells: window → digest
    model: tuple[str, str | None] | None = None  # a fitted [model]: what was applied, and its banner (#21)
    hidden: assessed.NotAssessed | None = None  # land not assessed on `raster` (a grey hatch)
    paged: np.ndarray | None = None  # which districts have a page (the others lie outside the region)
    change_hidden: assessed.NotAssessed | None = None  # and on the change map
    as_of: tuple[str, str] | None = None  # the newest input's time (ISO UTC) and file: what the map is "as of"
    tasks: pandas.DataFrame | None = None  # the top field tasks (`pipeline.tasks.top_tasks`), for the summary
    classes: list[tuple[str, str]] = field(default_factory=list)  # risk classes, lowest first: name, km² column


def write_briefing(pdf: Path, b: Briefing, kept: dict[Path, str] | None = None, staged: Path | None = None,
                   then: Callable[[], dict] | None = None, pool: Executor | None = None) -> dict:
    """Write `pdf` (replaced atomically): cover, a page per district, the changes and evaluation
    pages. Returns the districts whose page was "drawn" and those "reused", and the pages'
    "looks" (window → digest of its cells, for the next run's `b.looks`).

    A district page is two layers: its drawing (map, outlines, points, legends: most of the time)
    is stored in `staged` under a key of everything it shows (see `_map_key`), and taken from
    `kept` (an earlier run's, with their SHA-256) when its key is there and its bytes are the ones
    recorded; its words (heading, run, page number, zone
    ranks, figures, zone list) are drawn each run and stamped over it, so a reused drawing carries
    this run's numbers: it shows the same cells and outlines, or it would not have been reused.
    `then` returns fields of `b` known only later (the changes), waited for before the words.
    `pool` (e.g. the run's worker processes) draws the drawings to make while the words are drawn
    here; without one they are drawn here first."""
    pdf = Path(pdf)
    b = replace(b, districts=in_priority_order(b.districts))
    paged = _on_grid(b)  # districts with cells in the grid's region get a page; the rest are listed on the cover
    districts = b.districts[paged] if b.districts is not None else None
    tmp = pdf.with_name(f".{pdf.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    done: dict = {"drawn": [], "reused": []}
    looks: dict[str, str] = {}
    maps: list[bytes | Future] = []
    keys, texts = [], []
    if districts is not None:
        headers, rows, _ = readable(districts.drop(columns=["district"]))  # one rounding per column
        sent = _for_drawing(b)
        for k in range(len(districts)):
            row = districts.iloc[k]
            look = _district_look(b, row)
            looks[look.window] = look.digest
            key = _map_key(b, row, look)
            drawing = _stored_page(kept, key)
            done["reused" if drawing is not None else "drawn"].append(str(row["district"]))
            if drawing is None:  # drawn in `pool` while the next looks and the words are made here
                look = _with_cells(b, look)
                drawing = pool.submit(_drawing, sent, row, look) if pool is not None else _drawing(sent, row, look)
            maps.append(drawing)
            keys.append(key)
            texts.append((row, list(zip(headers, rows[k])), replace(look, data=None, hidden=None)))  # the words need no cells
    if then is not None:
        b = replace(b, **then())
    n_pages = 1 + (len(districts) if districts is not None else 0) + (b.evaluation is not None) + (b.changes is not None)
    b = replace(b, paged=paged)
    front = 1 + (b.changes is not None)  # the summary, then what changed: the answer before the detail
    rest = io.BytesIO()  # the summary, the changes, each district page's words and the evaluation page
    with PdfPages(rest) as pages:
        pages.savefig(_cover(b, n_pages), dpi=DPI)
        if b.changes is not None:
            pages.savefig(_changes_page(b, 2, n_pages), dpi=DPI)
        for k, (row, figures, look) in enumerate(texts):
            pages.savefig(_district_text(b, row, figures, look, k + 1 + front, n_pages), dpi=DPI)
        if b.evaluation is not None:
            pages.savefig(_evaluation_page(b, n_pages), dpi=DPI)
    maps = [m.result() if isinstance(m, Future) else m for m in maps]
    for key, drawing in zip(keys, maps):
        _store_page(staged, key, drawing)
    done["looks"] = looks  # for the next run's state (see `_district_look`)
    sources = []  # open until the pack is saved: its pages refer to them
    try:
        made = pikepdf.open(io.BytesIO(rest.getvalue()))
        sources.append(made)
        with pikepdf.new() as out:
            for page in made.pages[:front]:
                out.pages.append(page)
            for k, drawing in enumerate(maps):
                sources.append(pikepdf.open(io.BytesIO(drawing)))
                out.pages.append(sources[-1].pages[0])
                out.pages[-1].add_overlay(made.pages[front + k])  # this run's words over the district's drawing
            for page in made.pages[front + len(maps):]:
                out.pages.append(page)
            out.docinfo["/Title"] = f"{b.title} — briefing"
            out.docinfo["/Subject"] = b.label or "minemap briefing"
            out.docinfo["/Creator"] = f"minemap {b.version}"
            out.save(tmp)
        os.replace(tmp, pdf)
    finally:
        tmp.unlink(missing_ok=True)
        for source in sources:
            source.close()
    return done


def in_priority_order(districts: "geopandas.GeoDataFrame | None") -> "geopandas.GeoDataFrame | None":
    """The districts in the order to brief them: by `priority` (1 first; mostly-not-assessed
    districts come after all assessed ones) when the table has it, else as they are."""
    if districts is None or "priority" not in districts:
        return districts
    return districts.sort_values("priority", kind="stable", na_position="last")


def _on_grid(b: Briefing) -> np.ndarray:
    """Which districts hold cells of the grid's region (a districts layer may reach beyond it:
    those have no cells to map, and no page)."""
    if b.districts is None:
        return np.zeros(0, bool)
    with rasterio.open(b.raster) as ds:
        grid = shapely.box(*ds.bounds)
    inside = shapely.intersects(np.asarray(b.districts.geometry.values, dtype=object), grid)
    if "area_km2" in b.districts:
        inside &= b.districts["area_km2"].fillna(0).to_numpy() > 0
    return inside


def _drawing(b: Briefing, row, look: Look) -> bytes:
    """A district page's drawing as PDF bytes (a module-level function: a worker process can run it)."""
    return _pdf_bytes(_district_map(b, row, look))


def _for_drawing(b: Briefing) -> Briefing:
    """`b` as far as `_district_map` uses it (the look carries the page's own records, areas and
    zones): sent to a worker per drawing, so not the region's records, areas and zone table (MBs)."""
    districts = b.districts[["geometry"]] if b.districts is not None else None
    return replace(b, inputs={}, districts=districts, zones=None, records=np.empty(0, object),
                   cleared=np.empty(0, object), evaluation=None, changes=None, change=None)


def _pdf_bytes(fig: Figure) -> bytes:
    buf = io.BytesIO()
    with PdfPages(buf) as pages:
        pages.savefig(fig, dpi=DPI)
    return buf.getvalue()


def _stored_page(kept: dict[Path, str] | None, key: str) -> bytes | None:
    """The drawing kept under `key`, if its bytes are the ones recorded (else None: drawn again)."""
    for path, sha in sorted((kept or {}).items()):
        if path.name.startswith(f"{key}-") and path.is_file():
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() == sha:
                return data
    return None


def _store_page(staged: Path | None, key: str, body: bytes) -> None:
    if staged is not None:
        staged.mkdir(parents=True, exist_ok=True)
        (staged / f"{key}-{hashlib.sha256(body).hexdigest()[:16]}.pdf").write_bytes(body)


def _map_key(b: Briefing, row, look: "Look") -> str:
    """A hash of everything a district page's drawing shows (`_district_map`): same key, same
    drawing. Ranks, figures and the run are in its words, drawn each run."""
    h = hashlib.sha256()
    for part in (PAGE_STYLE, DPI, b.version, b.raster_title, b.unit, repr(b.legend), repr(look.view),
                 repr(look.extent), look.window, look.digest, len(look.cleared), len(look.records),
                 b.hidden.label if b.hidden is not None else None):
        h.update(repr(part).encode() + b"\0")
    h.update(shapely.to_wkb(row.geometry))
    near = look.near.geometry.values if look.near is not None else []
    # zones as far as the map shows them (in one form whatever their ring's start): a zone that
    # changed only beyond the view draws the same
    shown = shapely.normalize(shapely.clip_by_rect(np.asarray(near, dtype=object), *look.view))
    for geoms in (b.districts.geometry.values, look.cleared, shown):
        h.update(repr(len(geoms)).encode())
        for g in geoms:
            h.update(shapely.to_wkb(g))
    h.update(np.ascontiguousarray(look.records, dtype=np.float64).tobytes())
    return h.hexdigest()[:32]


def _page(b: Briefing, number: int, total: int, heading: str, subheading: str) -> Figure:
    """An A4 landscape page with its heading and the footer every page carries (label, run, page)."""
    fig = Figure(figsize=PAGE, dpi=72, facecolor="white")  # rasters go in unresampled: dpi is for points only
    w, h = PAGE
    size, lines = heading_lines(heading)
    fig.text(0.4 / w, 1 - 0.3 / h, "\n".join(lines), fontsize=size, fontweight="bold", va="top", linespacing=1.15)
    below = max(0.68, 0.3 + len(lines) * size * 1.2 / 72 + 0.06)
    fig.text(0.4 / w, 1 - below / h, subheading, fontsize=9, color="#444444", va="top")
    if b.label:
        fig.text(0.4 / w, 0.22 / h, b.label, fontsize=8.5, fontweight="bold", color="#b2182b", va="bottom")
    fig.text(1 - 0.4 / w, 0.22 / h, f"minemap {b.version} · run {_when(b.created)} · page {number} of {total}",
             fontsize=8, color="#444444", va="bottom", ha="right")
    return fig


HEADING_IN = 0.55  # room for a page's heading above its subheading (the map starts 1.07 in from the top)


def heading_lines(heading: str, width_in: float = PAGE[0] - 0.8) -> tuple[float, list[str]]:
    """A heading's font size and lines: 16 pt on one line when it fits, else smaller and wrapped
    (a district's name can be longer than the page: shown whole, never cut)."""
    for size in (16, 13, 11, 9, 8):
        lines = textwrap.wrap(heading, max(10, int(width_in * 72 / (size * 0.68)))) or [""]  # bold DejaVu ≤ 0.68 em
        if len(lines) == 1 or len(lines) * size * 1.2 / 72 <= HEADING_IN:
            return size, lines
    return size, lines


def _when(created: str) -> str:
    return f"{created[:16].replace('T', ' ')} UTC"


COVER_BOX = (5.75, 1.0, 5.55, 6.0)  # the changes page's map: x, y, width, height in inches
SUMMARY_BOX = (6.2, 1.0, 5.1, 3.3)  # the summary's overview map, below its longest district list (≤ 12 rows, 4.38 in)


def _hatch(ax: Axes, hidden: assessed.NotAssessed | None, where: "_Window", data: np.ma.MaskedArray,
           mask: np.ndarray | None = None) -> None:
    """Land not assessed in `where` (the cells of `data`) as the grey hatch, drawn as an image at
    DPI like the outlines; `mask` when it was read already."""
    if hidden is None:
        return
    if mask is None:
        mask = hidden.mask(data, assessed.read_window(hidden.source, where.level, where.window, where.shape))
    assessed.draw(ax, mask, where.extent, zorder=2, rasterized=True)


def district_notes(b: Briefing) -> list[list[str]]:
    """The cover's district rows, in the pages' order: priority, name, assessed share, and what
    a reader must know (mostly not assessed: never ranked by its soil-only mean; outside the region)."""
    d = b.districts
    paged = b.paged if b.paged is not None else np.ones(len(d), bool)
    rows = []
    pages = np.cumsum(paged) + 1 + (b.changes is not None)  # the summary is page 1, the changes page 2
    for k in range(len(d)):
        row = d.iloc[k]
        rank = fmt(row["priority"], 0) if "priority" in d else str(pages[k]) if paged[k] else ""
        share = f"{100 * row['assessed_share']:.0f} %" if "assessed_share" in d and row["assessed_share"] == \
            row["assessed_share"] else "–"
        note = "outside the region: no page" if not paged[k] else (
            "mostly not assessed" if str(row.get("assessment", "")) == "mostly not assessed" else "")
        rows.append([rank, _short(str(row["district"]), 40), share, note])
    return rows


def _district_list(fig: Figure, b: Briefing, y: float, x: float = 6.2) -> float:
    """Districts in the order of their pages (by priority when known), with their assessed share,
    the mostly-not-assessed ones listed apart below; returns the y below (inches). Long lists end
    with "… and N more"."""
    w, h = PAGE
    title = "Districts in order of priority" if "priority" in b.districts else "Districts"
    fig.text(x / w, y / h, title, fontsize=10, fontweight="bold", va="top")
    rows = district_notes(b)
    apart = [r for r in rows if r[3] == "mostly not assessed"]
    ranked = [r for r in rows if r[3] != "mostly not assessed"]
    widths, right = [0.6, 2.4, 0.75, 1.3], [True, False, True, False]
    limit = 12 - min(len(apart), 4)
    if len(ranked) > limit:
        ranked = ranked[:limit - 1] + [["", f"… and {len(ranked) - limit + 1} more", "", "(districts.csv)"]]
    y = _text_table(fig, x, y - 0.25, widths, ["priority" if "priority" in b.districts else "page", "district",
                                               "assessed", ""], ranked, fontsize=7.5, right=right)
    if apart:
        fig.text(x / w, (y - 0.08) / h, "Mostly not assessed: too little evidence to rank (unknown, not safe)",
                 fontsize=8, fontweight="bold", color="#b2182b", va="top")
        if len(apart) > 4:
            apart = apart[:3] + [["", f"… and {len(apart) - 3} more", "", "(districts.csv)"]]
        y = _text_table(fig, x, y - 0.3, widths, None, [r[:3] + [""] for r in apart], fontsize=7.5, right=right)
    return y - 0.2


def land_rows(d: "pandas.DataFrame | None", classes: list[tuple[str, str]]) -> list[list[str]]:
    """The summary's land table from the district table `d`: km² assessed, not assessed, and per
    risk class (`classes`: name, column; empty without districts)."""
    if d is None or not len(d):
        return []
    rows = []
    classes = [(c, k) for c, k in classes if k in d]
    unknown = float(d["km2_insufficient_evidence"].fillna(0).sum()) if "km2_insufficient_evidence" in d else 0.0
    if classes:
        assessed_km2 = sum(float(d[k].fillna(0).sum()) for _, k in classes)
        rows.append(["Assessed", fmt(assessed_km2, 1)])
        if "km2_insufficient_evidence" in d:
            rows.append(["Not assessed (unknown, not safe)", fmt(unknown, 1)])
        rows += [[f"   class {c}", fmt(float(d[k].fillna(0).sum()), 1)] for c, k in reversed(classes)]
    elif "area_km2" in d:
        rows.append(["Districts' area", fmt(float(d["area_km2"].fillna(0).sum()), 1)])
    return rows


def _task_table(fig: Figure, b: Briefing, y: float) -> float:
    """The top field tasks: where to send teams first, with their MGRS reference; returns the y below."""
    w, h = PAGE
    fig.text(0.4 / w, y / h, "Where to send teams first: top field tasks", fontsize=10, fontweight="bold", va="top")
    t = b.tasks
    if t is None:
        fig.text(0.4 / w, (y - 0.25) / h, "no field tasks ([products.priority_zones] disabled)", fontsize=8,
                 va="top", color="#444444")
        return y - 0.45
    if not len(t):
        fig.text(0.4 / w, (y - 0.25) / h, "none: no priority zone in this run", fontsize=8, va="top", color="#444444")
        return y - 0.45
    prob = "mean_residual" if "mean_residual" in t else "mean_pc"
    rows = [[str(k + 1), str(r["mgrs"]), fmt(r["area_km2"], 2), str(r["risk_class"]), fmt(r[prob], 2),
             _short(str(r["district"]), 20), str(r["task_id"])] for k, (_, r) in enumerate(t.iterrows())]
    head = ["#", "MGRS", "km²", "class", "P_res" if prob == "mean_residual" else "P_c", "district", "task"]
    return _text_table(fig, 0.4, y - 0.25, [0.3, 1.25, 0.45, 0.7, 0.45, 1.2, 1.0], head, rows, fontsize=7.5,
                       right=[True, False, True, False, True, False, False]) - 0.05


def change_summary(b: Briefing, limit: int = 3) -> str:
    """What changed since the previous run, in a few lines (all of it on the changes page)."""
    if b.changes is None:
        return "First run in this folder: nothing to compare with."
    if not b.changes:
        return "No priority zone changed."
    lines = [_short(x, 110) for x in b.changes[:limit]]
    if len(b.changes) > limit:
        lines.append(f"… and {len(b.changes) - limit} more: page 2")
    return "\n".join(lines)


def _cover(b: Briefing, total: int) -> Figure:
    """Page 1, the summary: what the data is as of, how much land is assessed and in which class,
    where to send teams first (the top tasks with MGRS references), the districts by priority
    (the mostly-not-assessed apart), what changed, the caveat and an overview map."""
    fig = _page(b, 1, total, f"{b.title}: summary", f"Briefing pack · region {b.region} · data as of "
                f"{_when(b.as_of[0]) if b.as_of else 'unknown'} · run {_when(b.created)}")
    w, h = PAGE
    y = 1 - 1.12 / h
    if b.label:
        label = _wrap(b.label, 60)
        fig.text(0.4 / w, y, label, fontsize=11, fontweight="bold", color="#b2182b", va="top")
        y -= (0.15 + 0.19 * len(label.splitlines())) / h
    skill = (b.evaluation or {}).get("skill") or {}
    banner = (b.model[1] if b.model is not None else None) or skill.get("banner")
    if banner:  # the fitted model or the evaluated map does not beat the baseline: said first (#21)
        text = _wrap(banner, 95)
        fig.text(0.4 / w, y, text, fontsize=7.5, fontweight="bold", color="#b2182b", va="top",
                 bbox={"facecolor": "#fde0dd", "edgecolor": "#b2182b", "boxstyle": "square,pad=0.3"})
        y -= (0.25 + 0.14 * len(text.splitlines())) / h
    facts = [("Region (grid)", b.region),
             ("Data as of", f"{_when(b.as_of[0])} (newest input: {_short(Path(b.as_of[1]).name, 34)})"
              if b.as_of else "unknown"),
             ("Run date", f"{_when(b.created)} · minemap {b.version}"),
             ("Map", _short(b.raster_title, 60))]
    if b.model is not None:
        facts.append(("Fitted model", _short(b.model[0], 60)))
    if skill.get("baseline_auc") is not None and skill.get("auc") is not None:  # minemap evaluate's (#21 §5)
        facts.append(("Skill (evaluate)", f"AUC {skill['auc']:.3f} vs {skill['baseline_auc']:.3f} nearest record"))
    if b.districts is not None:
        outside = len(b.districts) - int(b.paged.sum()) if b.paged is not None else 0
        facts.append(("Districts", f"{len(b.districts)} (one page each)" if not outside else
                      f"{len(b.districts)}: {len(b.districts) - outside} with a page, {outside} outside the region"))
    if b.inputs:
        facts.append(("Inputs", f"{len(b.inputs)} files (listed in run.json, \"inputs\")"))
    y = _text_table(fig, 0.4, y * h, [1.3, 3.9], None, [[k, v] for k, v in facts], fontsize=8.5)
    land = land_rows(b.districts, b.classes)
    if land:
        fig.text(0.4 / w, (y - 0.12) / h, "Land (km²)", fontsize=10, fontweight="bold", va="top")
        y = _text_table(fig, 0.4, y - 0.37, [2.2, 1.0], None, land, fontsize=8, right=[False, True])
    y = _task_table(fig, b, y - 0.12)
    fig.text(0.4 / w, (y - 0.12) / h, "Since the previous run", fontsize=10, fontweight="bold", va="top")
    changed = change_summary(b)
    fig.text(0.4 / w, (y - 0.37) / h, changed, fontsize=7.5, va="top", linespacing=1.35)
    y -= 0.45 + 0.15 * len(changed.splitlines())
    caveat = _wrap(b.caveat, 125)
    fig.text(0.4 / w, max(y, 0.55 + 0.13 * len(caveat.splitlines())) / h, caveat, fontsize=6.5, va="top",
             color="#444444", linespacing=1.3)
    if b.districts is not None and len(b.districts):
        _district_list(fig, b, 7.16)
    # the overview map on the right: the whole region from the file's coarse overviews
    where = _Window.of(b.raster, None, 900)
    data, extent = where.read(b.raster), where.extent
    box = SUMMARY_BOX
    ax = fig.add_axes((box[0] / w, box[1] / h, box[2] / w, box[3] / h))
    image = _raster(ax, data, extent, b.legend)
    _hatch(ax, b.hidden, where, data)
    _fit(ax, extent, box[2] / box[3])
    if b.zones is not None and len(b.zones):
        _outlines(ax, b.zones.geometry.values, ZONE, 0.5)
    if b.districts is not None:
        _outlines(ax, b.districts.geometry.values, OUTLINE, 0.8)
        for name, geom in zip(b.districts["district"], b.districts.geometry.values):
            p = geom.representative_point()
            ax.annotate(textwrap.fill(str(name), 14), (p.x, p.y), ha="center", va="center", fontsize=6.5, fontweight="bold",
                        path_effects=HALO, zorder=5)
    _finish_map(ax)
    _ramp_legend(fig, image, b, (box[0] + 0.3, 0.62, 2.6, 0.12))
    if b.hidden is not None:
        fig.legend(handles=[assessed.legend_patch(_wrap(b.hidden.label, 40))], loc="upper left",
                   bbox_to_anchor=((box[0] + 3.05) / w, 0.88 / h), fontsize=7, frameon=False, borderaxespad=0)
    return fig


@dataclass
class Look:
    """What a district page's map shows: the view, the cells read for it, and the zones,
    cleared areas and records within it."""

    view: tuple[float, float, float, float]
    data: np.ma.MaskedArray | None  # None: not read (the same cells as last run, see `_district_look`)
    extent: tuple[float, float, float, float]
    near: "geopandas.GeoDataFrame | None"  # zones meeting the view
    listed: "geopandas.GeoDataFrame | None"  # the district's zones
    cleared: list
    records: np.ndarray  # (n, 2) points
    window: str = ""  # which cells of which file: overview level, window, shape (see `_Window`)
    digest: str = ""  # of the cells and their mask
    where: "_Window | None" = None  # those cells, to read them when the page is drawn
    hidden: np.ndarray | None = None  # which of them were not assessed (drawn as a hatch)


MAP_BOX = (0.4, 0.65, 6.9, 6.55)  # a district page's map: x, y, width, height in inches


def district_view(geometry) -> tuple[float, float, float, float]:
    """What a district page's map shows (left, bottom, right, top): the district and a margin,
    widened to the map box's shape."""
    x0, y0, x1, y1 = geometry.bounds
    margin = 0.08 * max(x1 - x0, y1 - y0, 1.0)
    return _view((x0 - margin, y0 - margin, x1 + margin, y1 + margin), MAP_BOX[2] / MAP_BOX[3])


def _district_look(b: Briefing, row) -> Look:
    """What the page shows. Its cells are not read when an update left them alone: the window
    meets no redone chunk (`b.redone`) and the last run recorded their digest (`b.looks`)."""
    box = MAP_BOX
    view = district_view(row.geometry)
    where = _Window.of(b.raster, view, round(max(box[2], box[3]) * DPI))  # as fine as the box at DPI needs
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
        listed = zones[zones["district"] == str(row["district"])]
    shown = b.records[_meeting(b.records, seen)] if len(b.records) else b.records
    pts = shapely.get_coordinates(shown).reshape(-1, 2)
    return Look(view, data, extent, near, listed, cleared, pts, window, digest, where, hidden)


def _cells(b: Briefing, where: "_Window") -> tuple[np.ma.MaskedArray, np.ndarray | None]:
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


def _with_cells(b: Briefing, look: Look) -> Look:
    """`look` with its cells read, to draw it."""
    if look.data is not None:
        return look
    data, hidden = _cells(b, look.where)
    return replace(look, data=data, hidden=hidden)


def _meeting(geoms: np.ndarray, seen) -> np.ndarray:
    """Which of `geoms` (None allowed) meet `seen`, in one vectorised test."""
    return shapely.intersects(np.asarray(geoms, dtype=object), seen)


def _district_map(b: Briefing, row, look: Look) -> Figure:
    """A district page's drawing: the map around it at print resolution and its legends; what
    changes with ranks, figures or the run is drawn over it by `_district_text`."""
    fig = Figure(figsize=PAGE, dpi=72, facecolor="white")  # rasters go in unresampled: dpi is for points only
    w, h = PAGE
    box = MAP_BOX
    view, data, extent = look.view, look.data, look.extent
    ax = _map_axes(fig, view)
    image = _raster(ax, data, extent, b.legend, _repeat(data.shape[1], extent[1] - extent[0], view[2] - view[0], box[2]))
    if look.hidden is not None:
        assessed.draw(ax, look.hidden, extent, zorder=2, rasterized=True)
    if look.cleared:
        _fill(ax, look.cleared, CLEARED)
    if b.districts is not None:
        _outlines(ax, b.districts.geometry.values, "#777777", 0.6)
    _outlines(ax, [row.geometry], OUTLINE, 1.6)
    if look.near is not None and len(look.near):
        _outlines(ax, look.near.geometry.values, ZONE, 0.9)
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
    _finish_map(ax)
    _scale_bar(ax, view[2] - view[0], view[3] - view[1])
    # right column: legends (the figures and zones come with the text)
    x = box[0] + box[2] + 0.35
    _ramp_legend(fig, image, b, (x, 7.0, 3.3, 0.12))
    handles = [Patch(facecolor="none", edgecolor=ZONE, label="priority zone (rank)"),
               Line2D([], [], color=OUTLINE, lw=1.6, label="district"),
               Patch(facecolor=CLEARED, alpha=0.45, edgecolor=CLEARED, label="cleared area"), record]
    if b.hidden is not None:
        handles.append(assessed.legend_patch(_wrap(b.hidden.label, 40)))
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


def _district_text(b: Briefing, row, figures: list[tuple[str, str]], look: Look, number: int, total: int) -> Figure:
    """A district page's words on a transparent page, stamped over its drawing: heading, footer,
    the zones' ranks on the map, the district's figures and zones."""
    name = str(row["district"])
    fig = _page(b, number, total, f"District: {name}", f"{b.raster_title} with priority zones, mine records "
                f"and cleared areas · region {b.region} · run {_when(b.created)}")
    fig.patch.set_visible(False)
    w, h = PAGE
    fig.text((MAP_BOX[0] + MAP_BOX[2]) / w, (MAP_BOX[1] - 0.05) / h,
             f"Scale 1 : {written_scale(look.view[2] - look.view[0], MAP_BOX[2]):,} (printed on A4)".replace(",", " "),
             fontsize=8, ha="right", va="top", color="#222222")
    if look.listed is not None and len(look.listed):
        ax = _map_axes(fig, look.view)
        ax.set_axis_off()
        # the district's riskiest zones get their rank (as many as a page can read; a 10 m grid
        # can hold thousands, whose haloed labels took most of the pack's time and hid the map);
        # neighbours' zones are outlined on the drawing but not numbered: their numbers are on their pages
        labelled = look.listed.nsmallest(MAX_LABELS, "rank")
        for rank, g in zip(labelled["rank"], labelled.geometry.values):
            p = g.representative_point()
            # the halo under the rank as its own (outlined) text, so the rank stays text: found by a search
            for style in ({"color": "white", "path_effects": HALO}, {"color": "black"}):
                ax.annotate(str(rank), (p.x, p.y), ha="center", va="center", fontsize=6.5, fontweight="bold",
                            zorder=6, annotation_clip=True, **style)
    x = MAP_BOX[0] + MAP_BOX[2] + 0.35
    fig.text(x / w, 5.95 / h, "District figures", fontsize=10, fontweight="bold", va="top")
    top = 5.72
    if str(row.get("assessment", "")) == "mostly not assessed":  # said before any figure is read
        share = row.get("assessed_share", math.nan)
        note = _wrap(f"Mostly not assessed ({100 * share:.0f} % of its area has enough evidence): its figures "
                     "are not a ranking, and it is briefed after every assessed district.", 58)
        fig.text(x / w, top / h, note, fontsize=8, fontweight="bold", color="#b2182b", va="top", linespacing=1.3)
        top -= 0.2 + 0.16 * len(note.splitlines())
    # a long table of figures (assessed share, both means, a class per column…) in smaller type, so
    # the district's riskiest zones still fit below it
    y = _text_table(fig, x, top, [2.35, 1.0], None, [list(f) for f in figures], fontsize=8 if len(figures) <= 20 else 7,
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
    limit = max(1, int((y - 0.75) / 0.16))
    rest = zones.iloc[max(1, limit - 1):] if len(rows) > limit else zones.iloc[:0]  # the riskiest always listed
    rows = rows[:len(zones) - len(rest)]
    # the last header ("Mean residual P_res", bold) needs ~1.1 in: right-aligned in 1.3, clear of "Area (km²)"
    y = _text_table(fig, x, y, [0.55, 0.85, 0.85, 1.3], headers, rows, fontsize=7.5, right=[True, False, True, True])
    if len(rest):
        fig.text(x / PAGE[0], y / PAGE[1], f"and {len(rest)} more ({fmt(rest['area_km2'].sum(), 2)} km²): "
                 "see priority_zones.gpkg", fontsize=7.5, va="top", color="#444444")


def _evaluation_page(b: Briefing, total: int) -> Figure:
    """What `minemap evaluate` measured, drawn from whatever evaluation.json holds."""
    ev = _flat(b.evaluation or {})
    fig = _page(b, total, total, "Evaluation", "How well the map ranks known events (minemap evaluate, "
                f"evaluation.json written {b.evaluation_written or 'at an unknown time'})")
    w, h = PAGE
    scalars = [[column(k)[0], fmt(v, 0 if isinstance(v, int) else 3)] for k, v in ev.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)]
    scalars += [[column(k)[0], str(v)] for k, v in ev.items() if isinstance(v, str)]
    y = _text_table(fig, 0.4, 7.3, [3.0, 2.0], None, scalars[:14], fontsize=9) if scalars else 7.3
    curve = _capture(ev)
    if curve:
        ax = fig.add_axes((6.3 / w, 4.0 / h, 4.8 / w, 3.2 / h))
        xs, ys = zip(*curve)
        ax.plot([0, 100], [0, 100], color="#999999", lw=0.8, ls="--", label="no better than chance")
        ax.plot(xs, ys, marker="o", color="#2166ac", label="events captured")
        for cx, cy in curve:
            ax.annotate(f"{cy:.0f} %", (cx, cy), textcoords="offset points", xytext=(4, -10), fontsize=7)
        ax.set_xlabel("riskiest share of the region's area (%)", fontsize=8)
        ax.set_ylabel("share of known events inside (%)", fontsize=8)
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7, frameon=False, loc="lower right")
        ax.set_title("Capture curve", fontsize=10, loc="left")
    tables = [(k, v) for k, v in ev.items() if isinstance(v, list) and v and all(isinstance(r, dict) for r in v)]
    for key, records in tables:
        if y < 1.5:
            break
        fig.text(0.4 / w, (y - 0.2) / h, column(key)[0], fontsize=10, fontweight="bold", va="top")
        headers, rows, right = readable(pandas.DataFrame(records))
        rows = rows[:max(1, int((y - 1.2) / 0.17))]
        width = min(0.95, 5.4 / max(1, len(headers)))
        y = _text_table(fig, 0.4, y - 0.45, [width] * len(headers), headers, rows, fontsize=7, right=right) - 0.1
    if not scalars and not curve and not tables:
        fig.text(0.4 / w, 7.2 / h, "evaluation.json holds nothing this page can draw.", fontsize=9, va="top")
    return fig


def _changes_page(b: Briefing, number: int, total: int) -> Figure:
    """The priority zones that appeared, grew, shrank or vanished since the previous run."""
    mapped = f"; the map: {b.change[1].title}" if b.change is not None else ""
    fig = _page(b, number, total, "Changes since the previous run", "Priority zones compared by overlap with the "
                f"previous run's{mapped or ' (change_since_previous.tif maps ΔP)'}")
    w, h = PAGE
    lines = b.changes or []
    limit = 34
    shown = lines[:limit] + ([f"… and {len(lines) - limit} more (listed in run.json, \"changes\")"]
                             if len(lines) > limit else [])
    fig.text(0.4 / w, 7.2 / h, "\n".join(_short(x, 90) for x in shown), fontsize=8, va="top", linespacing=1.5)
    if b.change is not None:  # the ΔP map on the right, with this run's zones
        path, legend = b.change
        where = _Window.of(path, None, 900)
        data, extent = where.read(path), where.extent
        box = COVER_BOX
        ax = fig.add_axes((box[0] / w, box[1] / h, box[2] / w, box[3] / h))
        image = _raster(ax, data, extent, legend)
        _hatch(ax, b.change_hidden, where, data)
        _fit(ax, extent, box[2] / box[3])
        if b.zones is not None and len(b.zones):
            _outlines(ax, b.zones.geometry.values, ZONE, 0.5)
        _finish_map(ax)
        short = replace(legend, title="ΔP (new − previous): the map's title above")  # the long one heads the page
        _ramp_legend(fig, image, replace(b, legend=short, raster_title=legend.title, unit="ΔP"),
                     (box[0] + 0.3, 0.62, 2.6, 0.12))
        if b.change_hidden is not None:
            fig.legend(handles=[assessed.legend_patch(_wrap(b.change_hidden.label, 40))], loc="upper left",
                       bbox_to_anchor=((box[0] + 3.05) / w, 0.88 / h), fontsize=7, frameon=False, borderaxespad=0)
    return fig


def _capture(ev: dict) -> list[tuple[float, float]]:
    """(area %, events %) pairs from a "capture…" entry: {share: value}, [{area…, captured…}] or
    a list of values at the shares in a "…shares…"/"…at…" entry (default 1, 5, 10, 20, 50 %)."""
    key = next((k for k in ev if "capture" in k.lower() and not k.lower().endswith(("_at", "shares", "area"))), None)
    if key is None:
        return []
    raw = ev[key]
    if isinstance(raw, dict) and not any(isinstance(v, (list, dict)) for v in raw.values()):
        pairs = [(_num(k), _num(v)) for k, v in raw.items()]
    elif isinstance(raw, list) and raw and all(isinstance(r, dict) for r in raw):
        pairs = []
        for r in raw:
            xs = [v for k, v in r.items() if any(s in k.lower() for s in ("area", "share_of", "at", "top"))]
            ys = [v for k, v in r.items() if any(s in k.lower() for s in ("captur", "events", "hit"))]
            pairs.append((_num(xs[0]) if xs else math.nan, _num(ys[0]) if ys else math.nan))
    elif isinstance(raw, list):
        at = next((ev[k] for k in ev if k != key and ("share" in k.lower() or k.lower().endswith("_at"))
                   and isinstance(ev[k], list)), [0.01, 0.05, 0.1, 0.2, 0.5])
        pairs = [(_num(a), _num(v)) for a, v in zip(at, raw)]
    else:
        return []
    pairs = [(x, y) for x, y in pairs if math.isfinite(x) and math.isfinite(y)]
    if pairs and max(max(x for x, _ in pairs), max(y for _, y in pairs)) <= 1.0:
        pairs = [(100 * x, 100 * y) for x, y in pairs]  # shares → %
    elif pairs and max(x for x, _ in pairs) <= 1.0:
        pairs = [(100 * x, y) for x, y in pairs]
    return sorted(pairs)


def _flat(ev: dict) -> dict:
    """Sections ({"metrics": {...}}) lifted to the top, so their entries are drawn too; a dict
    keyed by numbers (a curve) stays as it is."""
    out = {}
    for key, value in ev.items():
        if isinstance(value, dict) and value and not all(math.isfinite(_num(k)) for k in value):
            out.update({k if k not in out and k not in ev else f"{key} {k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def _num(v: object) -> float:
    try:
        return float(str(v).rstrip("%").strip())
    except ValueError:
        return math.nan


def _read(tif: Path, view: tuple[float, float, float, float] | None, max_pixels: int):
    """The cells of `tif` in `view` (None: all), at most `max_pixels` across, and their extent."""
    where = _Window.of(tif, view, max_pixels)
    return where.read(tif), where.extent


@dataclass(frozen=True)
class _Window:
    """Which cells a page reads: an overview level, a window in it, and every how-many-th cell."""

    level: int | None
    window: tuple[int, int, int, int]  # col_off, row_off, width, height at that level
    shape: tuple[int, int]
    extent: tuple[float, float, float, float]  # left, right, bottom, top

    def key(self, name: str) -> str:
        return repr((name, self.level, self.window, self.shape))

    def read(self, tif: Path) -> np.ma.MaskedArray:
        with rasterio.open(tif, **({} if self.level is None else {"overview_level": self.level})) as ds:
            data = ds.read(1, window=Window(*self.window), masked=True)  # then every scale-th cell: a
            # VRT's sources would each pick their own nearest cells
        rows, cols = (np.minimum(((np.arange(n) + 0.5) * size / n).astype(np.intp), size - 1)
                      for n, size in zip(self.shape, data.shape))
        return data[rows][:, cols]

    @classmethod
    def of(cls, tif: Path, view: tuple[float, float, float, float] | None, max_pixels: int) -> "_Window":
        """Band 1 within `view` (all when None), at most `max_pixels` across: the coarsest overview
        level still as fine as the page needs, opened as that level and thinned here, so a VRT of
        staged pieces and the COG made of them give the same cells."""
        with rasterio.open(tif) as ds:
            win = Window(0, 0, ds.width, ds.height)
            if view is not None:
                inv = ~ds.transform
                c0, r0 = inv @ (view[0], view[3])
                c1, r1 = inv @ (view[2], view[1])
                c0, r0 = max(0, math.floor(c0)), max(0, math.floor(r0))
                c1, r1 = min(ds.width, math.ceil(c1)), min(ds.height, math.ceil(r1))
                win = Window(c0, r0, max(1, c1 - c0), max(1, r1 - r0))
            scale = max(1.0, max(win.width, win.height) / max_pixels)
            factors = ds.overviews(1)
        level = max((k for k, f in enumerate(factors) if f <= scale), default=None, key=lambda k: factors[k])
        with rasterio.open(tif, **({} if level is None else {"overview_level": level})) as ds:
            if level is not None:  # the window at that level, widened to whole cells
                f = factors[level]
                c0, r0 = int(win.col_off) // f, int(win.row_off) // f
                c1 = min(ds.width, math.ceil((win.col_off + win.width) / f))
                r1 = min(ds.height, math.ceil((win.row_off + win.height) / f))
                win = Window(c0, r0, max(1, c1 - c0), max(1, r1 - r0))
            scale = max(1.0, max(win.width, win.height) / max_pixels)
            shape = (max(1, round(win.height / scale)), max(1, round(win.width / scale)))
            left, bottom, right, top = rasterio.windows.bounds(win, ds.transform)
        return cls(level, (int(win.col_off), int(win.row_off), int(win.width), int(win.height)), shape,
                   (left, right, bottom, top))


def _raster(ax: Axes, data, extent, legend: Legend, repeat: int = 1) -> ScalarMappable:
    """The cells in the legend's colours, embedded unresampled; each cell `repeat` × `repeat`
    pixels, so coarse cells print as sharp squares in any viewer. Returns the colours' mappable."""
    cmap, norm = _colours(legend)
    ax.set_facecolor("white")
    rgb = coloured(data, legend, nodata="white")[..., :3]
    if repeat > 1:
        rgb = rgb.repeat(repeat, axis=0).repeat(repeat, axis=1)
    ax.imshow(rgb, extent=extent, interpolation="none")
    return ScalarMappable(norm, cmap)


def _repeat(cells: int, extent_m: float, view_m: float, box_in: float) -> int:
    """How many pixels per cell bring `cells` across `extent_m` metres nearest to DPI on a map box
    of `box_in` inches showing `view_m` metres: cells read for the page at 199.9 per inch stay one
    pixel each (rounding up made them 2 × 2: four times the pixels to compress for nothing)."""
    ppi = cells / max(extent_m / view_m * box_in, 1e-9)
    return max(1, min(8, round(DPI / ppi)))


def _view(bounds: tuple[float, float, float, float], aspect: float) -> tuple[float, float, float, float]:
    """`bounds` widened to the axes' width/height ratio, centred."""
    x0, y0, x1, y1 = bounds
    cx, cy, bw, bh = (x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0
    if bw / bh < aspect:
        bw = bh * aspect
    else:
        bh = bw / aspect
    return cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2


def _fit(ax: Axes, extent, aspect: float) -> None:
    left, right, bottom, top = extent
    v = _view((left, bottom, right, top), aspect)
    ax.set_xlim(v[0], v[2])
    ax.set_ylim(v[1], v[3])
    ax.set_aspect("equal")


def _finish_map(ax: Axes) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    north_arrow(ax)


def _ramp_legend(fig: Figure, image, b: Briefing, box: tuple[float, float, float, float]) -> None:
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


def _outlines(ax: Axes, geoms, colour: str, width: float) -> None:
    lines = [np.asarray(part.coords)[:, :2] for g in geoms if g is not None and not g.is_empty
             for part in shapely.get_parts(g.boundary)]
    ax.add_collection(LineCollection(lines, colors=colour, linewidths=width, zorder=4, rasterized=True), autolim=False)


def _fill(ax: Axes, geoms, colour: str) -> None:
    """Polygons (holes kept) filled half-transparent with a solid edge."""
    paths = []
    for g in geoms:
        for poly in shapely.get_parts(g):
            if poly.geom_type != "Polygon":
                continue
            rings = [poly.exterior, *poly.interiors]
            verts = np.concatenate([np.asarray(r.coords)[:, :2] for r in rings])
            codes = np.concatenate([[MplPath.MOVETO] + [MplPath.LINETO] * (len(r.coords) - 2) + [MplPath.CLOSEPOLY]
                                    for r in rings])
            paths.append(MplPath(verts, codes))
    if paths:
        ax.add_collection(PathCollection(paths, facecolors=colour, edgecolors=colour, alpha=0.45, linewidths=0.6,
                                         zorder=3, rasterized=True), autolim=False)


def _text_table(fig: Figure, x: float, y: float, widths: list[float], header: list[str] | None,
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
    w, h = PAGE
    for cells, width, r in zip(columns, widths, right):
        fig.text((x + width - 0.08 if r else x) / w, y / h, "\n".join(cells), fontsize=fontsize, va="top",
                 ha="right" if r else "left", multialignment="right" if r else "left", fontweight=weight,
                 linespacing=1.475)  # baselines 1.5 × fontsize apart, as `step` (DejaVu: 1.0167 × spacing)
        x += width


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def _wrap(text: str, width: int) -> str:
    return textwrap.fill(text, width)
