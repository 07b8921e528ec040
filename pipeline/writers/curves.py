"""PNG charts of `minemap evaluate`: the ROC curve and the capture curve.

matplotlib's object API only (Figure + FigureCanvasAgg, no pyplot: no global state), written
atomically like the maps.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _save(fig: Figure, png: Path) -> None:
    FigureCanvasAgg(fig)
    tmp = png.with_name(f".{png.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
        os.replace(tmp, png)
    finally:
        tmp.unlink(missing_ok=True)


def roc_chart(png: Path, curves: dict[str, tuple], title: str) -> None:
    """`curves`: label → (false-positive rates, true-positive rates, AUC)."""
    fig = Figure(figsize=(5, 5))
    ax = fig.add_subplot()
    for label, (fpr, tpr, auc) in curves.items():
        ax.step(fpr, tpr, where="post", label=f"{label} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="#999999", linestyle="--", label="no skill (AUC 0.5)")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="share of clear (negative) events flagged",
           ylabel="share of mine (positive) events flagged", title=title)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, png)


def capture_chart(png: Path, shares: list[float], curves: dict[str, list[float]], title: str,
                  area: str = "the region's area") -> None:
    """`curves`: label → share of positive events in the riskiest `shares` of `area`."""
    fig = Figure(figsize=(6, 4.5))
    ax = fig.add_subplot()
    pct = [100 * s for s in shares]
    for label, values in curves.items():
        ax.plot(pct, [100 * v for v in values], marker="o", label=label)
    ax.plot([0, 100], [0, 100], color="#999999", linestyle="--", label="no skill")
    ax.set(xlim=(0, max(pct) * 1.05), ylim=(0, 101), xlabel=f"riskiest share of {area} (%)",
           ylabel="positive events inside it (%)", title=title)
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, png)


def reliability_png(bins: list[dict], title: str) -> bytes:
    """A reliability diagram as PNG bytes: per probability bin, the share of positive events
    against the mean predicted probability (on the diagonal = calibrated), marker area by events."""
    import io

    fig = Figure(figsize=(4.6, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
    if bins:
        x = [b["mean_predicted"] for b in bins]
        y = [b["share_positive"] for b in bins]
        n = [b["events"] for b in bins]
        top = max(n)
        ax.plot(x, y, color="#b2182b", linewidth=1)
        ax.scatter(x, y, s=[20 + 180 * k / top for k in n], color="#b2182b", zorder=3, label="held-out events (area: count)")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="predicted probability (calibrated_probability)",
           ylabel="share of events with a device", title=title)
    ax.title.set_fontsize(9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()
