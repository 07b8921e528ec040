"""Choosing P_c's settings by spatial block cross-validation, and the honest figure for the choice.

Candidates: each form of H_m (a quartic-kernel density of the records saturated at L_sat, for
each bandwidth and L_sat; or a distance decay exp(−d/λ) of the distance d to the nearest record,
for each λ) with each weight triple (w_H, w_S, w_V) when S_t or V_i vary among the events.
Whole blocks go to folds (`evaluate.metrics.block_folds`). A candidate's CV AUC is the mean of
its per-fold AUCs; the chosen one has the best. The reported skill is nested: per outer fold,
the candidate with the best mean AUC on the other folds, scored on this one (the chosen
candidate's own mean was used to choose, so it is optimistic). The calibration map is fitted on
out-of-fold scores and its ECE measured by cross-fitting (each fold calibrated by a map fitted on
the other folds only). The baseline is minus the distance to the nearest record.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import formulas
from ..evaluate import metrics
from ..evaluate.events import Events
from . import isotonic
from .evidence import Evidence

FOLDS = 5
WEIGHT_STEP = 0.1


@dataclass(frozen=True)
class Rules:
    """How the run assesses a cell (issue #20), so a candidate's P_c is nodata where the run's
    would be: the evidence layers are those of weight > 0 that are not filler constants, and a cell
    needs `min_evidence` of them (at most as many as there are)."""

    require_all: bool = False
    not_evidence: frozenset[str] = frozenset()  # unbound, or a constant without `evidence = true`
    min_evidence: int = 0

    @classmethod
    def of(cls, cfg) -> Rules:
        from ..assessment import EVIDENCE
        from ..config import ConstantSource

        inputs = cfg.spec.inputs
        out = set()
        for var in EVIDENCE:
            spec = inputs.get(var) or (inputs.get("L") if var == "H_m" else None)
            if spec is None or (isinstance(spec, ConstantSource) and not spec.evidence):
                out.add(var)
        return cls(cfg.spec.products.contamination_probability.require_all, frozenset(out),
                   cfg.spec.products.risk_class.min_evidence)

    def needed(self, weights: tuple[float, float, float]) -> tuple[list[int], int]:
        """The evidence layers (indices of H_m, S_t, V_i) under `weights`, and how many a cell needs."""
        names = ("H_m", "S_t", "V_i")
        layers = [i for i, w in enumerate(weights) if w > 0 and names[i] not in self.not_evidence]
        return layers, (0 if self.min_evidence == 0 else max(1, min(self.min_evidence, len(layers))))


@dataclass(frozen=True)
class Candidate:
    """One setting of P_c: the form of H_m, its scale (bandwidth or λ, m), L_sat and the weights."""

    form: str  # "kernel", "distance" or "layer" (H_m or L as bound: only L_sat and weights vary)
    scale_m: float | None
    L_sat: float | None
    weights: tuple[float, float, float]

    def h_m(self, ev: Evidence) -> np.ndarray:
        if ev.H_m is not None:
            return ev.H_m
        if self.form == "distance":
            return formulas.distance_decay(ev.distance, self.scale_m)
        return formulas.mine_density_coefficient(ev.L[self.scale_m or 0.0], self.L_sat)

    def p_c(self, ev: Evidence, rules: Rules) -> np.ndarray:
        """P_c at the cells (eq. 2, or its weighted variant) as the run computes it: nodata where
        the cell has too few evidence layers."""
        w = None if max(self.weights) - min(self.weights) < 1e-9 else self.weights
        layers = (self.h_m(ev), ev.S_t, ev.V_i)
        p = formulas.contamination_probability(*layers, require_all=rules.require_all, weights=w).astype(np.float64)
        used, needed = rules.needed(self.weights)
        if needed:
            count = sum(np.isfinite(layers[i]).astype(int) for i in used) if used else np.zeros(len(p), int)
            p[count < needed] = np.nan
        return p

    def describe(self) -> dict:
        return {"h_m_form": self.form, "bandwidth_m": self.scale_m if self.form == "kernel" else None,
                "decay_m": self.scale_m if self.form == "distance" else None, "L_sat": self.L_sat,
                "weights": [round(w, 4) for w in self.weights]}


def candidates(ev: Evidence, bandwidths: list[float], l_sats: dict[float, list[float]], decays: list[float],
               config_weights: tuple[float, float, float]) -> tuple[list[Candidate], bool]:
    """Every candidate, simplest first within ties (larger L_sat: fewer cells saturated; weights
    nearest the config's), and whether weights are fitted (S_t or V_i vary among the cells).
    `l_sats`: the L_sat values to try for each bandwidth (key 0.0 when L is not a density)."""
    varies = any(np.nanstd(x) > 0 for x in (ev.S_t, ev.V_i) if np.isfinite(x).any())
    if varies:
        grid = metrics.simplex(WEIGHT_STEP)
        grid = grid[np.argsort(np.abs(grid - np.array(config_weights)).sum(axis=1), kind="stable")]
        weight_set = [tuple(float(x) for x in w) for w in grid]
    else:
        weight_set = [tuple(config_weights)]
    forms: list[tuple[str, float | None, float | None]] = []
    if ev.H_m is not None:
        forms = [("layer", None, None)]
    elif ev.distance is not None or ev.L.keys() - {0.0}:
        forms = [("kernel", b, s) for b in sorted(bandwidths) for s in sorted(l_sats[b], reverse=True)]
        forms += [("distance", lam, None) for lam in sorted(decays)] if ev.distance is not None else []
    else:
        forms = [("layer", None, s) for s in sorted(l_sats[0.0], reverse=True)]
    return [Candidate(f, scale, s, w) for w in weight_set for f, scale, s in forms], varies


def ranked(scores: np.ndarray) -> np.ndarray:
    """Scores for ranking: an event the map says nothing of (NaN: not assessed) ranks below every
    assessed one, tied with the others (a candidate cannot win by leaving hard events out)."""
    return np.where(np.isnan(scores), -1.0, scores)


def auc(scores: np.ndarray, outcome: np.ndarray) -> float:
    return metrics.roc_auc(ranked(scores), outcome)


def fold_aucs(scores: np.ndarray, outcome: np.ndarray, folds: np.ndarray, n_folds: int) -> np.ndarray:
    return np.array([auc(scores[folds == f], outcome[folds == f]) for f in range(n_folds)])


def _mean(x: np.ndarray) -> float:
    x = np.asarray(x, float)
    return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")


@dataclass
class Fit:
    """What cross-validation found (all figures on held-out folds)."""

    candidates: list[Candidate]
    cv_auc: np.ndarray  # mean held-out AUC of each candidate
    pooled_auc: np.ndarray  # each candidate's AUC over all events pooled (no fitting: held out from the records)
    per_fold: np.ndarray  # (candidates, folds)
    chosen: int
    nested_picks: list[int]  # per outer fold: the candidate picked on the other folds
    nested_fold_aucs: np.ndarray
    oof_scores: np.ndarray  # each event's score under its fold's pick
    oof_prob: np.ndarray  # each event's calibrated probability from a map fitted on the other folds
    knots: tuple[np.ndarray, np.ndarray]  # the shipped calibration, fitted on out-of-fold scores
    baseline_fold_aucs: np.ndarray
    baseline_scores: np.ndarray | None  # minus each event's distance to the nearest record
    folds: np.ndarray
    outcome: np.ndarray
    weights_fitted: bool

    @property
    def nested_auc(self) -> float:
        """AUC of the out-of-fold scores of every event, pooled (as `evaluate` scores a map)."""
        return auc(self.oof_scores, self.outcome)

    @property
    def nested_auc_fold_mean(self) -> float:
        """Mean of the per-fold AUCs (ranking within each fold's blocks only: a harder test)."""
        return _mean(self.nested_fold_aucs)

    @property
    def baseline_auc(self) -> float:
        return metrics.roc_auc(self.baseline_scores, self.outcome) if self.baseline_scores is not None \
            else float("nan")

    @property
    def baseline_auc_fold_mean(self) -> float:
        return _mean(self.baseline_fold_aucs)


def cross_validate(events: Events, ev: Evidence, cands: list[Candidate], rules: Rules, folds: np.ndarray,
                   weights_fitted: bool) -> Fit:
    """Score every candidate on every fold; choose, nest, calibrate (see the module's docstring)."""
    y = events.outcome
    n_folds = int(folds.max()) + 1
    scores = np.empty((len(cands), len(y)))
    for k, c in enumerate(cands):
        scores[k] = events.per_event(c.p_c(ev, rules))
    per_fold = np.array([fold_aucs(s, y, folds, n_folds) for s in scores])

    def criterion(on: list[int]) -> np.ndarray:
        """Each candidate's mean AUC over the folds `on` that hold both outcomes (when none
        does, its AUC over their events pooled)."""
        part = per_fold[:, on]
        if np.isfinite(part).any():
            with np.errstate(all="ignore"):
                return np.array([_mean(r) for r in part])
        here = np.isin(folds, on)
        return np.array([auc(s[here], y[here]) for s in scores])

    cv_auc = criterion(list(range(n_folds)))
    chosen = int(np.nanargmax(cv_auc))  # the first of equals: the simplest
    picks, outer = [], []
    oof_scores = np.full(len(y), np.nan)
    oof_prob = np.full(len(y), np.nan)
    for f in range(n_folds):
        others = [g for g in range(n_folds) if g != f]
        inner = criterion(others)
        k = int(np.nanargmax(inner)) if np.isfinite(inner).any() else chosen
        picks.append(k)
        test = folds == f
        outer.append(per_fold[k, f])
        oof_scores[test] = scores[k, test]
        kx, kp = isotonic.fit(scores[k, ~test], y[~test])  # cross-fitting: this fold's map never saw it
        oof_prob[test] = isotonic.apply(kx, kp, scores[k, test])
    knots = isotonic.fit(oof_scores, y)
    base = -nearest_record(events, ev) if ev.distance is not None else None
    base_folds = fold_aucs(base, y, folds, n_folds) if base is not None else np.full(n_folds, np.nan)
    pooled = np.array([auc(s, y) for s in scores])
    return Fit(cands, cv_auc, pooled, per_fold, chosen, picks, np.array(outer), oof_scores, oof_prob, knots, base_folds,
               base, folds, y, weights_fitted)


def nearest_record(events: Events, ev: Evidence) -> np.ndarray:
    """Each event's distance to the nearest record: its nearest cell's (a polygon's nearest part)."""
    return -events.per_event(-ev.distance)


def assign_folds(events: Events, cells_per_block: int) -> tuple[np.ndarray, int]:
    """Each event's fold (from its first cell's block) and the number of blocks."""
    first = np.unique(events.owner, return_index=True)[1]
    blocks = metrics.block_ids(events.rows[first], events.cols[first], cells_per_block)
    n_blocks = len(np.unique(blocks))
    return metrics.block_folds(blocks, min(FOLDS, n_blocks)), n_blocks
