"""Page 1, the summary: the answer first (what the data is as of, land per class, where to
send teams, the districts by priority, what changed) beside an overview map."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas
from matplotlib.figure import Figure

from .. import assessed
from ..columns import fmt
from ..maps import OUTLINE
from .brief import Briefing
from .drawing import (HALO, PAGE, ZONE, Window, finish_map, fit, hatch, new_page, outlines, ramp_legend, raster,
                      shortened, text_table, when, wrap)


SUMMARY_BOX = (6.2, 1.0, 5.1, 3.3)  # the summary's overview map, below its longest district list (≤ 12 rows, 4.38 in)


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
        rows.append([rank, shortened(str(row["district"]), 40), share, note])
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
             shortened(str(r["district"]), 20), str(r["task_id"])] for k, (_, r) in enumerate(t.iterrows())]
    head = ["#", "MGRS", "km²", "class", "P_res" if prob == "mean_residual" else "P_c", "district", "task"]
    return text_table(fig, 0.4, y - 0.25, [0.3, 1.25, 0.45, 0.7, 0.45, 1.2, 1.0], head, rows, fontsize=7.5,
                       right=[True, False, True, False, True, False, False]) - 0.05


def change_summary(b: Briefing, limit: int = 3) -> str:
    """What changed since the previous run, in a few lines (all of it on the changes page)."""
    if b.changes is None:
        return "First run in this folder: nothing to compare with."
    if not b.changes:
        return "No priority zone changed."
    lines = [shortened(x, 110) for x in b.changes[:limit]]
    if len(b.changes) > limit:
        lines.append(f"… and {len(b.changes) - limit} more: page 2")
    return "\n".join(lines)


def summary_page(b: Briefing, total: int) -> Figure:
    """Page 1, the summary: what the data is as of, how much land is assessed and in which class,
    where to send teams first (the top tasks with MGRS references), the districts by priority
    (the mostly-not-assessed apart), what changed, the caveat and an overview map."""
    fig = new_page(b, 1, total, f"{b.title}: summary", f"Briefing pack · region {b.region} · data as of "
                f"{when(b.as_of[0]) if b.as_of else 'unknown'} · run {when(b.created)}")
    w, h = PAGE
    y = 1 - 1.12 / h
    if b.label:
        label = wrap(b.label, 60)
        fig.text(0.4 / w, y, label, fontsize=11, fontweight="bold", color="#b2182b", va="top")
        y -= (0.15 + 0.19 * len(label.splitlines())) / h
    skill = (b.evaluation or {}).get("skill") or {}
    banner = (b.model[1] if b.model is not None else None) or skill.get("banner")
    if banner:  # the fitted model or the evaluated map does not beat the baseline: said first (#21)
        text = wrap(banner, 95)
        fig.text(0.4 / w, y, text, fontsize=7.5, fontweight="bold", color="#b2182b", va="top",
                 bbox={"facecolor": "#fde0dd", "edgecolor": "#b2182b", "boxstyle": "square,pad=0.3"})
        y -= (0.25 + 0.14 * len(text.splitlines())) / h
    facts = [("Region (grid)", b.region),
             ("Data as of", f"{when(b.as_of[0])} (newest input: {shortened(Path(b.as_of[1]).name, 34)})"
              if b.as_of else "unknown"),
             ("Run date", f"{when(b.created)} · minemap {b.version}"),
             ("Map", shortened(b.raster_title, 60))]
    if b.model is not None:
        facts.append(("Fitted model", shortened(b.model[0], 60)))
    if skill.get("baseline_auc") is not None and skill.get("auc") is not None:  # minemap evaluate's (#21 §5)
        facts.append(("Skill (evaluate)", f"AUC {skill['auc']:.3f} vs {skill['baseline_auc']:.3f} nearest record"))
    if b.districts is not None:
        outside = len(b.districts) - int(b.paged.sum()) if b.paged is not None else 0
        facts.append(("Districts", f"{len(b.districts)} (one page each)" if not outside else
                      f"{len(b.districts)}: {len(b.districts) - outside} with a page, {outside} outside the region"))
    if b.inputs:
        facts.append(("Inputs", f"{len(b.inputs)} files (listed in run.json, \"inputs\")"))
    y = text_table(fig, 0.4, y * h, [1.3, 3.9], None, [[k, v] for k, v in facts], fontsize=8.5)
    land = land_rows(b.districts, b.classes)
    if land:
        fig.text(0.4 / w, (y - 0.12) / h, "Land (km²)", fontsize=10, fontweight="bold", va="top")
        y = text_table(fig, 0.4, y - 0.37, [2.2, 1.0], None, land, fontsize=8, right=[False, True])
    y = _task_table(fig, b, y - 0.12)
    fig.text(0.4 / w, (y - 0.12) / h, "Since the previous run", fontsize=10, fontweight="bold", va="top")
    changed = change_summary(b)
    fig.text(0.4 / w, (y - 0.37) / h, changed, fontsize=7.5, va="top", linespacing=1.35)
    y -= 0.45 + 0.15 * len(changed.splitlines())
    caveat = wrap(b.caveat, 125)
    fig.text(0.4 / w, max(y, 0.55 + 0.13 * len(caveat.splitlines())) / h, caveat, fontsize=6.5, va="top",
             color="#444444", linespacing=1.3)
    if b.districts is not None and len(b.districts):
        _district_list(fig, b, 7.16)
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
        for name, geom in zip(b.districts["district"], b.districts.geometry.values):
            p = geom.representative_point()
            ax.annotate(textwrap.fill(str(name), 14), (p.x, p.y), ha="center", va="center", fontsize=6.5, fontweight="bold",
                        path_effects=HALO, zorder=5)
    finish_map(ax)
    ramp_legend(fig, image, b, (box[0] + 0.3, 0.62, 2.6, 0.12))
    if b.hidden is not None:
        fig.legend(handles=[assessed.legend_patch(wrap(b.hidden.label, 40))], loc="upper left",
                   bbox_to_anchor=((box[0] + 3.05) / w, 0.88 / h), fontsize=7, frameon=False, borderaxespad=0)
    return fig
