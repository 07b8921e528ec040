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


def insert_section(html: Path, key: str, section: str) -> None:
    """Put `section` into an existing page before </body>, replacing an earlier one of the same
    `key` (so evaluating again does not stack sections); atomically, like the page itself."""
    html = Path(html)
    text = html.read_text(encoding="utf-8")
    start, end = f"<!-- minemap:{key} -->", f"<!-- /minemap:{key} -->"
    if start in text and end in text:
        text = text[:text.index(start)] + text[text.index(end) + len(end):].lstrip("\n")
    block = f"{start}\n{section}\n{end}\n"
    text = text.replace("</body>", block + "</body>", 1) if "</body>" in text else text + block
    tmp = html.with_name(f".{html.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, html)
    finally:
        tmp.unlink(missing_ok=True)


def evaluation_section(result: dict, roc_png: str, capture_png: str) -> str:
    """The report's "Evaluation" section from `minemap evaluate`'s result (evaluation.json)."""
    e = escape
    c = result["counts"]
    parts = ["<h2>Evaluation against known events</h2>",
             f"<p class='note'>{c['positives']} positive (mine, accident, find) and {c['negatives']} negative "
             f"(searched, clear) events from {e(Path(result['events']).name)}; P_c is {e(result['equation'])}. "
             f"{e(result['scoring'])}.</p>"]
    rows = []
    for name, p in result["products"].items():
        rows.append({"product": name, "ROC AUC": p["auc"], **{f"capture {k}": v for k, v in p["capture"].items()},
                     "events without value": p["events_without_value"]})
    parts += ["<h3>Ranking skill</h3>", _table(pandas.DataFrame(rows)),
              "<p class='note'>AUC: the chance a positive event's cell ranks above a negative one's (0.5 = no "
              "skill). Capture x %: share of positive events inside the riskiest x % of "
              + (f"the area of {e(Path(result['extent']).name)}" if result.get("extent") else "the region's area")
              + ".</p>"]
    for png, title in ((roc_png, "ROC curve"), (capture_png, "Capture curve")):
        parts.append(f'<figure><img src="{e(quote(png))}" alt="{e(title)}"><figcaption><strong>{e(title)}'
                     "</strong></figcaption></figure>")
    classes = result.get("classes")
    if classes:
        parts += ["<h3>Events per km² by risk class</h3>",
                  _table(pandas.DataFrame(classes["rows"])[["class", "area_km2", "positives", "negatives",
                                                            "positives_per_km2", "share_positive"]]),
                  f"<p class='note'>{e(classes['statement'])}</p>"]
    calibration = result["products"]["contamination_probability"]["calibration"]
    if calibration:
        parts += ["<h3>Calibration by P_c decile</h3>", _table(pandas.DataFrame(calibration))]
    cv = result["cross_validation"]
    parts.append(f"<h3>Spatial block cross-validation ({cv['block_km']:g} km blocks, {cv.get('folds', 0)} folds)</h3>")
    if cv.get("settings"):
        parts.append(_table(pandas.DataFrame(cv["settings"]).drop(columns="fold_aucs")))
        best = cv.get("best")
        if best:
            parts.append(f"<p class='note'>Best held-out AUC {best['heldout_auc']:.3f} with bandwidth_m = "
                         f"{_fmt(best['bandwidth_m'])}, L_sat = {_fmt(best['L_sat'])}.</p>")
    if cv.get("weights"):
        w = cv["weights"]
        parts.append(f"<p class='note'>Weights fitted on training folds (mean w_H, w_S, w_V = "
                     f"{', '.join(f'{x:.2f}' for x in w['mean_weights'] or [])}): held-out AUC "
                     f"{_fmt(w['heldout_auc'])} against {_fmt(w['heldout_auc_equal'])} for the paper's equal "
                     "weights.</p>")
    if cv.get("note"):
        parts.append(f"<p class='note'>{e(cv['note'])}</p>")
    return "\n".join(parts)
