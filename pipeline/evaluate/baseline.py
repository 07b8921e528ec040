"""The nearest-record baseline (issue #21 §5): minus the distance to the nearest mine record,
"search near known events first", a ranking with no model at all. A map whose held-out AUC
does not beat it by `MARGIN` adds nothing a team could not do without it, and is told so."""

from __future__ import annotations

import numpy as np

from ..config import LoadedConfig
from ..grid import Grid
from . import metrics
from .events import Events

MARGIN = 0.03  # held-out AUC a map must add to the baseline to "beat" it (issue #21's target)
AREA_CELLS = 200_000  # lattice cells the baseline's capture is estimated on


def nearest_record_baseline(cfg: LoadedConfig, grid: Grid, events: Events, folds: np.ndarray | None = None,
                            area=None) -> dict | None:
    """AUC, per-fold AUCs and capture of minus the distance to the nearest record of inputs.L
    (None when L is not a density source of records). The capture is estimated on a lattice
    of the area's cells (`calibrate.evidence.lattice`)."""
    from ..calibrate.evidence import density_config, lattice, records_of

    if not density_config(cfg):
        return None
    records = records_of(cfg, grid)
    xs, ys = grid.geobox.affine @ (events.cols + 0.5, events.rows + 0.5)
    scores = events.per_event(-records.distance(np.c_[xs, ys]))
    rows, cols, stride = lattice(grid, area, AREA_CELLS)
    lx, ly = grid.geobox.affine @ (cols + 0.5, rows + 0.5)
    above, at_least = metrics.area_ranks(-records.distance(np.c_[lx, ly]), scores[events.outcome == 1])
    capture = metrics.capture_curve(above, at_least, len(rows))
    out = {"ranking": "minus the distance to the nearest mine record of inputs.L",
           "auc": metrics.roc_auc(scores, events.outcome),
           "capture": {f"{100 * s:g}%": v for s, v in zip(metrics.CAPTURE_AT, capture.tolist())},
           "capture_note": f"estimated on 1 in {stride} rows and columns of the area's cells" if stride > 1
           else "over all of the area's cells"}
    if folds is not None:
        out["fold_aucs"] = [metrics.roc_auc(scores[folds == f], events.outcome[folds == f]) for f in np.unique(folds)]
    return out


def verdict(auc: float | None, baseline_auc: float | None, what: str = "AUC") -> dict:
    """Whether a ranking beats the baseline by MARGIN, and the banner to show when it does not."""
    if auc is None or baseline_auc is None or not np.isfinite(auc) or not np.isfinite(baseline_auc):
        return {"beats_baseline": None, "banner": None}
    beats = bool(auc >= baseline_auc + MARGIN)
    banner = None if beats else (
        f"This map does not beat the nearest-record baseline: {what} {auc:.3f} against {baseline_auc:.3f} for "
        f"ranking land by its distance to the nearest known record (a map should add at least {MARGIN:g}). "
        "Searching near known records first ranks these events as well.")
    return {"beats_baseline": beats, "banner": banner}
