"""Spatial block cross-validation of P_c's settings at the events only (no re-run of the map).

For each density `bandwidth_m` and `L_sat`, L is recomputed at the events' cells from the
config's own mine records (the kernel of `sources.density`), then H_m and P_c there with the
layers S_t and V_i as the run has them. Events are grouped in square blocks, whole blocks in
folds (neighbours leak), and each setting is scored by its AUC on the held-out folds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import formulas
from ..assessment import DEFAULT_L_SAT
from ..config import DensitySource, LoadedConfig
from ..grid import Grid
from ..sources import load_layer
from ..sources.coverage import weighted_coverage
from . import kernel, metrics
from .events import Events

FOLDS = 5


@dataclass(frozen=True)
class Layers:
    """H_m's ingredients, S_t and V_i at each distinct event cell (NaN: no data)."""

    L: dict[float, np.ndarray]  # bandwidth → L at the cells (one entry, key 0, when L is not a density)
    H_m: np.ndarray | None  # when H_m is bound directly
    S_t: np.ndarray
    V_i: np.ndarray


def layers_at(cfg: LoadedConfig, grid: Grid, rows: np.ndarray, cols: np.ndarray,
              bandwidths: list[float]) -> Layers:
    """The layers behind P_c at the cells (rows, cols), L once per bandwidth."""
    inputs = cfg.spec.inputs

    def sample(var: str, spec=None) -> np.ndarray:
        layer = load_layer(var, spec or inputs[var], cfg, grid)
        return np.asarray(layer.array.vindex[rows, cols].compute(), dtype=np.float64)

    h_m = sample("H_m") if "H_m" in inputs else None
    L: dict[float, np.ndarray] = {}
    if h_m is None and isinstance(inputs["L"], DensitySource):
        L = density_at(cfg, grid, rows, cols, bandwidths)
    elif h_m is None:
        L = {0.0: sample("L")}
    return Layers(L, h_m, sample("S_t"), sample("V_i"))


