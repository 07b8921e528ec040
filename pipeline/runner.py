"""A whole run: config → grid → layers → products → files in OUT, with a run record.

Inputs are checked in full before anything is written; products are staged inside OUT and
published as one journaled step (see `outdir`), the run record last.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

import dask

from . import __version__
from .config import LoadedConfig, check_config
from .deliverables import write_briefing_pack, write_catalogue_item, write_maps_and_report, write_qgis_project
from .errors import ConfigError, InputError, MinemapError, Problem
from .grid import Grid, area_scale_warning, load_grid
from .guard import MAX_CELLS, check, deferred_interrupt, estimate
from .products import PRODUCTS, build_products, enabled_products, missing_bindings, product_equation, product_title
from .sources import Layer, LoadOptions, file_sha256, load_layer
from .sources.release import load_release
from .outdir import (FULL_RUN, file_hashes, load_state, output_lock, publish, read_parts, read_state, staging_folder,
                     write_parts, write_state)
from .state import chunk_fingerprints, grid_change, grid_key
from .summaries import Districts, build_summary, load_districts, summaries_wanted, write_summaries
from .writers.chunks import WorkerProcesses
from .writers.geotiff import ChunkParts, RasterTarget, patch_rasters, write_rasters
from .writers.styles import qml

RUN_RECORD = "run.json"


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


def load_inputs(config: str | Path, grid_path: str | Path | None = None, lenient: bool = False,
                raster_checks: dict[str, dict] | None = None,
                on_grid: Callable[[Grid, LoadedConfig], None] = lambda g, c: None) -> Inputs:
    """Read config, grid and every input; raise one InputError listing all problems found.
    `on_grid` hears of the grid before the inputs are read."""
    cfg, problems, refused = check_config(config)  # config problems are listed with the inputs'
    if cfg is None:
        raise ConfigError(problems)
    try:
        grid = load_grid(grid_path or cfg.resolve(cfg.spec.grid))
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


@contextmanager
def scheduler(workers: int | None = None, address: str | None = None) -> Iterator[None]:
    """Threads on this machine (one thread: synchronous), or a distributed cluster at `address`."""
    address = address or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        from distributed import Client

        with Client(address):
            yield
    elif workers == 1:
        with dask.config.set(scheduler="synchronous"):
            yield
    else:
        with dask.config.set(scheduler="threads", num_workers=workers or os.cpu_count()):
            yield


def run(config: str | Path, out_dir: str | Path, grid_path: str | Path | None = None, workers: int | None = None,
        scheduler_address: str | None = None, progress: Callable[[int, int], None] | None = None,
        wait: float = 0.0, max_cells: int = MAX_CELLS, bundle_rasters: bool = False) -> dict:
    """Compute every enabled product into `out_dir`; return the run record. `bundle_rasters`
    as the config's [output] bundle_rasters (either one copies the drone rasters into OUT)."""
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    processes = WorkerProcesses()

    def on_grid(g: Grid, cfg: LoadedConfig) -> None:
        budget_check(out_dir, max_cells, workers)(g, cfg)
        processes.start(g.shape[0] * g.shape[1])

    with scheduler(workers, scheduler_address):
        try:
            inputs = load_inputs(config, grid_path, on_grid=on_grid)
            with output_lock(out_dir, wait) as notes:
                inputs.warnings.extend(notes)  # an interrupted publish completed or rolled back
                return _execute(inputs, out_dir, t0, workers, progress, processes=processes,
                                bundle_rasters=bundle_rasters)
        finally:
            processes.close()


