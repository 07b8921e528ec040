"""OUT/report.html: one self-contained page (inline CSS, no scripts, no external resources) with
the maps and the district table, for a briefing or an e-mail. Images are linked by relative path,
so the output folder can be moved or zipped as a whole."""

from __future__ import annotations

import math
import numbers
import os
import threading
from html import escape
from pathlib import Path
from typing import Iterable
from urllib.parse import quote

import pandas

CSS = """body{font-family:sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
h1{margin-bottom:0}.sub{color:#555;margin-top:.3em}figure{margin:1.5em 0}
figure img{max-width:100%;height:auto;border:1px solid #ddd}figcaption{color:#444;font-size:.9em}
table{border-collapse:collapse;font-size:.85em}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left}
th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}.note{color:#555;font-size:.9em}
.wide{overflow-x:auto}"""


def write_report(html: Path, *, title: str, subtitle: str, maps: list[tuple[str, str, str]],
                 table: pandas.DataFrame | None = None, table_title: str = "Districts",
                 notes: Iterable[str] = ()) -> None:
    """Write the page: `maps` are (PNG file name relative to the page's folder, title, caption),
    then `table`, then `notes` as bullets. Every text is escaped; the file is replaced atomically."""
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
    """An HTML table; numbers right-aligned and rounded for reading, not for re-use (the CSV is)."""
    head = "".join(f"<th>{escape(str(c))}</th>" for c in frame.columns)
    rows = []
    for row in frame.itertuples(index=False, name=None):
        cells = []
        for v in row:
            number = isinstance(v, numbers.Number) and not isinstance(v, bool)
            cells.append(f"<td class='num'>{escape(_fmt(v))}</td>" if number
                         else f"<td>{escape(_fmt(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return (f"<div class='wide'><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
            "</div>")


def _fmt(v: object) -> str:
    """Integers with thousands separators; floats to 3 significant digits below 1, then 2, 1 and
    0 decimals (with separators from 1000): at least 3 figures, no false precision; missing as a dash."""
    if v is None or (pandas.api.types.is_scalar(v) and pandas.isna(v)):
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, numbers.Integral):
        return f"{int(v):,}"
    if isinstance(v, numbers.Real):
        v = float(v)
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        if v == 0:
            return "0"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 100:
            return f"{v:.1f}"
        return f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"
    return str(v)
