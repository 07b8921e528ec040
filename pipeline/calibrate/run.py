"""`minemap calibrate`: fit P_c's settings to the team's own outcomes and write FITTED.toml.

Reads the config and the labels, scores every candidate at the events (`fit`), estimates the
capture at 10 % of the area on a lattice of its cells, and writes the original config text
plus a `[model]` section (`model`). Nothing is written if any check fails.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import __version__
from ..assessment import DEFAULT_L_SAT
from ..config import load_config
from ..errors import InputError
from ..evaluate import metrics
from ..evaluate.events import read_extent
from ..grid import load_grid
from ..model import ModelCV, ModelEvents, ModelSettings, sha256_of, to_toml, without_model
from . import fit, isotonic
from .evidence import density_config, evidence_at, lattice, records_of
from .labels import LabelFile, read_labels

BANDWIDTHS = [2000.0, 5000.0, 10000.0, 20000.0]  # metres: minefield scale to district scale
DECAYS = [1000.0, 3000.0, 10000.0]  # λ of exp(−d/λ), metres
L_SAT_FACTORS = [0.5, 1.0, 2.0]  # × the config's L_sat (a number, or what "auto" makes of it per bandwidth)
CAPTURE_SHARES = [0.20, 0.10, 0.05]  # classes by capture: the riskiest 20 / 10 / 5 % of the assessed area
AREA_CELLS = 200_000  # lattice cells the capture is estimated on
MARGIN = 0.03  # "beats the baseline": held-out AUC at least this much above it
TARGET_ECE = 0.05


def calibrate(config: str | Path, write: str | Path, *, events: str | Path | None = None,
              outcome_field: str = "outcome", layer: str | None = None, finds_field: str | None = None,
              accidents: str | Path | None = None, extent: str | Path | None = None, cv_block_km: float = 20.0,
              bandwidths: list[float] | None = None, l_sats: list[float] | None = None,
              decays: list[float] | None = None, grid_path: str | Path | None = None) -> dict:
    """Fit, assess and write FITTED.toml; return the figures (also in its `[model]`)."""
    cfg = load_config(config)
    write = Path(write).resolve()
    if write.parent != cfg.path.parent:
        raise InputError(f"FITTED.toml must be written beside the config ({cfg.path.parent}): its relative paths "
                         "are read from its own folder", write)
    grid = load_grid(grid_path or cfg.resolve(cfg.spec.grid))
    sources = _label_files(cfg, events, outcome_field, layer, finds_field, accidents)
    labels, sizes = read_labels(sources, cfg, grid)
    area = read_extent(Path(extent), grid, labels) if extent else None
    cells_per_block = max(1, int(round(cv_block_km * 1000 / grid.resolution)))
    folds, n_blocks = fit.assign_folds(labels, cells_per_block)
    if n_blocks < 3:
        raise InputError(f"the events lie in {n_blocks} block(s) of {cv_block_km:g} km: nested cross-validation "
                         "needs at least 3 (use a smaller --cv-block-km)", labels.path)
    pc = cfg.spec.products.contamination_probability
    density = density_config(cfg)
    bandwidths = sorted(set(bandwidths or BANDWIDTHS)) if density else []
    decays = sorted(set(decays or DECAYS)) if density else []
    records = records_of(cfg, grid) if density else None
    l_sat_sets = _l_sats(pc.L_sat, l_sats, bandwidths if density else [0.0], records)
    cells = np.unique(np.c_[labels.rows, labels.cols], axis=0)
    index = {(r, c): i for i, (r, c) in enumerate(cells.tolist())}
    cell_of = np.array([index[(r, c)] for r, c in zip(labels.rows.tolist(), labels.cols.tolist())])
    ev = evidence_at(cfg, grid, cells[:, 0], cells[:, 1], bandwidths, records).take(cell_of)
    cands, weights_fitted = fit.candidates(ev, bandwidths, l_sat_sets, decays, tuple(pc.weights))
    rules = fit.Rules.of(cfg)
    result = fit.cross_validate(labels, ev, cands, rules, folds, weights_fitted)
    capture, base_capture, lattice_info = _capture(cfg, grid, labels, result, records, area, rules)
    chosen = cands[result.chosen]
    thresholds, classes = capture_classes(cfg, grid, chosen, records, result, labels.outcome, rules)
    ece = isotonic.ece(result.oof_prob, labels.outcome)
    beats = bool(np.isfinite(result.baseline_auc) and result.nested_auc >= result.baseline_auc + MARGIN) \
        if np.isfinite(result.baseline_auc) else True
    model = ModelSettings(
        fitted_utc=datetime.now(timezone.utc).replace(microsecond=0).isoformat(), minemap_version=__version__,
        h_m_form=chosen.form, bandwidth_m=chosen.scale_m if chosen.form == "kernel" else None,
        decay_m=chosen.scale_m if chosen.form == "distance" else None, L_sat=chosen.L_sat,
        weights=chosen.weights, calibration_scores=[float(x) for x in result.knots[0]],
        calibration_probability=[float(p) for p in result.knots[1]],
        cv=ModelCV(block_km=cv_block_km, blocks=n_blocks, folds=int(folds.max()) + 1,
                   heldout_auc=result.nested_auc, heldout_auc_fold_mean=result.nested_auc_fold_mean,
                   heldout_auc_calibrated=_finite(fit.auc(result.oof_prob, labels.outcome)),
                   chosen_cv_auc=float(result.cv_auc[result.chosen]), baseline_auc=_finite(result.baseline_auc),
                   baseline_auc_fold_mean=_finite(result.baseline_auc_fold_mean), capture_10=_finite(capture),
                   baseline_capture_10=_finite(base_capture), ece=ece, beats_baseline=beats),
        events=_event_records(sources, labels, sizes, write.parent),
        reliability=isotonic.reliability(result.oof_prob, labels.outcome),
        capture_shares=CAPTURE_SHARES if thresholds else [], capture_thresholds=thresholds, capture_classes=classes)
    text = without_model(cfg.text) + "\n# Fitted by `minemap calibrate` (issue #21): see README \"Calibration\".\n" \
        + to_toml(model)
    _write(write, text)
    return {"model": model.model_dump(), "written": str(write), "candidates": _table(result),
            "nested_picks": [cands[k].describe() for k in result.nested_picks],
            "nested_fold_aucs": result.nested_fold_aucs.tolist(), "baseline_fold_aucs": result.baseline_fold_aucs.tolist(),
            "reliability": isotonic.reliability(result.oof_prob, labels.outcome), "weights_fitted": weights_fitted,
            "counts": {"events": len(labels), "positives": int(labels.outcome.sum()),
                       "negatives": int((labels.outcome == 0).sum())},
            "area": lattice_info, "targets": targets(model)}


def targets(model: ModelSettings) -> list[dict]:
    """Issue #21's targets with verdicts, from the [model]'s own held-out figures."""
    cv = model.cv
    rows = []
    for what, auc, base in (("pooled over all events", cv.heldout_auc, cv.baseline_auc),
                            ("mean of the per-fold AUCs", cv.heldout_auc_fold_mean, cv.baseline_auc_fold_mean)):
        needed = None if base is None else base + MARGIN
        rows.append({"target": f"held-out AUC ({what}) ≥ nearest-record baseline + {MARGIN:g}", "value": auc,
                     "needed": needed, "met": needed is not None and auc >= needed - 1e-12})
    rows.append({"target": f"held-out ECE of calibrated_probability ≤ {TARGET_ECE:g}", "value": cv.ece,
                 "needed": TARGET_ECE, "met": cv.ece <= TARGET_ECE})
    return rows


