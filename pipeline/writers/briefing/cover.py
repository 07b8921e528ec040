"""Page 1, the summary: the answer first (what the data is as of, land per class, where to
send teams, the districts by priority, what changed) beside an overview map."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas
import shapely
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from shapely.ops import polylabel

from .. import assessed
from ..columns import fmt
from ..maps import OUTLINE
from . import measure
from .brief import Briefing
from .drawing import (HALO, PAGE, ZONE, Window, finish_map, fit, hatch, new_page, outlines, ramp_legend, raster,
                      text_table, when)


SUMMARY_BOX = (6.2, 1.0, 5.1, 3.3)  # the summary's overview map, below the district list: x, y, width, height in inches
LEFT_W = SUMMARY_BOX[0] - 0.4 - 0.25  # the left column's text, inches: clear of the map and the district list
FOOT = 0.55  # the lowest a column's text may reach, inches from the bottom: the footer is below


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
        rows.append([rank, str(row["district"]), share, note])  # (cut to its column by `text_table`)
    return rows


def _district_list(fig: Figure, b: Briefing, y: float, x: float = 6.2, bottom: float = 0.0) -> float:
    """Districts in the order of their pages (by priority when known), with their assessed share,
    the mostly-not-assessed ones listed apart below, down to `bottom` at most; returns the y below
    (inches). Long lists end with "… and N more"."""
    w, h = PAGE
    title = "Districts in order of priority" if "priority" in b.districts else "Districts"
    fig.text(x / w, y / h, title, fontsize=10, fontweight="bold", va="top")
    rows = district_notes(b)
    apart = [r for r in rows if r[3] == "mostly not assessed"]
    ranked = [r for r in rows if r[3] != "mostly not assessed"]
    widths, right = [0.6, 2.1, 0.75, 1.7], [True, False, True, False]  # to 11.25 in: the page's margin
    step = 7.5 / 72 * 1.5
    fits = int((y - bottom - 0.25 - step - (0.3 + 0.08 if apart else 0)) / step)  # rows above `bottom`
    limit = max(2, fits - min(len(apart), 4))
    if len(ranked) > limit:
        ranked = ranked[:limit - 1] + [["", f"… and {len(ranked) - limit + 1} more", "", "(districts.csv)"]]
    y = text_table(fig, x, y - 0.25, widths, ["priority" if "priority" in b.districts else "page", "district",
                                               "assessed", ""], ranked, fontsize=7.5, right=right)
    if apart:
        fig.text(x / w, (y - 0.08) / h, "Mostly not assessed: too little evidence to rank (unknown, not safe)",
                 fontsize=8, fontweight="bold", color="#b2182b", va="top")
        if len(apart) > 4:
            apart = apart[:3] + [["", f"… and {len(apart) - 3} more", "", "(districts.csv)"]]
        y = text_table(fig, x, y - 0.3, widths, None, [r[:3] + [""] for r in apart], fontsize=7.5, right=right)
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


def _task_table(fig: Figure, b: Briefing, y: float, bottom: float = 0.0) -> float:
    """The top field tasks: where to send teams first, with their MGRS reference, as many as fit
    above `bottom`; returns the y below."""
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
             str(r["district"]), str(r["task_id"])] for k, (_, r) in enumerate(t.iterrows())]
    step = 7.5 / 72 * 1.5
    fits = max(2, int((y - bottom - 0.25 - 2 * step) / step))  # the rows above `bottom` (and a line to say the rest)
    rest = rows[fits:] if len(rows) > fits else []
    head = ["#", "MGRS", "km²", "class", "P_res" if prob == "mean_residual" else "P_c", "district", "task"]
    y = text_table(fig, 0.4, y - 0.25, [0.3, 1.25, 0.45, 0.7, 0.45, 1.3, 1.0], head, rows[:fits], fontsize=7.5,
                   right=[True, False, True, False, True, False, False])
    if rest:
        fig.text(0.4 / w, y / h, f"… and {len(rest)} more of the top {len(rows)}: all tasks in tasks.csv", fontsize=7.5,
                 va="top", color="#444444")
        y -= step
    return y - 0.05


def change_summary(b: Briefing, room: float = LEFT_W, limit: int = 3) -> str:
    """What changed since the previous run, in a few lines `room` inches wide at most (all of it
    on the changes page)."""
    if b.changes is None:
        return "First run in this folder: nothing to compare with."
    if not b.changes:
        return "No priority zone changed."
    lines = [measure.one_line(x, room, 7.5) for x in b.changes[:limit]]
    if len(b.changes) > limit:
        lines.append(f"… and {len(b.changes) - limit} more: page 2")
    return "\n".join(lines)


def summary_page(b: Briefing, total: int) -> Figure:
    """Page 1, the summary: what the data is as of, how much land is assessed and in which class,
    where to send teams first (the top tasks with MGRS references), the districts by priority
    (the mostly-not-assessed apart), what changed, the caveat and an overview map. Each text is
    measured into its column (`measure`): a long region, label or district name wraps or is cut,
    never running into the map, the district list or the footer."""
    fig, head = new_page(b, 1, total, f"{b.title}: summary", f"Briefing pack · region {b.region} · data as of "
                         f"{when(b.as_of[0]) if b.as_of else 'unknown'} · run {when(b.created)}")
    w, h = PAGE
    start = PAGE[1] - max(1.12, head + 0.15)  # inches from the bottom: below the (maybe wrapped) headings
    y = start
    if b.label:
        label = measure.balanced(b.label, LEFT_W, 11, "bold")
        fig.text(0.4 / w, y / h, "\n".join(label), fontsize=11, fontweight="bold", color="#b2182b", va="top")
        y -= 0.15 + 0.19 * len(label)
    skill = (b.evaluation or {}).get("skill") or {}
    banner = (b.model[1] if b.model is not None else None) or skill.get("banner")
    if banner:  # the fitted model or the evaluated map does not beat the baseline: said first (#21)
        text = measure.lines(banner, LEFT_W - 0.1, 7.5, "bold")  # (its box reaches 0.3 em beyond)
        fig.text(0.4 / w, y / h, "\n".join(text), fontsize=7.5, fontweight="bold", color="#b2182b", va="top",
                 bbox={"facecolor": "#fde0dd", "edgecolor": "#b2182b", "boxstyle": "square,pad=0.3"})
        y -= 0.25 + 0.14 * len(text)
    facts = [("Region (grid)", b.region),
             ("Data as of", f"{when(b.as_of[0])} (newest input: {Path(b.as_of[1]).name})" if b.as_of else "unknown"),
             ("Run date", f"{when(b.created)} · minemap {b.version}"),
             ("Map", b.raster_title)]
    if b.model is not None:
        facts.append(("Fitted model", b.model[0]))
    if skill.get("baseline_auc") is not None and skill.get("auc") is not None:  # minemap evaluate's (#21 §5)
        facts.append(("Skill (evaluate)", f"AUC {skill['auc']:.3f} vs {skill['baseline_auc']:.3f} nearest record"))
    if b.districts is not None:
        outside = len(b.districts) - int(b.paged.sum()) if b.paged is not None else 0
        facts.append(("Districts", f"{len(b.districts)} (one page each)" if not outside else
                      f"{len(b.districts)}: {len(b.districts) - outside} with a page, {outside} outside the region"))
    if b.inputs:
        facts.append(("Inputs", f"{len(b.inputs)} files (listed in run.json, \"inputs\")"))
    y = text_table(fig, 0.4, y, [1.3, LEFT_W - 1.3 + 0.1], None, [[k, v] for k, v in facts], fontsize=8.5)
    land = land_rows(b.districts, b.classes)
    if land:
        fig.text(0.4 / w, (y - 0.12) / h, "Land (km²)", fontsize=10, fontweight="bold", va="top")
        y = text_table(fig, 0.4, y - 0.37, [2.2, 1.0], None, land, fontsize=8, right=[False, True])
    changed = change_summary(b)
    caveat = measure.lines(b.caveat, LEFT_W, 6.5)
    below = 0.45 + 0.15 * len(changed.splitlines()) + 0.05 + 0.13 * len(caveat)  # what comes after the tasks
    y = _task_table(fig, b, y - 0.12, bottom=FOOT + below + 0.12)
    fig.text(0.4 / w, (y - 0.12) / h, "Since the previous run", fontsize=10, fontweight="bold", va="top")
    fig.text(0.4 / w, (y - 0.37) / h, changed, fontsize=7.5, va="top", linespacing=1.35)
    y -= 0.45 + 0.15 * len(changed.splitlines())
    fig.text(0.4 / w, max(y, FOOT + 0.13 * len(caveat)) / h, "\n".join(caveat), fontsize=6.5, va="top",
             color="#444444", linespacing=1.3)
    if b.districts is not None and len(b.districts):
        _district_list(fig, b, start, bottom=SUMMARY_BOX[1] + SUMMARY_BOX[3] + 0.1)
    # the overview map on the right: the whole region from the file's coarse overviews
    where = Window.of(b.raster, None, 900)
    data, extent = where.read(b.raster), where.extent
    box = SUMMARY_BOX
    ax = fig.add_axes((box[0] / w, box[1] / h, box[2] / w, box[3] / h))
    image = raster(ax, data, extent, b.legend)
    hatch(ax, b.hidden, where, data)
    fit(ax, extent, box[2] / box[3])
    if b.zones is not None and len(b.zones):
        outlines(ax, b.zones.geometry.values, ZONE, 0.5)
    if b.districts is not None:
        outlines(ax, b.districts.geometry.values, OUTLINE, 0.8)
        _names(ax, b.districts["district"], b.districts.geometry.values, box[2])
    finish_map(ax)
    ramp_legend(fig, image, b, (box[0] + 0.3, 0.62, 2.4, 0.12))
    if b.hidden is not None:  # right of the ramp, beside its title and bar (above its ticks), to the margin
        words = "\n".join(measure.balanced(b.hidden.label, PAGE[0] - 0.4 - (box[0] + 2.85) - 0.35, 7))
        fig.legend(handles=[assessed.legend_patch(words)], loc="upper left",
                   bbox_to_anchor=((box[0] + 2.85) / w, 0.9 / h), fontsize=7, frameon=False, borderaxespad=0)
    return fig


NAME_PT = 6.5


def _names(ax: Axes, names, geoms, width_in: float) -> None:
    """District names on the overview map (`width_in` inches wide), each inside its district at
    the first of a few places where it meets no name placed before (the districts come by
    priority: the first keep the best places), else where it meets the fewest; clipped to the
    frame, never drawn over the page."""
    x0, x1 = ax.get_xlim()
    per_in = (x1 - x0) / width_in  # metres per inch
    placed: list[tuple[float, float, float, float]] = []
    for name, geom in zip(names, geoms):
        if geom is None or geom.is_empty:
            continue
        lines = measure.lines(str(name), 1.0, NAME_PT, "bold")
        half_w = (max(measure.width(line, NAME_PT, "bold") for line in lines) / 2 + 0.03) * per_in
        half_h = (len(lines) * NAME_PT * 1.2 / 72 / 2 + 0.02) * per_in
        best, least = None, math.inf
        for x, y in _inside(geom):
            box = (x - half_w, y - half_h, x + half_w, y + half_h)
            overlap = sum(max(0.0, min(box[2], o[2]) - max(box[0], o[0])) * max(0.0, min(box[3], o[3]) - max(box[1], o[1]))
                          for o in placed)
            if overlap < least:
                best, least = (x, y, box), overlap
            if overlap == 0:
                break
        x, y, box = best
        placed.append(box)
        ax.annotate("\n".join(lines), (x, y), ha="center", va="center", fontsize=NAME_PT, fontweight="bold",
                    path_effects=HALO, zorder=5, clip_on=True)


def _inside(geom, across: int = 7) -> list[tuple[float, float]]:
    """Places for a district's name, best first: its point farthest inside (of its largest part),
    its representative point, then points of a grid over it that lie inside, nearest the first."""
    part = max(shapely.get_parts(geom), key=lambda g: g.area)
    first = polylabel(part, tolerance=max(part.length / 500, 1e-9)) if part.geom_type == "Polygon" else \
        part.representative_point()
    places = [(first.x, first.y), (geom.representative_point().x, geom.representative_point().y)]
    x0, y0, x1, y1 = geom.bounds
    xs, ys = np.meshgrid(np.linspace(x0, x1, across + 2)[1:-1], np.linspace(y0, y1, across + 2)[1:-1])
    grid = np.column_stack([xs.ravel(), ys.ravel()])
    grid = grid[shapely.contains_xy(geom, grid[:, 0], grid[:, 1])]
    grid = grid[np.argsort(np.hypot(grid[:, 0] - first.x, grid[:, 1] - first.y), kind="stable")]
    return places + [tuple(p) for p in grid]
