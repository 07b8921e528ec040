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