def _l_sats(setting, given: list[float] | None, bandwidths: list[float], records) -> dict[float, list[float]]:
    """L_sat values per bandwidth: those given; else ½, 1 and 2 × the config's number, or × the
    "auto" rule's value for that bandwidth (the 90th percentile of L at the records)."""
    out = {}
    for b in bandwidths:
        if given:
            out[b] = sorted(set(given))
            continue
        base = float(setting) if setting != "auto" else (records.auto_l_sat(b) if records is not None and b
                                                          else DEFAULT_L_SAT)
        out[b] = sorted({base * f for f in L_SAT_FACTORS})
    return out


def _finite(x) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def _label_files(cfg, events, outcome_field, layer, finds_field, accidents) -> list[LabelFile]:
    out = []
    if events is not None:
        out.append(LabelFile(Path(events).resolve(), "events", outcome_field, layer))
    if finds_field is not None:
        if cfg.spec.release is None:
            raise InputError("--finds-field labels the config's [release] polygons, and it has no [release]", cfg.path)
        out.append(LabelFile(cfg.resolve(cfg.spec.release.path), "release", finds_field, cfg.spec.release.layer))
    if accidents is not None:
        out.append(LabelFile(Path(accidents).resolve(), "accidents"))
    if not out:
        raise InputError("no labels: give --events FILE, --finds-field (the [release] polygons) or --accidents FILE",
                         cfg.path)
    return out


