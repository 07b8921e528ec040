"""Plan: read and check the inputs, and decide what a run writes and what an update recomputes.

Nothing here writes to OUT; `compute`, `deliver` and `outdir.publish` do, in that order.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import __version__
from ..model import changed_events
from ..assessment import records_alone_warning, resolved_l_sat
from ..config import LoadedConfig, check_config
from ..errors import ConfigError, InputError, MinemapError, Problem
from ..grid import Grid, area_scale_warning, load_grid
from ..guard import check, estimate
from ..outdir import FULL_RUN, is_published, path_size, read_parts
from ..products import PRODUCTS, enabled_products, missing_bindings, product_equation
from .. import store
from ..runtime import gdal_env
from ..sources import Layer, LoadOptions, load_layer
from ..sources.loaders import file_identity
from ..sources.direct import load_direct
from ..sources.release import load_release
from ..state import grid_change, grid_key
from ..summaries import Districts, load_districts, summaries_wanted
from ..targets import STORE, RasterTarget


@dataclass
class Inputs:
    """Everything read and checked before computing: config, grid and the layers."""

    cfg: LoadedConfig
    grid: Grid
    layers: dict[str, Layer]
    rejected: list[Problem] = field(default_factory=list)
    raster_checks: dict[str, dict] = field(default_factory=dict)  # see sources.LoadOptions
    districts: Districts | None = None
    warnings: list[Problem] = field(default_factory=list)  # printed, recorded, never fatal
    hashes: dict[str, str] = field(default_factory=dict)  # every input file's SHA-256, once known (`input_files`)


def load_inputs(config: str | Path, grid_path: str | Path | Grid | None = None, lenient: bool = False,
                raster_checks: dict[str, dict] | None = None,
                on_grid: Callable[[Grid, LoadedConfig], None] = lambda g, c: None) -> Inputs:
    """Read config, grid and every input; raise one InputError listing all problems found.
    `on_grid` hears of the grid before the inputs are read. A `Grid` as `grid_path` is used as it is
    (the command read it to say what it runs)."""
    with gdal_env():  # GDAL's settings for object storage too (retries, endpoint), for `update` as for `run`
        return _load_inputs(config, grid_path, lenient, raster_checks, on_grid)


def _load_inputs(config, grid_path, lenient, raster_checks, on_grid) -> Inputs:
    cfg, problems, refused = check_config(config)  # config problems are listed with the inputs'
    if cfg is None:
        raise ConfigError(problems)
    try:
        grid = grid_path if isinstance(grid_path, Grid) else load_grid(grid_path or cfg.resolve(cfg.spec.grid))
    except MinemapError as e:
        raise type(e)(problems + e.problems) from None
    on_grid(grid, cfg)
    if "products" not in refused:  # else the products' settings are unknown: which needs what too
        problems += missing_bindings(cfg, refused)
    opts = LoadOptions(lenient, raster_checks if raster_checks is not None else {})
    if scale := area_scale_warning(grid):
        opts.warnings.append(scale)
    layers, rejected = {}, []
    for var, spec in cfg.spec.inputs.items():
        try:
            layer = load_layer(var, spec, cfg, grid, opts)
        except InputError as e:
            problems.extend(e.problems)
            continue
        if layer is not None:
            layers[var] = layer
            rejected.extend(layer.rejected)
    try:
        layers.update(load_release(cfg, grid))
    except InputError as e:
        problems.extend(e.problems)
    try:
        layers.update(load_direct(cfg, grid, layers))
    except InputError as e:
        problems.extend(e.problems)
    if cfg.spec.model is not None:  # a fitted config whose events changed since (issue #21)
        opts.warnings.extend(changed_events(cfg.spec.model, cfg.base))
    if "products" not in refused and (words := records_alone_warning(cfg, layers)):
        opts.warnings.append(Problem(f"{cfg.path}: products.contamination_probability.L_sat", words))
    districts = None
    try:
        districts = load_districts(cfg, grid)
    except InputError as e:
        problems.extend(e.problems)
    if problems:
        raise InputError(_unique(problems))
    return Inputs(cfg, grid, layers, rejected, opts.raster_checks, districts, _unique(opts.warnings))


def _unique(problems: list[Problem]) -> list[Problem]:
    return list(dict.fromkeys(problems))


def full_run_reason(out_dir: Path, inputs: Inputs, names: list[str], state: dict | None,
                     problem: Problem | None, files_checked: bool = False) -> tuple[str | None, dict | None]:
    """Why the last run's files cannot be patched (None: they can), and its summary parts.
    `files_checked`: the published files were checked already (OUT in object storage: by ETag)."""
    if state is None:
        if problem is not None:
            inputs.warnings.append(problem)
        return reason_of(problem) if problem else "no previous run", None
    if change := grid_change(state["grid"], grid_key(inputs.grid)):
        return f"grid changed ({change})", None
    for name, f in {} if files_checked else state["published"].items():
        path = out_dir / name
        if not path.exists() or path_size(path) != f["size"]:  # (a Zarr store is a folder)
            problem = Problem(str(path), f"{FULL_RUN} missing or not the size the last run wrote")
            inputs.warnings.append(problem)
            return reason_of(problem), None
    if not all(f in state["published"] for f in product_files(inputs.cfg, names)) or set(names) - set(state["parts"]):
        return "products not made by the last run", None
    if not summaries_wanted(inputs.cfg, names, inputs.districts):
        return None, None
    parts, problem = read_parts(out_dir, state)
    if parts is None:
        if problem is not None:
            inputs.warnings.append(problem)
        return reason_of(problem) if problem else "no summary parts kept", None
    return None, parts


def reason_of(problem: Problem) -> str:
    return f"{Path(problem.where).name} {problem.what.removeprefix(FULL_RUN).strip()}"


def changed_product(out_dir: Path, state: dict, files: list[str]) -> Problem | None:
    """The first product file (see `product_files`) whose SHA-256 is not the one the last run
    published (None: all are)."""
    for name in files:
        path = out_dir / name
        if not is_published(path, state["published"][path.name]):
            return Problem(str(path), f"{FULL_RUN} not the file the last run wrote (SHA-256 differs)")
    return None


def product_files(cfg: LoadedConfig, names: list[str]) -> list[str]:
    """The files holding the products in OUT: a GeoTIFF each, or one Zarr store (issue #12)."""
    return [STORE] if cfg.spec.output.format == "zarr" else [f"{n}.tif" for n in names]


def input_files(inputs: Inputs) -> dict[str, str]:
    """Every input file's SHA-256 (raster hashes were taken, or recalled, while checking them);
    the vectors are read once per run, not at each use."""
    if not inputs.hashes:
        known = {p: c["sha256"] for p, c in inputs.raster_checks.items()}
        inputs.hashes.update({str(f): known.get(str(f)) or file_identity(f)
                              for layer in inputs.layers.values() for f in layer.files})
    return dict(inputs.hashes)


def target(name: str, array, inputs: Inputs, created: str) -> RasterTarget:
    p = PRODUCTS[name]
    bindings = {v: _describe(v, inputs) for v in p.variables}
    if name == "released_share":  # from the [release] layer, not a formula variable
        release = inputs.cfg.spec.release.model_dump(exclude_defaults=True)
        bindings["release"] = ", ".join(f"{k}={v}" for k, v in release.items())
    tags = {"MINEMAP_PRODUCT": name, "MINEMAP_EQUATION": product_equation(name, inputs.cfg),
            "MINEMAP_INPUTS": json.dumps(bindings, ensure_ascii=False),
            "MINEMAP_CONFIG_SHA256": inputs.cfg.digest(), "MINEMAP_GRID": inputs.grid.name,
            "MINEMAP_VERSION": __version__, "MINEMAP_CREATED_UTC": created,
            "TIFFTAG_SOFTWARE": f"minemap {__version__}",
            "TIFFTAG_DATETIME": created.replace("-", ":").replace("T", " ")[:19]}
    return RasterTarget(name=name, array=array, nodata=p.nodata, description=f"{p.title} ({p.symbol}) [{p.unit}]",
                        unit=p.unit, tags=tags, overview_resampling=p.overview_resampling)


def _describe(var: str, inputs: Inputs) -> str:
    spec = inputs.cfg.spec.inputs.get(var)
    settings = inputs.cfg.spec.products.contamination_probability
    if spec is None and var == "H_m":
        auto = " (\"auto\": 90th percentile of L at the records)" if settings.L_sat == "auto" else ""
        return f"min(L / {resolved_l_sat(inputs.cfg, inputs.layers):.4g}{auto}, 1) with L = {_describe('L', inputs)}"
    if spec is None and var == "P_c":
        return "product contamination_probability"
    if spec is None and var == "C":
        return f"A_c > 0 ({_describe('A_c', inputs)})"
    if spec is None:
        return "not bound (weight 0)"
    fields = store.redact_all(spec.model_dump(exclude_defaults=True))  # a signed URL: its signature left out
    return ", ".join(f"{k}={v}" for k, v in fields.items())


def budget_check(out_dir: Path | None, max_cells: int, workers: int | None = None) -> Callable[[Grid, LoadedConfig], None]:
    """What refuses a grid too large for `max_cells` or for OUT's free disk (see `guard`),
    called as soon as the grid is known, before any input is read in full."""
    return lambda grid, cfg: check(budget(grid, cfg, workers), out_dir, max_cells, grid.source)


def budget(grid: Grid, cfg: LoadedConfig, workers: int | None):
    """What a run of `cfg`'s products on `grid` needs (cells, staging, memory)."""
    return estimate(grid.shape, grid.chunk, [PRODUCTS[name].dtype for name in enabled_products(cfg)],
                    chunks_in_flight(workers))


def chunks_in_flight(workers: int | None) -> int:
    """How many chunks are computed at once (and held in memory) during the chunk pass."""
    return max(2, 2 * (workers or os.cpu_count() or 1))


def plan_targets(inputs: Inputs, arrays: dict, created: str, out_dir: Path, state: dict | None,
                 changed: set | None, patchable: bool = True) -> tuple[list[RasterTarget], bool]:
    """The files to write, and whether an update patches the previous ones in place (copies of
    them): not when they have grown by half since their last full write (then they are rewritten
    in full, unchanged chunks read back), nor when they are objects (`patchable` False)."""
    targets = [target(name, arr, inputs, created) for name, arr in arrays.items()]
    sizes = (state or {}).get("sizes", {})
    patch = patchable and changed is not None and all(
        t.name in sizes and (out_dir / f"{t.name}.tif").stat().st_size < 1.5 * sizes[t.name] for t in targets)
    if inputs.cfg.spec.output.format == "zarr":  # issue #12: a store's patched chunks replace the old ones
        patch = changed is not None
    for t in targets:
        t.parts = dict((state or {}).get("parts", {}).get(t.name, {})) if patch else {}
    return targets, patch
