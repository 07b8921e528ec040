"""OUT/report.html: one self-contained page (no scripts, no external resources) with the maps
and the district table, for a briefing or an e-mail; images are linked relatively."""

from __future__ import annotations

import html
import os
from pathlib import Path

import pandas as pd

CSS = """body{font-family:sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{margin-bottom:0}.sub{color:#555;margin-top:.3em}figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{color:#444;font-size:.9em}table{border-collapse:collapse;font-size:.85em}
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right}th{background:#f2f2f2}
td:first-child,th:first-child{text-align:left}.note{color:#555;font-size:.9em}"""


def write_report(path: Path, *, title: str, subtitle: str, maps: list[tuple[str, str, str]],
                 table: pd.DataFrame | None = None, table_title: str = "Districts", notes: list[str] = ()) -> None:
    """`maps` are (png file beside the page, title, caption); every text is escaped."""
    e = html.escape
    parts = [f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{e(title)}</title>"
             f"<style>{CSS}</style></head><body>", f"<h1>{e(title)}</h1>", f"<p class='sub'>{e(subtitle)}</p>"]
    if table is not None:
        parts.append(f"<h2>{e(table_title)}</h2>")
        parts.append(_table(table))
    for png, map_title, caption in maps:
        parts.append(f"<figure><img src='{e(png, quote=True)}' alt='{e(map_title, quote=True)}'>"
                     f"<figcaption><b>{e(map_title)}</b> — {e(caption)}</figcaption></figure>")
    if notes:
        parts.append("<ul class='note'>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    parts.append("</body></html>\n")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(parts), encoding="utf-8")
    os.replace(tmp, path)


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for _, row in frame.iterrows():
        rows.append("<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _fmt(v) -> str:
    if isinstance(v, float):
        if v != v:
            return "–"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.3g}" if abs(v) < 1 else f"{v:,.2f}"
    return str(v)