def _event_records(sources: list[LabelFile], labels, sizes: list[int], base: Path) -> list[ModelEvents]:
    """Per file: path (relative to the fitted config), SHA-256 and its labels' counts (the labels
    are concatenated in the order of the files)."""
    out, start = [], 0
    for src, size in zip(sources, sizes):
        y = labels.outcome[start:start + size]
        start += size
        out.append(ModelEvents(path=os.path.relpath(src.path, base), role=src.role, sha256=sha256_of(src.path),
                               count=int(size), positives=int((y == 1).sum()), negatives=int((y == 0).sum())))
    return out


def _capture(cfg, grid, labels, result: fit.Fit, records, area, rules: fit.Rules) -> tuple[float, float, dict]:
    """Nested capture at 10 % of the area for the model and the baseline, on a lattice sample."""
    rows, cols, stride = lattice(grid, area, AREA_CELLS)
    info = {"lattice_cells": int(len(rows)), "stride": stride,
            "note": (f"capture estimated on 1 in {stride} rows and columns of the " if stride > 1 else
                     "capture over all of the ") + ("extent's" if area is not None else "region's") + " cells"}
    if len(rows) == 0:
        return float("nan"), float("nan"), info
    used = sorted(set(result.nested_picks))
    bws = sorted({result.candidates[k].scale_m for k in used if result.candidates[k].form == "kernel"})
    ev = evidence_at(cfg, grid, rows, cols, bws, records)
    y = labels.outcome
    share = metrics.CAPTURE_AT.index(0.10)
    caught, n_pos = 0.0, 0
    for f, k in enumerate(result.nested_picks):
        pos = (result.folds == f) & (y == 1)
        if not pos.any():
            continue
        area_scores = result.candidates[k].p_c(ev, rules)
        above, at_least = metrics.area_ranks(area_scores, result.oof_scores[pos])
        caught += metrics.capture_curve(above, at_least, len(rows))[share] * pos.sum()
        n_pos += int(pos.sum())
    base = float("nan")
    if ev.distance is not None and result.baseline_scores is not None:
        above, at_least = metrics.area_ranks(-ev.distance, result.baseline_scores[y == 1])
        base = float(metrics.capture_curve(above, at_least, len(rows))[share])
    return caught / max(n_pos, 1), base, info


def capture_classes(cfg, grid, chosen: fit.Candidate, records, result: fit.Fit, y: np.ndarray,
                    rules: fit.Rules) -> tuple[list, list]:
    """P_c thresholds at which the riskiest 20, 10 and 5 % of the region's assessed area start
    (the chosen setting, a lattice of its cells), and per class the share of the area and of the
    events (out-of-fold scores) it holds. Thresholds equal to the one below are nudged up by the
    least float32 step (a class then holds no cell: said by its area share)."""
    rows, cols, _ = lattice(grid, None, AREA_CELLS)
    ev = evidence_at(cfg, grid, rows, cols, [chosen.scale_m] if chosen.form == "kernel" else [], records)
    values = chosen.p_c(ev, rules)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return [], []
    thresholds = []
    for share in CAPTURE_SHARES:  # widest first: increasing thresholds
        t = float(np.quantile(values, 1 - share, method="higher"))
        if thresholds and t <= thresholds[-1]:
            t = float(np.nextafter(np.float32(thresholds[-1]), np.float32(np.inf)))
        thresholds.append(min(t, 1.0))
    bounds = [-np.inf, *thresholds, np.inf]
    out = []
    for k in range(len(bounds) - 1):
        area = (values >= bounds[k]) & (values < bounds[k + 1])
        held = (result.oof_scores >= bounds[k]) & (result.oof_scores < bounds[k + 1])
        out.append({"riskiest_share": CAPTURE_SHARES[k - 1] if k else None, "threshold": thresholds[k - 1] if k else None,
                    "area_share": float(area.mean()), "positives_share": float(held[y == 1].mean()),
                    "negatives_share": float(held[y == 0].mean())})
    return thresholds, out


def _table(result: fit.Fit) -> list[dict]:
    return [{**c.describe(), "cv_auc": _finite(a), "auc_all_events": _finite(p), "fold_aucs": [_finite(x) for x in f]}
            for c, a, p, f in zip(result.candidates, result.cv_auc, result.pooled_auc, result.per_fold)]


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