def update(config: str | Path, out_dir: str | Path, grid_path: str | Path | None = None, workers: int | None = None,
           scheduler_address: str | None = None, progress: Callable[[int, int], None] | None = None,
           wait: float = 0.0, max_cells: int = MAX_CELLS, bundle_rasters: bool = False) -> dict:
    """Recompute only the chunks whose inputs changed since the last run in `out_dir`.

    Raster files that cannot be used are left out and listed (`rejected`) instead of failing
    the update. Returns a summary: status, why a full run (`reason`), inputs added/changed/
    removed/rejected, chunks, seconds. A previous run on another grid, or a state, parts or
    product file that is not what the last run wrote, means a full run: nothing is read back.
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    previous = read_state(out_dir) or {}  # replaced atomically: safe to read before locking
    # the disk is checked for a first (full) run only: a patch needs far less (a full disk: exit 74)
    inputs = load_inputs(config, grid_path, lenient=True, raster_checks=dict(previous.get("raster_checks", {})),
                         on_grid=budget_check(None if previous else out_dir, max_cells, workers))
    with output_lock(out_dir, wait) as notes:
        inputs.warnings.extend(notes)  # an interrupted publish completed or rolled back
        names = enabled_products(inputs.cfg)
        fingerprints = chunk_fingerprints(inputs, names)
        state, problem = load_state(out_dir)
        reason, parts = _full_run_reason(out_dir, inputs, names, state, problem)
        complete = reason is None
        before = state["chunks"] if complete else {}
        changed = {k for k, fp in fingerprints.items() if before.get(k) != fp}
        if complete and changed and (problem := _changed_product(out_dir, state, names)):
            inputs.warnings.append(problem)  # about to read the products back: their bytes must be the run's
            reason, complete, changed = _reason(problem), False, set(fingerprints)
        files = _input_files(inputs)
        old_files = state.get("files", {}) if state else {}
        summary = {
            "added": sorted(set(files) - set(old_files)),
            "changed": sorted(f for f in set(files) & set(old_files) if files[f] != old_files[f]),
            "removed": sorted(set(old_files) - set(files)),
            "rejected": [str(p) for p in inputs.rejected],
            "warnings": [str(p) for p in inputs.warnings],
            "chunks_recomputed": len(changed), "chunks_total": len(fingerprints), "reason": reason,
        }
        if not changed:
            if complete and inputs.raster_checks != state.get("raster_checks"):
                write_state(out_dir, {**state, "raster_checks": inputs.raster_checks})  # remember new checks
            summary.update(status="up to date", seconds=round(time.perf_counter() - t0, 3))
            return summary
        with scheduler(workers, scheduler_address):
            _execute(inputs, out_dir, t0, workers, progress,
                     changed={tuple(map(int, k.split(","))) for k in changed} if complete else None,
                     fingerprints=fingerprints, state=state if complete else None, parts=parts,
                     bundle_rasters=bundle_rasters)
        summary.update(status="updated" if complete else "full run", seconds=round(time.perf_counter() - t0, 3))
        return summary


def _full_run_reason(out_dir: Path, inputs: Inputs, names: list[str], state: dict | None,
                     problem: Problem | None) -> tuple[str | None, dict | None]:
    """Why the last run's files cannot be patched (None: they can), and its summary parts."""
    if state is None:
        if problem is not None:
            inputs.warnings.append(problem)
        return _reason(problem) if problem else "no previous run", None
    if change := grid_change(state["grid"], grid_key(inputs.grid)):
        return f"grid changed ({change})", None
    for name, f in state["published"].items():
        path = out_dir / name
        if not path.is_file() or path.stat().st_size != f["size"]:
            problem = Problem(str(path), f"{FULL_RUN} missing or not the size the last run wrote")
            inputs.warnings.append(problem)
            return _reason(problem), None
    if not all(f"{n}.tif" in state["published"] for n in names):
        return "products not made by the last run", None
    if not summaries_wanted(inputs.cfg, names, inputs.districts):
        return None, None
    parts, problem = read_parts(out_dir, state)
    if parts is None:
        if problem is not None:
            inputs.warnings.append(problem)
        return _reason(problem) if problem else "no summary parts kept", None
    return None, parts


def _reason(problem: Problem) -> str:
    return f"{Path(problem.where).name} {problem.what.removeprefix(FULL_RUN).strip()}"


def _changed_product(out_dir: Path, state: dict, names: list[str]) -> Problem | None:
    """The first product file whose SHA-256 is not the one the last run published (None: all are)."""
    for n in names:
        path = out_dir / f"{n}.tif"
        if file_sha256(path) != state["published"][path.name]["sha256"]:
            return Problem(str(path), f"{FULL_RUN} not the file the last run wrote (SHA-256 differs)")
    return None


