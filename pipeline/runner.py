"""A whole run: config → grid → layers → products → files in OUT, with a run record.

The orchestrator: plan (`engine.plan`: inputs checked in full before anything is written, what
to recompute) → compute (`engine.compute`: the chunk pass) → deliver (`engine.deliver`: styles,
summaries, maps, report, STAC, run.json) → publish (`outdir`: one journaled step, the record last).
"""

from __future__ import annotations

import tempfile
import time
from contextlib import contextmanager
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterator

from .config import LoadedConfig
from .engine.compute import compute
from .engine.deliver import RUN_RECORD, Delivery
from .engine.plan import (Inputs, budget, budget_check, changed_product, full_run_reason, input_files,  # noqa: F401
                          load_inputs, plan_targets, product_files, reason_of)
from .errors import MinemapError, WorkerLostError
from .grid import Grid
from .history import prune_history
from .guard import MAX_CELLS, deferred_interrupt
from .outstore import S3Out, is_s3
from .store import store_error
from .outdir import (file_hashes, keep_pages, load_state, page_hashes, output_lock, publish, read_state, staging_folder,
                     write_parts, write_state)
from .products import build_products, enabled_products
from .runtime import runtime, scheduler  # noqa: F401 (scheduler: importable here as before)
from .state import chunk_fingerprints, grid_key
from .summaries import build_summary
from .writers.chunks import WorkerProcesses
from .writers.geotiff import ChunkParts


def run(config: str | Path, out_dir: str | Path, grid_path: str | Path | Grid | None = None,
        workers: int | None = None,
        scheduler_address: str | None = None, progress: Callable[[int, int], None] | None = None,
        wait: float = 0.0, max_cells: int = MAX_CELLS, bundle_rasters: bool = False) -> dict:
    """Compute every enabled product into `out_dir`; return the run record. `bundle_rasters`
    as the config's [output] bundle_rasters (either one copies the drone rasters into OUT)."""
    t0 = time.perf_counter()
    out_dir = S3Out(out_dir) if is_s3(out_dir) else Path(out_dir)
    processes = WorkerProcesses()

    def on_grid(g: Grid, cfg: LoadedConfig) -> None:
        budget_check(None if isinstance(out_dir, S3Out) else out_dir, max_cells, workers)(g, cfg)
        if cfg.spec.output.format == "cog":  # a Zarr store's chunks come back to be written: threads (#12)
            processes.start(g.shape[0] * g.shape[1])

    with runtime(workers, scheduler_address):
        try:
            inputs = load_inputs(config, grid_path, on_grid=on_grid)
            with _lock(out_dir, wait) as notes:
                inputs.warnings.extend(notes)  # an interrupted publish completed or rolled back
                return _execute(inputs, out_dir, t0, workers, progress, processes=processes,
                                bundle_rasters=bundle_rasters)
        except BrokenProcessPool:  # killed (memory) or crashed: staging is gone, OUT as it was
            raise WorkerLostError.of(out_dir) from None
        finally:
            processes.close()


def update(config: str | Path, out_dir: str | Path, grid_path: str | Path | Grid | None = None,
           workers: int | None = None,
           scheduler_address: str | None = None, progress: Callable[[int, int], None] | None = None,
           wait: float = 0.0, max_cells: int = MAX_CELLS, bundle_rasters: bool = False) -> dict:
    """Recompute only the chunks whose inputs changed since the last run in `out_dir`.

    Raster files that cannot be used are left out and listed (`rejected`) instead of failing
    the update. Returns a summary: status, why a full run (`reason`), inputs added/changed/
    removed/rejected, chunks, seconds. A previous run on another grid, or a state, parts or
    product file that is not what the last run wrote, means a full run: nothing is read back.
    """
    t0 = time.perf_counter()
    if is_s3(out_dir):
        return _update_s3(S3Out(out_dir), config, grid_path, workers, scheduler_address, progress, wait, max_cells,
                          bundle_rasters, t0)
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
        reason, parts = full_run_reason(out_dir, inputs, names, state, problem)
        complete = reason is None
        before = state["chunks"] if complete else {}
        changed = {k for k, fp in fingerprints.items() if before.get(k) != fp}
        if complete and changed and (problem := changed_product(out_dir, state, product_files(inputs.cfg, names))):
            inputs.warnings.append(problem)  # about to read the products back: their bytes must be the run's
            reason, complete, changed = reason_of(problem), False, set(fingerprints)
        files = input_files(inputs)
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
        with runtime(workers, scheduler_address):
            try:
                _execute(inputs, out_dir, t0, workers, progress,
                         changed={tuple(map(int, k.split(","))) for k in changed} if complete else None,
                         fingerprints=fingerprints, state=state if complete else None, parts=parts,
                         bundle_rasters=bundle_rasters)
            except BrokenProcessPool:  # (a full run's chunks may go to worker processes)
                raise WorkerLostError.of(out_dir) from None
        summary.update(status="updated" if complete else "full run", seconds=round(time.perf_counter() - t0, 3))
        return summary


