"""Skill of a risk ranking against known events: pure NumPy, no I/O.

Scores are "higher = riskier"; NaN means "the map says nothing here". Outcomes are 1 (mine,
accident, find) or 0 (searched and found clear).
"""

from __future__ import annotations

import numpy as np

CAPTURE_AT = (0.01, 0.05, 0.10, 0.20, 0.50)  # shares of the region's area managers plan with


def midranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1…n of `x`, ties sharing the mean of the ranks they span (as Mann–Whitney needs)."""
    _, inverse, counts = np.unique(np.asarray(x, dtype=np.float64), return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - counts + 1 + ends) / 2.0)[inverse]


def roc_auc(scores: np.ndarray, outcome: np.ndarray) -> float:
    """Probability that a random positive scores above a random negative (ties count ½): the
    Mann–Whitney U over n₁·n₀. NaN scores are left out; NaN when a class is then empty."""
    scores, outcome = np.asarray(scores, dtype=np.float64), np.asarray(outcome)
    known = np.isfinite(scores)
    scores, positive = scores[known], outcome[known] == 1
    n1, n0 = int(positive.sum()), int((~positive).sum())
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = midranks(scores)
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def roc_curve(scores: np.ndarray, outcome: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False- and true-positive rates at every distinct score, from the riskiest down (NaN left out)."""
    scores, outcome = np.asarray(scores, dtype=np.float64), np.asarray(outcome)
    known = np.isfinite(scores)
    scores, positive = scores[known], outcome[known] == 1
    order = np.argsort(-scores, kind="mergesort")
    s, p = scores[order], positive[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1] if len(s) else np.zeros(0, int)
    tp, fp = np.cumsum(p)[last], np.cumsum(~p)[last]
    return (np.r_[0.0, fp / max(1, (~p).sum())], np.r_[0.0, tp / max(1, p.sum())])


def area_ranks(cell_values: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each score s: how many region cells are riskier (> s) and how many at least as risky
    (≥ s). NaN cells and scores count as the lowest value. Sum these over chunks of a large region."""
    cells = np.sort(np.nan_to_num(np.asarray(cell_values, dtype=np.float64).ravel(), nan=-np.inf))
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    n = len(cells)
    return n - np.searchsorted(cells, s, side="right"), n - np.searchsorted(cells, s, side="left")


def capture_curve(above: np.ndarray, at_least: np.ndarray, cells: int,
                  shares: tuple[float, ...] = CAPTURE_AT) -> np.ndarray:
    """Share of events inside the riskiest `shares` of the region's `cells`, from `area_ranks` of
    the events. Cells tied at the cut are taken in part: an event on such a cell counts for the
    part of its tie group that fits (the mean over every order of the tied cells)."""
    above, at_least = np.asarray(above, dtype=np.float64), np.asarray(at_least, dtype=np.float64)
    if len(above) == 0:
        return np.full(len(shares), np.nan)
    out = []
    for share in shares:
        budget = share * cells
        part = np.clip((budget - above) / np.maximum(at_least - above, 1e-300), 0.0, 1.0)
        out.append(float(part.mean()))
    return np.array(out)


def class_rates(event_class: np.ndarray, outcome: np.ndarray, class_cells: dict[int, int],
                cell_km2: float) -> list[dict]:
    """Per class code: area, positive and negative events, positives per km² and share positive."""
    event_class, outcome = np.asarray(event_class), np.asarray(outcome)
    rows = []
    for code, cells in sorted(class_cells.items()):
        here = event_class == code
        pos, neg = int((outcome[here] == 1).sum()), int((outcome[here] == 0).sum())
        km2 = cells * cell_km2
        rows.append({"code": int(code), "area_km2": km2, "positives": pos, "negatives": neg,
                     "positives_per_km2": pos / km2 if km2 else float("nan"),
                     "share_positive": pos / (pos + neg) if pos + neg else float("nan")})
    return rows


def rises(values: list[float]) -> bool:
    """Whether the finite values never fall from one class to the next (and rise overall)."""
    v = [x for x in values if np.isfinite(x)]
    return len(v) >= 2 and all(b >= a for a, b in zip(v, v[1:])) and v[-1] > v[0]


def calibration(scores: np.ndarray, outcome: np.ndarray, bins: int = 10) -> list[dict]:
    """Events in `bins` groups by score rank (deciles), mean score against the share of positives.
    Tied scores stay together, in the group of their mean rank (a map that is 0 on most events
    gives one large group, not ten copies of it); empty groups are left out, NaN scores too."""
    scores, outcome = np.asarray(scores, dtype=np.float64), np.asarray(outcome)
    known = np.isfinite(scores)
    scores, outcome = scores[known], outcome[known]
    if len(scores) == 0:
        return []
    group = np.minimum(bins - 1, np.floor(bins * (midranks(scores) - 0.5) / len(scores)).astype(int))
    rows = []
    for g in np.unique(group):
        here = group == g
        rows.append({"decile": int(g + 1), "events": int(here.sum()), "mean_score": float(scores[here].mean()),
                     "share_positive": float((outcome[here] == 1).mean()),
                     "score_min": float(scores[here].min()), "score_max": float(scores[here].max())})
    return rows


def block_ids(rows: np.ndarray, cols: np.ndarray, cells_per_block: int) -> np.ndarray:
    """A block number for each cell: square blocks of `cells_per_block` cells from the grid's corner."""
    br, bc = np.asarray(rows, np.int64) // cells_per_block, np.asarray(cols, np.int64) // cells_per_block
    return (br << 32) + bc  # one number per (block row, block col)


def block_folds(blocks: np.ndarray, folds: int, seed: int = 0) -> np.ndarray:
    """Fold number of each event: whole blocks go to folds (neighbours leak, so no block is split),
    blocks shuffled with a fixed seed and dealt round-robin."""
    unique = np.unique(blocks)
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of_block = np.empty(len(unique), dtype=np.int64)
    fold_of_block[order] = np.arange(len(unique)) % max(1, folds)
    return fold_of_block[np.searchsorted(unique, blocks)]


def simplex(step: float = 0.05) -> np.ndarray:
    """Every (w_H, w_S, w_V) ≥ 0 summing to 1 on a grid of `step`."""
    n = int(round(1 / step))
    return np.array([(i / n, j / n, (n - i - j) / n) for i in range(n + 1) for j in range(n + 1 - i)])
