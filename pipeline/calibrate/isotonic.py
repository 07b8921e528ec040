"""Monotone calibration of a score into a probability, and how well it is calibrated: pure NumPy.

Isotonic regression (pool-adjacent-violators) of the outcomes on the score gives the
non-decreasing step function closest to the outcomes in squared error; it is kept as knots
(x, p) and applied by linear interpolation between them (constant beyond the ends), so a
ranking is never reversed. ECE is the expected calibration error over equal-width bins.
"""

from __future__ import annotations

import numpy as np

ECE_BINS = 10


def fit(scores: np.ndarray, outcome: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots (x, p) of the isotonic fit of `outcome` (0/1) on `scores` (NaN scores left out):
    each pooled block contributes its lowest and highest score at the block's mean outcome."""
    s, y = np.asarray(scores, float), np.asarray(outcome, float)
    known = np.isfinite(s)
    s, y = s[known], y[known]
    if len(s) == 0:
        return np.zeros(0), np.zeros(0)
    xs, inverse = np.unique(s, return_inverse=True)
    w = np.bincount(inverse).astype(float)
    v = np.bincount(inverse, weights=y) / w
    # pool adjacent violators: a stack of blocks (value, weight, first index, last index)
    val, wt, lo, hi = [], [], [], []
    for i in range(len(xs)):
        val.append(v[i]); wt.append(w[i]); lo.append(i); hi.append(i)
        while len(val) > 1 and val[-2] > val[-1]:
            total = wt[-2] + wt[-1]
            merged = (val[-2] * wt[-2] + val[-1] * wt[-1]) / total
            val[-2:], wt[-2:], hi[-2:], lo[-2:] = [merged], [total], [hi[-1]], [lo[-2]]
    kx, kp = [], []
    for value, a, b in zip(val, lo, hi):
        kx.append(xs[a]); kp.append(value)
        if b != a:
            kx.append(xs[b]); kp.append(value)
    return np.array(kx), np.array(kp)


def apply(knots_x: np.ndarray, knots_p: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The calibrated probability of each score (NaN stays NaN)."""
    s = np.asarray(scores, float)
    if len(knots_x) == 0:
        return np.full(s.shape, np.nan)
    out = np.interp(s, knots_x, knots_p)
    return np.where(np.isfinite(s), out, np.nan)


def reliability(prob: np.ndarray, outcome: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Per equal-width probability bin with events: count, mean predicted, share positive."""
    p, y = np.asarray(prob, float), np.asarray(outcome, float)
    known = np.isfinite(p)
    p, y = p[known], y[known]
    which = np.minimum((p * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        here = which == b
        if here.any():
            rows.append({"bin": f"{b / bins:.1f}–{(b + 1) / bins:.1f}", "events": int(here.sum()),
                         "mean_predicted": float(p[here].mean()), "share_positive": float(y[here].mean())})
    return rows


def ece(prob: np.ndarray, outcome: np.ndarray, bins: int = ECE_BINS) -> float:
    """Σ over bins of (events in bin / events) · |share positive − mean predicted|."""
    rows = reliability(prob, outcome, bins)
    n = sum(r["events"] for r in rows)
    if n == 0:
        return float("nan")
    return float(sum(r["events"] * abs(r["share_positive"] - r["mean_predicted"]) for r in rows) / n)