def _execute(inputs: Inputs, out_dir: Path, t0: float, workers: int | None,
             progress: Callable[[int, int], None] | None, changed: set | None = None,
             fingerprints: dict[str, str] | None = None, state: dict | None = None,
             processes: WorkerProcesses | None = None, parts: dict | None = None,
             bundle_rasters: bool = False) -> dict:
    """Plan the files, compute them (all, or only the `changed` chunks), deliver the rest beside
    them, then publish the set and the state (see `engine` and `outdir`)."""
    if isinstance(out_dir, S3Out):
        return _execute_s3(inputs, out_dir, t0, workers, progress, changed, fingerprints, state, processes, parts,
                           bundle_rasters)
    cfg, grid = inputs.cfg, inputs.grid
    extras: dict = {}
    arrays = build_products(cfg, grid, inputs.layers, extras)
    t_loaded = time.perf_counter()
    created = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    targets, patch = plan_targets(inputs, arrays, created, out_dir, state, changed)
    summary, fields = build_summary(cfg, grid, inputs.layers, {**arrays, **extras}, inputs.districts)
    extra = None
    if summary is not None:  # district sums and zone pieces, kept per chunk like the statistics
        extra = ChunkParts(summary, dict(parts or {}) if changed is not None else {}, changed)
    with staging_folder(out_dir, budget(grid, cfg, workers).staging_bytes) as staging:
        delivery = Delivery(inputs, out_dir, staging, targets, created, extra, fields, bundle_rasters,
                            previous=load_state(out_dir)[0], changed=changed,  # the last run's files, to compare with
                            processes=processes)
        written = compute(targets, inputs, staging, out_dir, workers, progress, changed, patch, extra, processes,
                          beside=delivery)
        written.update(delivery.timing)  # made while the COGs were written: overlaps cog_s
        record = delivery.record({"load_s": round(t_loaded - t0, 3), **written,
                                  "total_s": round(time.perf_counter() - t0, 3)}, changed)
        parts_file, parts_sha = write_parts(out_dir, extra.parts) if extra else (None, None)
        sizes = (state or {}).get("sizes", {})
        if not patch and cfg.spec.output.format == "cog":  # (a Zarr store is rewritten in full, issue #12)
            sizes = {t.name: (staging / f"{t.name}.tif").stat().st_size for t in targets}
        with deferred_interrupt():  # Ctrl-C waits for the renames: OUT holds one whole set
            publish(staging, out_dir, {**record["files"], **file_hashes(staging, [RUN_RECORD])}, {  # the record last
                "grid": grid_key(grid), "chunks": fingerprints or chunk_fingerprints(inputs, list(arrays)),
                "files": {f: v["sha256"] for f, v in record["inputs"].items()},
                "parts": {t.name: t.parts for t in targets}, "sizes": sizes, "summary_parts": parts_file,
                "summary_parts_sha256": parts_sha,
                "raster_checks": {p: c for p, c in inputs.raster_checks.items() if p in record["inputs"]},
                "pages": page_hashes(staging), "made_from": delivery.made_from, "looks": delivery.looks})
            prune_history(out_dir)  # items the new catalog no longer links (keep_history)
            keep_pages(staging, out_dir)  # the briefing's district pages, for the next run to reuse
    return record


# --- OUT in object storage (issue #23; the protocol is `outstore`) ----------------------------------

@contextmanager
def _lock(out: Path | S3Out, wait: float) -> Iterator[list]:
    """OUT's lock; in object storage, a failure of the store there (denied, missing bucket, no answer)
    becomes its StoreError (its own exit code, naming OUT), as for inputs."""
    if not isinstance(out, S3Out):
        with output_lock(out, wait) as notes:
            yield notes
        return
    with _store_errors(out), out.lock(wait) as notes:
        yield notes


@contextmanager
def _store_errors(out: S3Out) -> Iterator[None]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except MinemapError:
        raise
    except (BotoCoreError, ClientError) as e:  # boto3 here talks to OUT only (inputs raise their own)
        err = store_error(out.url, e)
        if err is e:
            raise
        raise err from None


