"""OUT/report.html: one self-contained page (inline CSS, no scripts, no external resources) with
the maps and the district table, for a briefing or an e-mail. Images are linked by relative path,
so the output folder can be moved or zipped as a whole."""

from __future__ import annotations

import os
import threading
from html import escape
from pathlib import Path
from typing import Iterable
from urllib.parse import quote

import pandas

from .columns import readable

CSS = """body{font-family:sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
h1{margin-bottom:0}.sub{color:#555;margin-top:.3em}figure{margin:1.5em 0}
figure img{max-width:100%;height:auto;border:1px solid #ddd}figcaption{color:#444;font-size:.9em}
table{border-collapse:collapse;font-size:.85em}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left}
th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}.note{color:#555;font-size:.9em}
.wide{overflow-x:auto}th{vertical-align:bottom}td.num{white-space:nowrap}ul.files{columns:2;font-size:.9em}
@page{size:A4 landscape;margin:12mm}
@media print{body{max-width:none;margin:0;padding:0;font-size:10pt}.wide{overflow:visible}
table{font-size:7pt;width:100%}th,td{padding:.1em .3em}figure{break-inside:avoid;page-break-inside:avoid}
figure img{max-height:140mm;width:auto;max-width:100%}h2{break-after:avoid}tr{break-inside:avoid}}"""


def write_report(html: Path, *, title: str, subtitle: str, maps: list[tuple[str, str, str]],
                 table: pandas.DataFrame | None = None, table_title: str = "Districts",
                 notes: Iterable[str] = (), sections: Iterable[tuple[str, str]] = (),
                 files: Iterable[tuple[str, str]] = ()) -> None:
    """Write the page: `maps` are (PNG file name relative to the page's folder, title, caption),
    then `table` (headers in words, one rounding per column: writers/columns.py), then extra
    `sections` (heading, HTML body the caller has escaped), then `files` (name relative to the
    page's folder, description) as links, then `notes` as bullets. Every text is escaped; the
    file is replaced atomically."""
    e = escape
    parts = ["<!DOCTYPE html>",
             "<html lang='en'><head><meta charset='utf-8'>"
             "<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>{e(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{e(title)}</h1>", f"<p class='sub'>{e(subtitle)}</p>"]
    for png, map_title, caption in maps:
        src = e(quote(str(png)))  # a relative URL: spaces or '#' in a name must not break it
        parts.append(f'<figure><img src="{src}" alt="{e(map_title)}">'
                     f"<figcaption><strong>{e(map_title)}</strong> — {e(caption)}</figcaption></figure>")
    if table is not None:
        parts += [f"<h2>{e(table_title)}</h2>", _table(table)]
    for heading, body in sections:
        parts += [f"<h2>{e(heading)}</h2>", body]
    files = list(files)
    if files:
        parts += ["<h2>Files</h2>", "<ul class='files'>" + "".join(
            f'<li><a href="{e(quote(name))}">{e(name)}</a> — {e(about)}</li>' for name, about in files) + "</ul>"]
    notes = list(notes)
    if notes:
        parts.append("<ul class='note'>" + "".join(f"<li>{e(n)}</li>" for n in notes) + "</ul>")
    parts.append("</body></html>\n")
    html = Path(html)
    tmp = html.with_name(f".{html.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # unique per writer
    try:
        tmp.write_text("\n".join(parts), encoding="utf-8")
        os.replace(tmp, html)
    finally:
        tmp.unlink(missing_ok=True)


def _table(frame: pandas.DataFrame) -> str:
    """An HTML table for reading, not re-use (the CSV is): headers in words with units (the raw
    column name as tooltip), numbers right-aligned with one rounding per column."""
    headers, rows, numeric = readable(frame)
    raw = [c for c in frame.columns if c != "geometry"]
    head = "".join(f'<th title="{escape(str(r))}">{escape(h)}</th>' for h, r in zip(headers, raw))
    body = "".join("<tr>" + "".join(f"<td class='num'>{escape(v)}</td>" if n else f"<td>{escape(v)}</td>"
                                    for v, n in zip(row, numeric)) + "</tr>" for row in rows)
    return f"<div class='wide'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