def density_at(cfg: LoadedConfig, grid: Grid, rows: np.ndarray, cols: np.ndarray,
               bandwidths: list[float]) -> dict[float, np.ndarray]:
    """L (items/km²) at each cell for each bandwidth, equal to that cell of a run with that
    bandwidth: per chunk holding cells, its density job's records (those within the widest
    bandwidth) through `kernel.density_at` (only the cells asked for, not a window per cell),
    plus its minefield polygons' spread (independent of the bandwidth) once per chunk."""
    spec = cfg.spec.inputs["L"]
    widest = spec.model_copy(update={"bandwidth_m": max(bandwidths)})  # chunk jobs hold every record in reach
    jobs = load_layer("L", widest, cfg, grid).jobs
    out = {b: np.zeros(len(rows)) for b in bandwidths}
    a = grid.geobox.affine
    xs, ys = a @ (cols + 0.5, rows + 0.5)
    chunk_of = (rows // grid.chunk) * (1 << 32) + cols // grid.chunk
    for key in np.unique(chunk_of):
        here = np.flatnonzero(chunk_of == key)
        job = jobs[(int(rows[here[0]] // grid.chunk), int(cols[here[0]] // grid.chunk))]
        cells_xy = np.c_[xs[here], ys[here]]
        for b in bandwidths:
            out[b][here] = kernel.density_at(job.xy, job.counts, cells_xy, (a.c, a.f), grid.resolution, b)
        if len(job.polygons):
            spread = weighted_coverage(job.polygons, job.polygon_density, job.gbox)
            r0, c0 = (int(rows[here[0]] // grid.chunk) * grid.chunk, int(cols[here[0]] // grid.chunk) * grid.chunk)
            for b in bandwidths:
                out[b][here] += spread[rows[here] - r0, cols[here] - c0]
    return out


def pc_at(layers: Layers, key: float, L_sat: float, require_all: bool,
          weights: tuple[float, float, float] | None) -> np.ndarray:
    """P_c (eq. 2, or its weighted variant) at the cells from the layers, for one setting."""
    h_m = layers.H_m if layers.H_m is not None else formulas.mine_density_coefficient(layers.L[key], L_sat)
    return formulas.contamination_probability(h_m, layers.S_t, layers.V_i, require_all=require_all,
                                              weights=weights).astype(np.float64)


def fold_aucs(scores: np.ndarray, outcome: np.ndarray, folds: np.ndarray) -> list[float]:
    """AUC on each fold's events (NaN for a fold without both outcomes)."""
    return [metrics.roc_auc(scores[folds == f], outcome[folds == f]) for f in np.unique(folds)]


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def cross_validate(cfg: LoadedConfig, grid: Grid, events: Events, bandwidths: list[float] | None,
                   l_sats: list[float] | None, block_km: float, fit_weights: bool, l_sat: float | None = None) -> dict:
    """Held-out AUC of each (bandwidth, L_sat), the best one, and (optionally) fitted weights.
    `l_sat`: the L_sat the run used (the config's, or what "auto" made of it)."""
    pc_cfg = cfg.spec.products.contamination_probability
    if l_sat is None:
        l_sat = DEFAULT_L_SAT if pc_cfg.L_sat == "auto" else pc_cfg.L_sat
    pc_cfg = pc_cfg.model_copy(update={"L_sat": l_sat})
    L_spec = cfg.spec.inputs.get("L")
    density = "H_m" not in cfg.spec.inputs and isinstance(L_spec, DensitySource)
    bandwidths = sorted(set(bandwidths or [L_spec.bandwidth_m])) if density else [0.0]
    l_sats = sorted(set(l_sats or [pc_cfg.L_sat]))
    cells = np.unique(np.c_[events.rows, events.cols], axis=0)
    where = {(r, c): i for i, (r, c) in enumerate(cells.tolist())}
    cell_of = np.array([where[(r, c)] for r, c in zip(events.rows.tolist(), events.cols.tolist())])
    layers = layers_at(cfg, grid, cells[:, 0], cells[:, 1], bandwidths)
    # each event's block: that of its first cell (a polygon wider than a block sits in one fold)
    first = np.unique(events.owner, return_index=True)[1]
    cells_per_block = max(1, int(round(block_km * 1000 / grid.resolution)))
    blocks = metrics.block_ids(events.rows[first], events.cols[first], cells_per_block)
    n_blocks = len(np.unique(blocks))
    out: dict = {"block_km": block_km, "blocks": n_blocks, "folds": min(FOLDS, n_blocks),
                 "varied": ["bandwidth_m", "L_sat"] if density else (["L_sat"] if layers.H_m is None else []),
                 "note": _note(density, layers)}
    if n_blocks < 2:
        out["note"] = f"all events lie in one {block_km:g} km block: no cross-validation (use a smaller --cv-block-km)"
        return out
    folds = metrics.block_folds(blocks, out["folds"])
    weights = None if pc_cfg.paper_weights else pc_cfg.weights

    def event_scores(key: float, L_sat: float, w=weights) -> np.ndarray:
        return events.per_event(pc_at(layers, key, L_sat, pc_cfg.require_all, w)[cell_of])

    settings, scores = [], []
    for b in (bandwidths if layers.H_m is None else [0.0]):
        for s in (l_sats if layers.H_m is None else [pc_cfg.L_sat]):
            scores.append(event_scores(b, s))
            per_fold = fold_aucs(scores[-1], events.outcome, folds)
            settings.append({"bandwidth_m": b if density else None, "L_sat": s if layers.H_m is None else None,
                             "heldout_auc": _mean(per_fold), "fold_aucs": per_fold})
    out["settings"] = settings
    ranked = [s for s in settings if s["heldout_auc"] is not None]
    out["best"] = max(ranked, key=lambda s: s["heldout_auc"]) if ranked else None
    out["selected"] = _nested(scores, settings, events.outcome, folds)
    if fit_weights:
        key = L_spec.bandwidth_m if density else 0.0
        if density and key not in layers.L:
            layers.L.update(density_at(cfg, grid, cells[:, 0], cells[:, 1], [key]))
        out["weights"] = _fit_weights(lambda w: event_scores(key, pc_cfg.L_sat, w), events.outcome, folds)
    return out


def _pick_per_fold(candidates: list[np.ndarray], outcome: np.ndarray, folds: np.ndarray) -> list[tuple]:
    """Per fold: (fold, index of the candidate scores with the best AUC on the other folds, that
    training AUC, its AUC on this fold). Folds where no candidate can be scored are skipped."""
    picks = []
    for f in np.unique(folds):
        train, test = folds != f, folds == f
        aucs = np.array([metrics.roc_auc(c[train], outcome[train]) for c in candidates])
        if not np.isfinite(aucs).any():
            continue
        k = int(np.nanargmax(aucs))
        picks.append((int(f), k, float(aucs[k]), metrics.roc_auc(candidates[k][test], outcome[test])))
    return picks


def _nested(scores: list[np.ndarray], settings: list[dict], outcome: np.ndarray, folds: np.ndarray) -> dict:
    """The honest figure for "the setting cross-validation picks": per fold, the setting with the
    best AUC on the other folds, scored on this one (the best setting's own mean is optimistic)."""
    picks = _pick_per_fold(scores, outcome, folds)
    return {"picks": [{key: settings[k][key] for key in ("bandwidth_m", "L_sat")} for _, k, _, _ in picks],
            "heldout_auc": _mean([auc for *_, auc in picks])}


def _note(density: bool, layers: Layers) -> str:
    if layers.H_m is not None:
        return "H_m is bound to a source of its own: no density or L_sat to vary"
    return "" if density else "L is not a density source: only L_sat is varied"


def _fit_weights(scores_for, outcome: np.ndarray, folds: np.ndarray) -> dict:
    """Per fold: the simplex weights (0.05 steps) with the best training AUC, and their held-out
    AUC beside the paper's equal weights. Ties go to the weights nearest equal."""
    grid = metrics.simplex(0.05)
    grid = grid[np.argsort(np.abs(grid - 1 / 3).sum(axis=1), kind="stable")]
    all_scores = [scores_for(tuple(w)) for w in grid]
    equal = scores_for(None)
    rows = [{"fold": f, "weights": [float(x) for x in grid[k]], "training_auc": train_auc, "heldout_auc": auc,
             "heldout_auc_equal": metrics.roc_auc(equal[folds == f], outcome[folds == f])}
            for f, k, train_auc, auc in _pick_per_fold(all_scores, outcome, folds)]
    return {"per_fold": rows,
            "mean_weights": np.round(np.mean([r["weights"] for r in rows], axis=0), 3).tolist() if rows else None,
            "heldout_auc": _mean([r["heldout_auc"] for r in rows]),
            "heldout_auc_equal": _mean([r["heldout_auc_equal"] for r in rows])}