def _update_s3(out: S3Out, config, grid_path, workers, scheduler_address, progress, wait, max_cells, bundle_rasters,
               t0: float) -> dict:
    """`update` with OUT in object storage: the previous set's state read through the pointer; the
    changed chunks computed, the others read back from the previous set's products (an object is
    never patched in place), and a whole new set published."""
    with tempfile.TemporaryDirectory(prefix="minemap-s3-") as shadow, _store_errors(out):
        shadow = Path(shadow)
        pointer_state, problem, _ = out.previous(shadow)
        inputs = load_inputs(config, grid_path, lenient=True,
                             raster_checks=dict((pointer_state or {}).get("raster_checks", {})),
                             on_grid=budget_check(None, max_cells, workers))
        with _lock(out, wait) as notes:
            inputs.warnings.extend(notes)
            state, problem, previous = out.previous(shadow)  # again, under the lock
            names = enabled_products(inputs.cfg)
            fingerprints = chunk_fingerprints(inputs, names)
            reason, parts = full_run_reason(shadow, inputs, names, state, problem, files_checked=True)
            complete = reason is None
            before = state["chunks"] if complete else {}
            changed = {k for k, fp in fingerprints.items() if before.get(k) != fp}
            files, old_files = input_files(inputs), state.get("files", {}) if state else {}
            summary = {
                "added": sorted(set(files) - set(old_files)),
                "changed": sorted(f for f in set(files) & set(old_files) if files[f] != old_files[f]),
                "removed": sorted(set(old_files) - set(files)),
                "rejected": [str(p) for p in inputs.rejected], "warnings": [str(p) for p in inputs.warnings],
                "chunks_recomputed": len(changed), "chunks_total": len(fingerprints), "reason": reason,
            }
            if not changed:
                summary.update(status="up to date", seconds=round(time.perf_counter() - t0, 3))
                return summary
            with runtime(workers, scheduler_address):
                _execute_s3(inputs, out, t0, workers, progress,
                            changed={tuple(map(int, k.split(","))) for k in changed} if complete else None,
                            fingerprints=fingerprints, state=state if complete else None, parts=parts,
                            bundle_rasters=bundle_rasters, previous=previous if complete else None)
            summary.update(status="updated" if complete else "full run", seconds=round(time.perf_counter() - t0, 3))
            return summary


def _execute_s3(inputs: Inputs, out: S3Out, t0: float, workers: int | None,
                progress: Callable[[int, int], None] | None, changed: set | None = None,
                fingerprints: dict[str, str] | None = None, state: dict | None = None,
                processes: WorkerProcesses | None = None, parts: dict | None = None,
                bundle_rasters: bool = False, previous: Path | None = None) -> dict:
    """`_execute` for OUT in object storage: the workers stage their chunks under the run's prefix
    and each COG is uploaded in parts as it is assembled (no disk holds the set); everything else is
    made in a local staging folder, uploaded beside them, and the pointer files written last.
    `previous`: the previous set's folder (GDAL path) an update reads its unchanged chunks from."""
    cfg, grid = inputs.cfg, inputs.grid
    if cfg.spec.output.format != "cog":
        from .errors import ConfigError
        from .errors import Problem as _Problem

        raise ConfigError([_Problem(out.url, "OUT in object storage takes [output] format = \"cog\" only")])
    extras: dict = {}
    arrays = build_products(cfg, grid, inputs.layers, extras)
    t_loaded = time.perf_counter()
    created = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    with tempfile.TemporaryDirectory(prefix="minemap-s3-") as shadow:
        shadow = Path(shadow)  # stands for OUT where the deliverables look: nothing of a previous set is reused
        targets, _ = plan_targets(inputs, arrays, created, shadow, state, changed, patchable=False)
        summary, fields = build_summary(cfg, grid, inputs.layers, {**arrays, **extras}, inputs.districts)
        extra = None
        if summary is not None:
            extra = ChunkParts(summary, dict(parts or {}) if changed is not None else {}, changed)
        with staging_folder(shadow) as staging:
            delivery = Delivery(inputs, shadow, staging, targets, created, extra, fields, bundle_rasters,
                                previous=None, changed=changed, processes=processes, known=out.uploaded)
            written = compute(targets, inputs, staging, previous, workers, progress, changed, False, extra,
                              processes, beside=delivery, remote=out)
            written.update(delivery.timing)
            record = delivery.record({"load_s": round(t_loaded - t0, 3), **written,
                                      "total_s": round(time.perf_counter() - t0, 3)}, changed)
            parts_file, parts_sha = write_parts(staging, extra.parts) if extra else (None, None)
            sizes = {t.name: out.uploaded[f"{t.name}.tif"]["size"] for t in targets}
            with deferred_interrupt():
                record["set"] = out.publish(staging, [*record["files"], RUN_RECORD], record, {
                    "grid": grid_key(grid), "chunks": fingerprints or chunk_fingerprints(inputs, list(arrays)),
                    "files": {f: v["sha256"] for f, v in record["inputs"].items()},
                    "parts": {t.name: t.parts for t in targets}, "sizes": sizes, "summary_parts": parts_file,
                    "summary_parts_sha256": parts_sha,
                    "raster_checks": {p: c for p, c in inputs.raster_checks.items() if p in record["inputs"]},
                    "pages": {}, "made_from": {}, "looks": {}}, cfg.spec.output.keep_history)
    return record