def _execute(inputs: Inputs, out_dir: Path, t0: float, workers: int | None,
             progress: Callable[[int, int], None] | None, changed: set | None = None,
             fingerprints: dict[str, str] | None = None, state: dict | None = None,
             processes: WorkerProcesses | None = None, parts: dict | None = None,
             bundle_rasters: bool = False) -> dict:
    """Compute (all, or only the `changed` chunks of) the products, publish them, then the state.

    An update patches the previous files in place (copies of them) unless they have grown by
    half since their last full write; then it rewrites them in full, reading unchanged chunks back.
    """
    cfg, grid = inputs.cfg, inputs.grid
    arrays = build_products(cfg, grid, inputs.layers)
    t_loaded = time.perf_counter()
    created = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    targets = [_target(name, arr, inputs, created) for name, arr in arrays.items()]
    sizes = (state or {}).get("sizes", {})
    patch = changed is not None and all(
        t.name in sizes and (out_dir / f"{t.name}.tif").stat().st_size < 1.5 * sizes[t.name] for t in targets)
    for t in targets:
        t.parts = dict((state or {}).get("parts", {}).get(t.name, {})) if patch else {}
    summary, fields = build_summary(cfg, grid, inputs.layers, arrays, inputs.districts)
    extra = None
    if summary is not None:  # district sums and zone pieces, kept per chunk like the statistics
        extra = ChunkParts(summary, dict(parts or {}) if changed is not None else {}, changed)
    with staging_folder(out_dir, _budget(grid, cfg, workers).staging_bytes) as staging:
        done = [0]
        total = len(list(grid.tile_ids()))

        def on_tiles(n: int) -> None:
            done[0] += n
            if progress:
                progress(done[0], total)

        window = max(2, 2 * (workers or os.cpu_count() or 1))  # chunks in flight
        titles = {t.name: product_title(t.name, cfg) for t in targets}  # on maps, project, report
        names, timing = [], {}

        def deliver(sources: dict[str, Path]) -> None:
            """Styles, summaries, QGIS project, maps and report: everything but the product files."""
            t_sum = time.perf_counter()
            styles, legends = {}, {t.name: PRODUCTS[t.name].style(cfg) for t in targets}
            for t in targets:
                styles[t.name] = qml(legends[t.name])
                (staging / f"{t.name}.qml").write_text(styles[t.name])
                names.extend([f"{t.name}.tif", f"{t.name}.qml"])
            tables = write_summaries(staging, extra.parts, cfg, grid, inputs.districts, fields) if extra else {}
            names.extend(f for f in ("districts.gpkg", "districts.csv", "priority_zones.gpkg") if (staging / f).exists())
            names.extend(write_qgis_project(staging, out_dir, cfg, grid, inputs.layers, styles, titles,
                                            created, __version__, bundle_rasters or cfg.spec.output.bundle_rasters))
            subtitle = " · ".join(x for x in (f"Run {created[:16].replace('T', ' ')} UTC", f"grid {grid.name}",
                                              f"minemap {__version__}", cfg.spec.label) if x)
            names.extend(write_maps_and_report(staging, sources, grid, legends, titles,
                                               {t.name: product_equation(t.name, cfg) for t in targets},
                                               {t.name: t.unit for t in targets}, tables, subtitle,
                                               dpi=cfg.spec.output.dpi))
            names.append(write_briefing_pack(staging, out_dir, sources, cfg, grid, inputs.layers, legends, titles, {t.name: t.unit for t in targets}, tables, created, __version__))
            timing["deliverables_s"] = round(time.perf_counter() - t_sum, 3)

        if patch:
            written = patch_rasters(targets, grid, staging, out_dir, changed, window, on_tiles, extra, deliver)
        else:
            written = write_rasters(targets, grid, staging, cfg.spec.output.compress, cfg.spec.output.level,
                                    window=window, on_tiles=on_tiles,
                                    previous=out_dir if changed is not None else None, changed=changed,
                                    extra=extra, processes=processes, beside=deliver)
        written.update(timing)  # made while the COGs were written: overlaps cog_s
        bands = {t.name: {"equation": product_equation(t.name, cfg),
                          "band": {"nodata": t.nodata, "dtype": str(t.array.dtype), "unit": t.unit,
                                   "statistics": t.stats.as_dict()}} for t in targets}
        names.append(write_catalogue_item(staging, grid, created, names + [RUN_RECORD], bands, titles, {
            "title": f"minemap products on grid {grid.name}", "minemap:version": __version__,
            "minemap:config_sha256": cfg.digest(), "minemap:grid": grid.name,
            "minemap:chunks_recomputed": len(changed) if changed is not None else None}))
        record = _record(inputs, targets, created, out_dir, {
            "load_s": round(t_loaded - t0, 3), **written, "total_s": round(time.perf_counter() - t0, 3)})
        if changed is not None:
            record["chunks_recomputed"] = len(changed)
        record["files"] = file_hashes(staging, names)  # a reader can check the set is this run's
        (staging / RUN_RECORD).write_text(json.dumps(record, indent=2, default=str))
        parts_file, parts_sha = write_parts(out_dir, extra.parts) if extra else (None, None)
        if not patch:
            sizes = {t.name: (staging / f"{t.name}.tif").stat().st_size for t in targets}
        with deferred_interrupt():  # Ctrl-C waits for the renames: OUT holds one whole set
            publish(staging, out_dir, {**record["files"], **file_hashes(staging, [RUN_RECORD])}, {  # the record last
                "grid": grid_key(grid), "chunks": fingerprints or chunk_fingerprints(inputs, list(arrays)),
                "files": {f: v["sha256"] for f, v in record["inputs"].items()},
                "parts": {t.name: t.parts for t in targets}, "sizes": sizes, "summary_parts": parts_file,
                "summary_parts_sha256": parts_sha,
                "raster_checks": {p: c for p, c in inputs.raster_checks.items() if p in record["inputs"]}})
    return record


