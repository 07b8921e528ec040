"""The evaluation page: what `minemap evaluate` measured, drawn from whatever evaluation.json holds."""

from __future__ import annotations

import math

import pandas
from matplotlib.figure import Figure

from ..columns import column, fmt, readable
from .brief import Briefing
from .drawing import PAGE, new_page, text_table


def evaluation_page(b: Briefing, total: int) -> Figure:
    """What `minemap evaluate` measured, drawn from whatever evaluation.json holds."""
    ev = _flat(b.evaluation or {})
    fig, _ = new_page(b, total, total, "Evaluation", "How well the map ranks known events (minemap evaluate, "
                      f"evaluation.json written {b.evaluation_written or 'at an unknown time'})", room=0.92)
    w, h = PAGE
    scalars = [[column(k)[0], fmt(v, 0 if isinstance(v, int) else 3)] for k, v in ev.items()
               if isinstance(v, (int, float)) and not isinstance(v, bool)]
    scalars += [[column(k)[0], str(v)] for k, v in ev.items() if isinstance(v, str)]
    y = text_table(fig, 0.4, 7.3, [3.0, 2.0], None, scalars[:14], fontsize=9) if scalars else 7.3
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
        y = text_table(fig, 0.4, y - 0.45, [width] * len(headers), headers, rows, fontsize=7, right=right) - 0.1
    if not scalars and not curve and not tables:
        fig.text(0.4 / w, 7.2 / h, "evaluation.json holds nothing this page can draw.", fontsize=9, va="top")
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
