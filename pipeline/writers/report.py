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

from .columns import fmt, readable

CSS = """body{font-family:sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
h1{margin-bottom:0}.sub{color:#555;margin-top:.3em}figure{margin:1.5em 0}
figure img{max-width:100%;height:auto;border:1px solid #ddd}figcaption{color:#444;font-size:.9em}
table{border-collapse:collapse;font-size:.85em}th,td{border:1px solid #ccc;padding:.25em .5em;text-align:left}
th{background:#f2f2f2}td.num{text-align:right;font-variant-numeric:tabular-nums}.note{color:#555;font-size:.9em}
.banner{border:2px solid #b2182b;background:#fde0dd;padding:.6em 1em;font-weight:bold}
.wide{overflow-x:auto}th{vertical-align:bottom}td.num{white-space:nowrap}ul.files{columns:2;font-size:.9em}
th{font-weight:600;max-width:9em}table.facts td{border:none;padding:.1em 1em .1em 0}
@page{size:A4 landscape;margin:12mm}
@media print{body{max-width:none;margin:0;padding:0;font-size:10pt}.wide{overflow:visible}
table{font-size:7pt;width:100%}th,td{padding:.1em .3em}figure{break-inside:avoid;page-break-inside:avoid}
figure img{max-height:140mm;width:auto;max-width:100%}h2{break-after:avoid}tr{break-inside:avoid}}"""


def write_report(html: Path, *, title: str, subtitle: str, maps: list[tuple[str, str, str]],
                 table: pandas.DataFrame | None = None, table_title: str = "Districts",
                 notes: Iterable[str] = (), sections: Iterable[tuple[str, str]] = (),
                 files: Iterable[tuple[str, str]] = (), lead: Iterable[tuple[str, str]] = (),
                 table_note: str = "") -> None:
    """Write the page: `lead` sections first (heading, HTML body the caller has escaped: the
    summary and the tasks, the answer before the maps), `maps` are (PNG file name relative to the page's folder, title, caption),
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
    for heading, body in lead:
        parts += [f"<h2>{e(heading)}</h2>", body]
    for png, map_title, caption in maps:
        src = e(quote(str(png)))  # a relative URL: spaces or '#' in a name must not break it
        parts.append(f'<figure><img src="{src}" alt="{e(map_title)}">'
                     f"<figcaption><strong>{e(map_title)}</strong> — {e(caption)}</figcaption></figure>")
    if table is not None:
        parts += [f"<h2>{e(table_title)}</h2>", _table(table)]
        if table_note:
            parts.append(f"<p class='note'>{e(table_note)}</p>")
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


def html_table(frame: pandas.DataFrame) -> str:
    """`frame` as the page's tables are drawn (see `_table`), for a caller's section."""
    return _table(frame)


def facts_table(rows: list[list[str]]) -> str:
    """Label–value rows without a header."""
    body = "".join(f"<tr><td>{escape(k)}</td><td>{escape(v)}</td></tr>" for k, v in rows)
    return f"<table class='facts'><tbody>{body}</tbody></table>"


def _table(frame: pandas.DataFrame) -> str:
    """An HTML table for reading, not re-use (the CSV is): headers in words with units (the raw
    column name as tooltip), numbers right-aligned with one rounding per column."""
    headers, rows, numeric = readable(frame)
    raw = [c for c in frame.columns if c != "geometry"]
    head = "".join(f'<th title="{escape(str(r))}">{escape(h)}</th>' for h, r in zip(headers, raw))
    body = "".join("<tr>" + "".join(f"<td class='num'>{escape(v)}</td>" if n else f"<td>{escape(v)}</td>"
                                    for v, n in zip(row, numeric)) + "</tr>" for row in rows)
    return f"<div class='wide'><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"


def insert_banner(html: Path, key: str, text: str | None) -> None:
    """Put a banner under the page's title (replacing an earlier one of the same `key`; None
    removes it), where a reader looks first."""
    html = Path(html)
    page = html.read_text(encoding="utf-8")
    start, end = f"<!-- minemap:{key} -->", f"<!-- /minemap:{key} -->"
    if start in page and end in page:
        page = page[:page.index(start)] + page[page.index(end) + len(end):].lstrip("\n")
    if text:
        block = f"{start}<p class='banner'>{escape(text)}</p>{end}\n"
        at = page.find("</p>", page.find("<p class='sub'>"))
        at = at + len("</p>") if at >= 0 and "<p class='sub'>" in page else page.find("<body>") + len("<body>")
        page = page[:at] + "\n" + block + page[at:]
    tmp = html.with_name(f".{html.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        tmp.write_text(page, encoding="utf-8")
        os.replace(tmp, html)
    finally:
        tmp.unlink(missing_ok=True)


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
    if result.get("fitted_on_these_events"):
        parts.append(f"<p class='banner'>{e(result['fitted_on_these_events'])}</p>")
    skill = result.get("skill")
    if skill:
        if skill.get("banner"):
            parts.append(f"<p class='banner'>{e(skill['banner'])}</p>")
        base = result["baseline"]
        parts += ["<h3>Beside the nearest-record baseline</h3>", _table(pandas.DataFrame([
            {"ranking": "P_c (this map)", "ROC AUC": skill["auc"], "capture 10%": skill["capture_10"]},
            {"ranking": "baseline: nearest record", "ROC AUC": skill["baseline_auc"],
             "capture 10%": skill["baseline_capture_10"]}])),
            f"<p class='note'>The baseline ranks land by {e(base['ranking'])}: no model at all. A map should "
            f"beat it by at least {skill['margin']:g} AUC. Baseline capture {e(base['capture_note'])}.</p>"]
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
                         f"{fmt(best['bandwidth_m'], 0)}, L_sat = {fmt(best['L_sat'], 1)}.</p>")
    if cv.get("weights"):
        w = cv["weights"]
        parts.append(f"<p class='note'>Weights fitted on training folds (mean w_H, w_S, w_V = "
                     f"{', '.join(f'{x:.2f}' for x in w['mean_weights'] or [])}): held-out AUC "
                     f"{fmt(w['heldout_auc'], 3)} against {fmt(w['heldout_auc_equal'], 3)} for the paper's equal "
                     "weights.</p>")
    if cv.get("note"):
        parts.append(f"<p class='note'>{e(cv['note'])}</p>")
    return "\n".join(parts)