def _input_files(inputs: Inputs) -> dict[str, str]:
    """Every input file's SHA-256 (raster hashes were taken, or recalled, while checking them)."""
    known = {p: c["sha256"] for p, c in inputs.raster_checks.items()}
    return {str(f): known.get(str(f)) or file_sha256(f) for layer in inputs.layers.values() for f in layer.files}


def _target(name: str, array, inputs: Inputs, created: str) -> RasterTarget:
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
        return f"min(L / {settings.L_sat:g}, 1) with L = {_describe('L', inputs)}"
    if spec is None and var == "P_c":
        return "product contamination_probability"
    if spec is None and var == "C":
        return f"A_c > 0 ({_describe('A_c', inputs)})"
    fields = spec.model_dump(exclude_defaults=True)
    return ", ".join(f"{k}={v}" for k, v in fields.items())


def _record(inputs: Inputs, targets: list[RasterTarget], created: str, out_dir: Path, timings: dict) -> dict:
    hashes = _input_files(inputs)
    files = {}
    for var, layer in inputs.layers.items():
        for f in layer.files:
            files.setdefault(str(f), {"sha256": hashes[str(f)], "variables": []})["variables"].append(var)
    return {
        "minemap_version": __version__,
        "created_utc": created,
        "config": {"path": str(inputs.cfg.path), "sha256": inputs.cfg.digest(),
                   "settings": inputs.cfg.spec.model_dump(mode="json")},
        "grid": inputs.grid.describe(),
        "inputs": files,
        "rejected": [str(p) for p in inputs.rejected],
        "warnings": [str(p) for p in inputs.warnings],
        "products": {t.name: {"file": PRODUCTS[t.name].file, "style": f"{t.name}.qml",
                              "equation": product_equation(t.name, inputs.cfg),
                              "unit": PRODUCTS[t.name].unit, **t.stats.as_dict()} for t in targets},
        "timings": timings,
    }


def budget_check(out_dir: Path | None, max_cells: int, workers: int | None = None) -> Callable[[Grid, LoadedConfig], None]:
    """What refuses a grid too large for `max_cells` or for OUT's free disk (see `guard`),
    called as soon as the grid is known, before any input is read in full."""
    return lambda grid, cfg: check(_budget(grid, cfg, workers), out_dir, max_cells, grid.source)


def _budget(grid: Grid, cfg: LoadedConfig, workers: int | None):
    """What a run of `cfg`'s products on `grid` needs (cells, staging, memory)."""
    return estimate(grid.shape, grid.chunk, [PRODUCTS[name].dtype for name in enabled_products(cfg)],
                    max(2, 2 * (workers or os.cpu_count() or 1)))
