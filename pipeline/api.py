"""The Python API: `pipeline.run`, `pipeline.update`, `pipeline.validate`, `pipeline.evaluate`,
each returning a `Result`; `open_products` and `lazy`, products as a lazy xarray.Dataset.

The same work as the `minemap` command, for notebooks and scripts. User errors raise
`pipeline.errors.MinemapError` (its `.problems` name each file and problem; `.exit_code` is the
command's). Scripts get threads, not worker processes (see README, "Scale").
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from .errors import Problem


@dataclass(frozen=True)
class Result:
    """What a call did: its status, the output folder, the product files and the full record."""

    status: str  # "complete", "updated", "full run", "up to date", "valid", "evaluated"
    out: Path | None
    products: dict[str, Path] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    record: dict = field(default_factory=dict)  # run.json as published (validate: grid and files; evaluate: evaluation.json)
    summary: dict = field(default_factory=dict)  # update: added/changed/removed inputs, chunks recomputed


def run(config: str | Path, out: str | Path = "out", *, grid: str | Path | None = None, workers: int | None = None,
        scheduler: str | None = None, wait: float = 0.0, bundle_rasters: bool = False) -> Result:
    """Compute every enabled product of `config` into `out` (as `minemap run`)."""
    from .runner import run as run_pipeline

    record = run_pipeline(config, out, grid, workers, scheduler, wait=wait, bundle_rasters=bundle_rasters)
    return _result("complete", Path(out), record, {})


def update(config: str | Path, out: str | Path = "out", *, grid: str | Path | None = None,
           workers: int | None = None, scheduler: str | None = None, wait: float = 0.0,
           bundle_rasters: bool = False) -> Result:
    """Bring `out` up to date, recomputing only the chunks whose inputs changed (as `minemap update`)."""
    from .runner import RUN_RECORD, update as update_pipeline

    summary = update_pipeline(config, out, grid, workers, scheduler, wait=wait, bundle_rasters=bundle_rasters)
    record = json.loads((Path(out) / RUN_RECORD).read_text())
    return _result(summary["status"], Path(out), record, summary)


def validate(config: str | Path, *, grid: str | Path | None = None) -> Result:
    """Check every input of `config` (raises MinemapError listing every problem); writes nothing."""
    from .runner import load_inputs

    inputs = load_inputs(config, grid)
    files = sorted({str(f) for layer in inputs.layers.values() for f in layer.files})
    return Result("valid", None, warnings=[str(w) for w in inputs.warnings],
                  record={"grid": inputs.grid.describe(), "files": files})


def evaluate(config: str | Path, events: str | Path, out: str | Path = "out", *, grid: str | Path | None = None,
             outcome_field: str = "outcome", layer: str | None = None, extent: str | Path | None = None,
             cv_block_km: float = 20.0, bandwidths: list[float] | None = None, l_sats: list[float] | None = None,
             fit_weights: bool = False, wait: float = 0.0) -> Result:
    """Score the run in `out` against known `events` (as `minemap evaluate`); `record` holds
    evaluation.json's content, `products` the files scored."""
    from .evaluate.run import evaluate as evaluate_run

    record = evaluate_run(config, events, out, grid_path=grid, outcome_field=outcome_field, layer=layer,
                          cv_block_km=cv_block_km, bandwidths=bandwidths, l_sats=l_sats, fit_weights=fit_weights,
                          extent=extent, wait=wait)
    products = {name: Path(out) / f"{name}.tif" for name in record.get("products", {})}
    return Result("evaluated", Path(out), products, record=record)


def _result(status: str, out: Path, record: dict, summary: dict) -> Result:
    products = {name: out / p["file"] for name, p in record["products"].items()}
    return Result(status, out, products, list(record.get("warnings", [])), list(record.get("rejected", [])),
                  record, summary)


def __getattr__(name: str):
    """`open_products` and `lazy` (see `dataset`), imported on first use like the rest."""
    if name in ("open_products", "lazy"):
        from . import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Result", "Problem", "run", "update", "validate", "evaluate", "open_products", "lazy"]
