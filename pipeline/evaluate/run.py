"""`minemap evaluate`: a finished run's products scored against events the team knows.

Reads the products in OUT (never recomputes them), ties the events to their cells, computes the
metrics (`metrics`) and the block cross-validation (`cv`), then writes evaluation.json, the
curves and the report's "Evaluation" section. Nothing is written if any check fails.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import rasterio
from rasterio.features import geometry_mask
from rasterio.windows import Window

from .. import __version__
from ..config import load_config
from ..errors import InputError
from ..grid import Grid, load_grid
from ..products import product_equation
from ..outdir import output_lock
from ..writers.curves import capture_chart, roc_chart
from ..writers.report import evaluation_section, insert_banner, insert_section
from . import metrics
from ..model import sha256_of
from .baseline import MARGIN, nearest_record_baseline, verdict
from .cv import cross_validate
from .events import Events, read_events, read_extent

RESULT = "evaluation.json"
SCORED = {"contamination_probability": "P_c", "residual_probability": "residual P_c"}
ROC_PNG, CAPTURE_PNG = "evaluation_roc.png", "evaluation_capture.png"


def evaluate(config: str | Path, events_path: str | Path, out_dir: str | Path, *, grid_path: str | Path | None = None,
             outcome_field: str = "outcome", layer: str | None = None, cv_block_km: float = 20.0,
             bandwidths: list[float] | None = None, l_sats: list[float] | None = None,
             fit_weights: bool = False, extent: str | Path | None = None, wait: float = 0.0) -> dict:
    """Score the run in `out_dir` against the events; write the results there and return them.

    `extent` (polygons): the area the events were surveyed in; areas (capture, events per km²)
    then count only its cells, so land nobody searched does not dilute the figures."""
    cfg = load_config(config)
    grid = load_grid(grid_path or cfg.resolve(cfg.spec.grid))
    out_dir = Path(out_dir)
    products = [name for name in SCORED if (out_dir / f"{name}.tif").exists()]
    if "contamination_probability" not in products:
        zarr = (out_dir / "products.zarr").exists()  # issue #12: evaluate reads the GeoTIFFs
        raise InputError("no contamination_probability.tif: " + ("evaluate reads GeoTIFFs; run `minemap run` with "
                         '[output] format = "cog" into this folder first' if zarr else
                         "run `minemap run` into this folder first"), out_dir / "contamination_probability.tif")
    for name in products + ["risk_class", "evidence_count"]:
        _check_on_grid(out_dir / f"{name}.tif", grid)
    events = read_events(Path(events_path), outcome_field, grid, layer)
    area = read_extent(Path(extent), grid, events) if extent else None
    result = {"minemap_version": __version__, "created_utc": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
              "config": str(cfg.path), "events": str(Path(events_path).resolve()), "outcome_field": outcome_field,
              "grid": grid.name, "equation": product_equation("contamination_probability", cfg),
              "counts": {"events": len(events), "positives": int((events.outcome == 1).sum()),
                         "negatives": int((events.outcome == 0).sum()), "polygons": events.polygons},
              "scoring": "points: the cell holding the point; polygons: their riskiest cell (centre inside)",
              "extent": str(Path(extent).resolve()) if extent else None,
              "products": {}}
    curves_roc, curves_capture = {}, {}
    for name in products:
        scores = events.per_event(_read_cells(out_dir / f"{name}.tif", events.rows, events.cols))
        fpr, tpr = metrics.roc_curve(scores, events.outcome)
        auc = metrics.roc_auc(scores, events.outcome)
        capture, region_cells = _capture(out_dir, name, scores[events.outcome == 1], area)
        result["products"][name] = {
            "auc": auc, "events_without_value": int(np.isnan(scores).sum()),
            "capture": {f"{100 * s:g}%": v for s, v in zip(metrics.CAPTURE_AT, capture.tolist())},
            "calibration": metrics.calibration(scores, events.outcome) if name == "contamination_probability" else None}
        curves_roc[SCORED[name]] = (fpr, tpr, auc)
        curves_capture[SCORED[name]] = capture.tolist()
    result["region_km2"] = region_cells * grid.cell_area_km2
    result["classes"] = _class_table(out_dir, cfg, grid, events, area)
    result["cross_validation"] = cross_validate(cfg, grid, events, bandwidths, l_sats, cv_block_km, fit_weights,
                                                _run_l_sat(out_dir))
    result["fitted_on_these_events"] = _fitted_on(cfg, Path(events_path))
    base = nearest_record_baseline(cfg, grid, events, _folds(events, grid, result["cross_validation"]), area)
    result["baseline"] = base
    if base is not None:
        curves_capture["baseline: nearest record"] = list(base["capture"].values())
        pc = result["products"]["contamination_probability"]
        result["skill"] = {"auc": pc["auc"], "capture_10": pc["capture"]["10%"], "baseline_auc": base["auc"],
                           "baseline_capture_10": base["capture"]["10%"], "margin": MARGIN,
                           **verdict(pc["auc"], base["auc"])}
    with output_lock(out_dir, wait):
        roc_chart(out_dir / ROC_PNG, curves_roc, f"ROC against {len(events)} known events")
        capture_chart(out_dir / CAPTURE_PNG, list(metrics.CAPTURE_AT), curves_capture,
                      f"Capture of {result['counts']['positives']} positive events",
                      f"the area of {Path(extent).name}" if extent else "the region's area")
        _write_json(out_dir / RESULT, result)
        if (out_dir / "report.html").exists():
            insert_section(out_dir / "report.html", "evaluation", evaluation_section(result, ROC_PNG, CAPTURE_PNG))
            insert_banner(out_dir / "report.html", "evaluation-banner", (result.get("skill") or {}).get("banner"))
    return result


def _run_l_sat(out_dir: Path) -> float | None:
    """The L_sat the run in `out_dir` used (its record's assessment; None if it says none)."""
    try:
        return json.loads((out_dir / "run.json").read_text()).get("assessment", {}).get("L_sat")
    except (OSError, ValueError):
        return None


def _fitted_on(cfg, events_path: Path) -> str | None:
    """Words when the run's [model] was fitted on these very events: its AUC here is not held out."""
    model = cfg.spec.model
    if model is None:
        return None
    digest = sha256_of(events_path)
    if any(e.sha256 == digest for e in model.events):
        base = "" if model.cv.baseline_auc is None else f" (nearest-record baseline {model.cv.baseline_auc:.3f})"
        return (f"The run's [model] was fitted on these events: the AUC above is not held out. The held-out "
                f"figure is the [model]'s nested AUC, {model.cv.heldout_auc:.3f}{base}.")
    return None


def _folds(events: Events, grid: Grid, cv: dict) -> np.ndarray | None:
    """Each event's fold, as the cross-validation dealt them (None when it did not run)."""
    if not cv.get("settings"):
        return None
    first = np.unique(events.owner, return_index=True)[1]
    cells_per_block = max(1, int(round(cv["block_km"] * 1000 / grid.resolution)))
    return metrics.block_folds(metrics.block_ids(events.rows[first], events.cols[first], cells_per_block), cv["folds"])


def _check_on_grid(tif: Path, grid: Grid) -> None:
    """A product must be on the config's grid, or its cells are not the events' cells."""
    if not tif.exists():
        return
    with rasterio.open(tif) as ds:
        same = (ds.height, ds.width) == grid.shape and ds.transform.almost_equals(grid.geobox.affine) \
            and ds.crs is not None and ds.crs.to_epsg() == grid.crs.epsg
    if not same:
        raise InputError(f"not on grid {grid.name} ({grid.source}): run `minemap run` with this config and grid "
                         "into this folder first", tif)


def _read_cells(tif: Path, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Values at (rows, cols), each 512-cell block read once; nodata as NaN."""
    out = np.full(len(rows), np.nan)
    with rasterio.open(tif) as ds:
        bh, bw = ds.block_shapes[0]
        keys = (rows // bh) * (ds.width // bw + 1) + cols // bw
        for key in np.unique(keys):
            here = keys == key
            r0, c0 = int(rows[here][0] // bh * bh), int(cols[here][0] // bw * bw)
            block = ds.read(1, window=Window(c0, r0, min(bw, ds.width - c0), min(bh, ds.height - r0))).astype(float)
            if ds.nodata is not None:
                block[block == ds.nodata] = np.nan
            out[here] = block[rows[here] - r0, cols[here] - c0]
    return out


def _blocks(tif: Path):
    """(window, values with NaN nodata) of each block of a product, to stream a large region."""
    with rasterio.open(tif) as ds:
        for _, window in ds.block_windows(1):
            block = ds.read(1, window=window).astype(np.float64)
            if ds.nodata is not None:
                block[block == ds.nodata] = np.nan
            yield window, block


def _region(out_dir: Path, window: Window, values: np.ndarray, area=None) -> np.ndarray:
    """Cells of the region (and of `area`, if given) in a block: evidence_count has them
    (0 = none), else the valid P_c."""
    tif = out_dir / "evidence_count.tif"
    inside = np.isfinite(values)
    if tif.exists():
        with rasterio.open(tif) as ds:
            inside = ds.read(1, window=window) != ds.nodata
            transform = ds.window_transform(window)
    else:
        with rasterio.open(out_dir / "contamination_probability.tif") as ds:
            transform = ds.window_transform(window)
    if area is not None:
        inside &= geometry_mask([area], values.shape, transform, invert=True)
    return inside


def _capture(out_dir: Path, name: str, positive_scores: np.ndarray, area=None) -> tuple[np.ndarray, int]:
    """Capture curve of the positives over the region's cells, streamed block by block."""
    above = np.zeros(len(positive_scores))
    at_least = np.zeros(len(positive_scores))
    cells = 0
    for window, values in _blocks(out_dir / f"{name}.tif"):
        region = _region(out_dir, window, values, area)
        a, b = metrics.area_ranks(values[region], positive_scores)
        above += a
        at_least += b
        cells += int(region.sum())
    return metrics.capture_curve(above, at_least, cells), cells


def _class_table(out_dir: Path, cfg, grid: Grid, events: Events, area=None) -> dict | None:
    """Events per km² in each risk class, and whether the rate rises with the class."""
    tif = out_dir / "risk_class.tif"
    if not tif.exists():
        return None
    counts: dict[int, int] = {}
    for window, values in _blocks(tif):
        codes, n = np.unique(values[np.isfinite(values) & _region(out_dir, window, values, area)].astype(int),
                             return_counts=True)
        for c, k in zip(codes.tolist(), n.tolist()):
            counts[c] = counts.get(c, 0) + k
    event_class = events.per_event(_read_cells(tif, events.rows, events.cols))
    rows = metrics.class_rates(event_class, events.outcome, counts, grid.cell_area_km2)
    names = cfg.spec.products.risk_class.names
    for r in rows:
        r["class"] = names[r["code"] - 1] if 1 <= r["code"] <= len(names) else f"code {r['code']}"
    ordered = [r["positives_per_km2"] for r in rows if 1 <= r["code"] <= len(names)]
    rising = metrics.rises(ordered)
    return {"rows": rows, "rises": rising,
            "statement": "Positive events per km² rise with the risk class." if rising else
            "Positive events per km² do NOT rise with the risk class: the classes do not rank these events."}


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(_clean(data), indent=2, allow_nan=False))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _clean(v):
    """JSON-ready: NumPy scalars as Python numbers, NaN (no value) as null."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not np.isfinite(v):
        return None
    return v
