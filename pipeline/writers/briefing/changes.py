"""The changes page: the priority zones that appeared, grew, shrank or vanished since the previous
run, beside the map of the change in probability."""

from __future__ import annotations

from dataclasses import replace

from matplotlib.figure import Figure

from .. import assessed
from .brief import Briefing
from . import measure
from .drawing import PAGE, ZONE, Window, finish_map, fit, hatch, new_page, outlines, ramp_legend, raster


CHANGES_BOX = (5.75, 1.0, 5.55, 6.0)  # the changes page's map: x, y, width, height in inches


def changes_page(b: Briefing, number: int, total: int) -> Figure:
    """The priority zones that appeared, grew, shrank or vanished since the previous run."""
    mapped = f"; the map: {b.change[1].title}" if b.change is not None else ""
    fig, _ = new_page(b, number, total, "Changes since the previous run", "Priority zones compared by overlap with the "
                      f"previous run's{mapped or ' (change_since_previous.tif maps ΔP)'}", room=1.0)
    w, h = PAGE
    lines = b.changes or []
    limit = 34
    shown = lines[:limit] + ([f"… and {len(lines) - limit} more (listed in run.json, \"changes\")"]
                             if len(lines) > limit else [])
    room = CHANGES_BOX[0] - 0.4 - 0.25  # clear of the map
    fig.text(0.4 / w, 7.2 / h, "\n".join(measure.one_line(x, room, 8) for x in shown), fontsize=8, va="top",
             linespacing=1.5)
    if b.change is not None:  # the ΔP map on the right, with this run's zones
        path, legend = b.change
        where = Window.of(path, None, 900)
        data, extent = where.read(path), where.extent
        box = CHANGES_BOX
        ax = fig.add_axes((box[0] / w, box[1] / h, box[2] / w, box[3] / h))
        image = raster(ax, data, extent, legend)
        hatch(ax, b.change_hidden, where, data)
        fit(ax, extent, box[2] / box[3])
        if b.zones is not None and len(b.zones):
            outlines(ax, b.zones.geometry.values, ZONE, 0.5)
        finish_map(ax)
        short = replace(legend, title="ΔP (new − previous): the map's title above")  # the long one heads the page
        ramp_legend(fig, image, replace(b, legend=short, raster_title=legend.title, unit="ΔP"),
                     (box[0] + 0.3, 0.62, 2.6, 0.12))
        if b.change_hidden is not None:
            words = "\n".join(measure.balanced(b.change_hidden.label, PAGE[0] - 0.4 - (box[0] + 3.05) - 0.35, 7))
            fig.legend(handles=[assessed.legend_patch(words)], loc="upper left",
                       bbox_to_anchor=((box[0] + 3.05) / w, 0.88 / h), fontsize=7, frameon=False, borderaxespad=0)
    return fig
