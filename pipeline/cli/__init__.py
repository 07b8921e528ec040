"""The `minemap` command: a thin click layer over `runner`; user errors are caught here, once.

Options are declared once, in `options`; `python -m pipeline.cli` runs `entry` (`__main__`)."""

from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import TYPE_CHECKING, Callable, Iterator
import json
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .. import __version__
from ..errors import MinemapError, Problem
from ..logline import summary_line
from .options import (compute_options, config_arg, grid_opt, json_opt, max_cells_opt, out_opt, quiet_opt,
                      wait_opt, workers_opt)

if TYPE_CHECKING:
    from ..grid import Grid

# never wrapped (a line stays one line in cron logs and journald); user text is escaped
# (rich would take "[inputs.L]" for markup and drop it)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_CODES = """Exit codes: 0 success (or up to date); 1 unexpected failure (a bug: please report it); 2 bad
config or input (or a grid too large: --max-cells, disk), nothing written; 3 update completed with rejected
inputs (listed); 71 a worker process stopped mid-run (the system stops one when memory runs out: try --workers
1), nothing published; 66 an input URL names no object (HTTP 404); 69 the object store did not answer (refused,
time-out, 5xx after retries); 77 the store refused access (HTTP 403); 74 writing the outputs failed (disk full,
quota, read-only, I/O error), previous outputs kept; 75 another minemap process holds the output folder's lock;
130 interrupted (Ctrl-C), staging removed, lock released."""
REJECTED_EXIT = 3
INTERRUPTED_EXIT = 130  # 128 + SIGINT, as shells report it


def user_errors(f):
    """Print MinemapError problems one per line, no traceback, and exit with its code; with
    --json, also one JSON object on stdout. Ctrl-C: exit 130, saying what OUT holds."""

    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        as_json, out_dir = kwargs.get("as_json", False), kwargs.get("out_dir")
        before = _run_record(out_dir)
        try:
            return f(*args, **kwargs)
        except MinemapError as e:
            fail(e.exit_code, e.problems, as_json)
        except KeyboardInterrupt:
            if out_dir is None or before is None and _run_record(out_dir) is None:
                kept = "nothing written"
            elif _run_record(out_dir) == before:
                kept = "previous outputs kept as they were"
            else:
                kept = "the new outputs were already in place (see run.json)"
            fail(INTERRUPTED_EXIT, [Problem(str(out_dir or "minemap"), kept)], as_json,
                 status="interrupted", label="interrupted")
        except Exception as e:  # a bug: the traceback follows on stderr; cron logs still get their line
            if as_json:
                click.echo(json.dumps(error_json(1, [Problem("minemap", f"unexpected failure (a bug: please "
                                                                        f"report it): {type(e).__name__}: {e}")])))
            raise

    return wrapper


def _run_record(out_dir: Path | str | None) -> bytes | None:
    """OUT's run record (an object-storage OUT's: its pointer run.json) as it is now."""
    if isinstance(out_dir, str):
        from ..outstore import S3Out

        try:
            return json.dumps(S3Out(out_dir).pointer()).encode()
        except Exception:  # the store cannot be reached: what it holds is not known here
            return None
    try:
        return (out_dir / "run.json").read_bytes() if out_dir is not None else None
    except OSError:
        return None


def error_json(code: int, problems: list[Problem], status: str = "error") -> dict:
    return {"status": status, "exit_code": code, "problems": [{"where": p.where, "what": p.what} for p in problems]}


def fail(code: int, problems: list[Problem], as_json: bool, status: str = "error", label: str = "error") -> None:
    """The problems on stderr, one a line (and as one JSON object on stdout with --json); exit `code`."""
    for p in problems:
        err.print(f"[bold red]{label}[/]: {escape(str(p))}")
    if as_json:
        click.echo(json.dumps(error_json(code, problems, status)))
    sys.exit(code)


def print_warnings(warnings: list) -> None:
    """What the user should know but does not stop the run, one line each."""
    for w in warnings:
        err.print(f"[bold yellow]warning[/]: {escape(str(w))}")


@click.group(epilog=EXIT_CODES)
@click.version_option(__version__, prog_name="minemap")
def main() -> None:
    """Landmine-contamination evidence to QGIS-ready maps (P_c, E, R_e, CSC)."""


@main.command()
@compute_options
@quiet_opt("Print only warnings and errors (no progress bar, no summary).")
@user_errors
def run(config: Path, grid_path: Path | None, out_dir: Path, workers: int | None, address: str | None,
        wait: float, max_cells: float, bundle_rasters: bool, quiet: bool) -> None:
    """Compute every product of CONFIG into OUT."""
    grid = first_line("run", config, grid_path, out_dir, quiet)
    from ..runner import run as run_pipeline  # dask, GDAL, matplotlib…: imported after the first line

    with progress_bar(quiet) as progress:
        record = run_pipeline(config, out_dir, grid, workers, address, progress=progress, wait=wait,
                              max_cells=int(max_cells), bundle_rasters=bundle_rasters)
    print_warnings(record["warnings"])
    if quiet:
        return
    g = record["grid"]
    err.print(f"grid {escape(g['name'])}: {g['shape'][1]} × {g['shape'][0]} cells of {g['resolution_m']:g} m; "
              f"{record['timings']['total_s']:.1f} s")
    folder = record["set"]["url"].rstrip("/") if "set" in record else out_dir  # in object storage: the run's prefix
    for name, p in record["products"].items():
        rng = "no valid cells" if p["min"] is None else f"{p['min']:.4g} … {p['max']:.4g}, mean {p['mean']:.4g}"
        where = f"{folder}/{p['file']}" + (f":/{p['variable']}" if "variable" in p else "")  # a Zarr store's (#12)
        err.print(f"  {escape(where)}  ({rng})")
    err.print(f"run record: {escape(f'{out_dir}/run.json')}")


def first_line(command: str, config: Path, grid_path: Path | None, out_dir: Path,
               quiet: bool) -> Path | Grid | None:
    """Say what is being run (config, grid, cells, chunks) as soon as the config and grid are read,
    before the heavy libraries are imported: within a second, and before any input is read.
    Returns the grid for the runner to use as it is (read once), or `grid_path` when the config or
    grid has a problem: the runner then reads them again and lists it with the inputs' problems."""
    from ..config import check_config
    from ..grid import load_grid

    try:
        cfg, _, _ = check_config(config)
        grid = load_grid(grid_path or cfg.resolve(cfg.spec.grid)) if cfg is not None else None
    except MinemapError:
        grid = None
    if grid is None:
        return grid_path
    if not quiet:
        (rows, cols), chunks = grid.shape, grid.tiles.shape[0] * grid.tiles.shape[1]
        model = f"; applying the {cfg.spec.model.describe()}" if cfg.spec.model is not None else ""
        err.print(f"{command} {escape(str(config))}: grid {escape(grid.name)}, {cols} × {rows} = {rows * cols:,} "
                  f"cells of {grid.resolution:g} m in {chunks} chunk{'s' * (chunks != 1)} → {escape(str(out_dir))}"
                  + escape(model))
    return grid


@contextmanager
def progress_bar(quiet: bool) -> Iterator[Callable[[int, int], None]]:
    """A chunk progress bar on stderr; yields the callback the runner reports to. Only on a
    terminal: in a log it would be one stale "0/? chunks" line, even before a refusal."""
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("chunks"),
                  TimeElapsedColumn(), console=err, disable=quiet or not err.is_terminal, transient=False) as bar:
        task = bar.add_task("computing", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@main.command()
@compute_options
@json_opt
@quiet_opt("Print only warnings and errors (no progress bar, no summary line).")
@user_errors
def update(config: Path, grid_path: Path | None, out_dir: Path, workers: int | None, address: str | None,
           wait: float, max_cells: float, bundle_rasters: bool, as_json: bool, quiet: bool) -> None:
    """Bring OUT up to date with CONFIG's inputs, recomputing only the chunks whose inputs changed.

    Unusable raster files (corrupt, no CRS, no overlap, values out of range) are left out and
    listed; the exit code is then 3.
    """
    grid = first_line("update", config, grid_path, out_dir, quiet)
    from ..runner import update as update_pipeline

    with progress_bar(quiet or as_json) as progress:
        summary = update_pipeline(config, out_dir, grid, workers, address, progress=progress, wait=wait,
                                  max_cells=int(max_cells), bundle_rasters=bundle_rasters)
    print_warnings(summary["warnings"])
    for problem in summary["rejected"]:
        err.print(f"[bold yellow]rejected[/]: {escape(problem)}")
    if as_json:
        click.echo(json.dumps(summary))
    elif not quiet:
        err.print(summary_line(summary), markup=False)
    if summary["rejected"]:
        sys.exit(REJECTED_EXIT)


@main.command()
@config_arg
@grid_opt
@out_opt()
@workers_opt("Chunks computed at once (default: all cores).")
@click.option("--settle", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Seconds without new or growing files before updating (batches arrivals).")
@click.option("--interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              help="Seconds between looks at the folders, S3 prefixes and STAC catalogues or API searches.")
@wait_opt(600, "Seconds an update waits for another writer of OUT.")
@user_errors
def watch(config: Path, grid_path: Path | None, out_dir: Path, workers: int | None, settle: float,
          interval: float, wait: float) -> None:
    """Watch CONFIG's raster folders, S3 prefixes and STAC sources; update OUT when new files or items have
    settled. One log line per update."""
    from ..runner import update as update_pipeline
    from ..watch import watch as watch_folders
    from ..watch import watched

    def log(line: str) -> None:
        err.print(line, soft_wrap=True, markup=False)

    try:
        watch_folders(config, out_dir, lambda: update_pipeline(config, out_dir, grid_path, workers, wait=wait),
                      log, settle=settle, interval=interval, poll=watched(config, grid_path))
    except KeyboardInterrupt:
        log("stopped")


@main.command()
@config_arg
@grid_opt
@json_opt
@max_cells_opt("Refuse grids of more cells than this, as run and update would.")
@user_errors
def validate(config: Path, grid_path: Path | None, as_json: bool, max_cells: float) -> None:
    """Check every input of CONFIG and list all problems at once; writes nothing."""
    from ..runner import budget_check, load_inputs

    inputs = load_inputs(config, grid_path, on_grid=budget_check(None, int(max_cells)))
    files = sorted({str(f) for layer in inputs.layers.values() for f in layer.files})
    if as_json:
        click.echo(json.dumps({"status": "ok", "ok": True, "grid": inputs.grid.describe(), "files": files,
                               "warnings": [str(w) for w in inputs.warnings]}, indent=2))
        return
    print_warnings(inputs.warnings)
    g = inputs.grid
    err.print(f"ok: {len(inputs.layers)} layers from {len(files)} files on grid {g.name} "
              f"({g.shape[1]} × {g.shape[0]} cells, {g.resolution:g} m, {g.crs})", markup=False)


@main.command()
@click.argument("region", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", required=True, help="The region's name, as maps and the briefing show it.")
@click.option("--cell", type=click.FloatRange(min=0, min_open=True), default=100.0, show_default=True,
              help="Cell size in metres.")
@click.option("--layer", help="Layer of REGION (default: its first).")
@click.option("--records", type=click.Path(dir_okay=False, path_type=Path),
              help="Mine records: a CSV with lon/lat (or x/y) columns, or a point/polygon vector file.")
@click.option("--records-crs", help="CRS of the records CSV's x/y columns, e.g. EPSG:32638 (lon/lat: EPSG:4326).")
@click.option("--soil", type=click.Path(dir_okay=False, path_type=Path), help="Soil map: polygons with a class field.")
@click.option("--soil-field", help="The soil map's class field (default: the one text field that looks like one).")
@click.option("--drones", help="Drone anomaly rasters: a file or a quoted glob ('flights/*.tif').")
@click.option("--label", help="Caveat shown on every map and page (default: the region and the evidence used).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder to write grid.toml, minemap.toml (and soil_classes.csv) into.")
@click.option("--force", is_flag=True, help="Replace files that exist.")
@user_errors
def init(region: Path, name: str, cell: float, layer: str | None, records: Path | None, records_crs: str | None,
         soil: Path | None, soil_field: str | None, drones: str | None, label: str | None, out_dir: Path,
         force: bool) -> None:
    """Start a new region: a grid definition (UTM zone of REGION's centroid) and a commented config
    for the evidence given (records; + soil; + drones) that `validate` accepts and `run` completes."""
    from ..region_init import plan, summary, write

    recipe = plan(region, name, cell, layer, records, soil, soil_field, drones, label, records_crs)
    files = write(recipe, out_dir, force)
    for line in summary(recipe, files):
        err.print(line, markup=False)


def _numbers(ctx, param, value: str | None) -> list[float] | None:
    """A comma-separated list of positive numbers (`500,1000,2000`)."""
    if value is None:
        return None
    try:
        out = [float(x) for x in value.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers") from None
    if not out or any(x <= 0 for x in out):
        raise click.BadParameter(f"{value!r}: give positive numbers, e.g. 500,1000,2000")
    return out


@main.command()
@config_arg
@click.option("--events", "events_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Known events: points or polygons with an outcome field (1 mine/accident/find, 0 searched clear).")
@click.option("--outcome-field", default="outcome", show_default=True, help="Field holding 1 or 0.")
@click.option("--layer", help="Layer of the events file (default: its first).")
@grid_opt
@out_opt("Output folder of a finished run.")
@click.option("--cv-block-km", type=click.FloatRange(min=0, min_open=True), default=20.0, show_default=True,
              help="Edge of the square blocks folds are made of.")
@click.option("--bandwidths", callback=_numbers, help="Density bandwidths (m) to cross-validate, e.g. 500,1000,2000.")
@click.option("--l-sat", "l_sats", callback=_numbers, help="L_sat values (mines/km²) to cross-validate, e.g. 25,50.")
@click.option("--fit-weights", is_flag=True, help="Fit w_H, w_S, w_V on the training folds.")
@click.option("--extent", type=click.Path(dir_okay=False, path_type=Path),
              help="Polygons of the area the events were surveyed in: areas count only its cells.")
@wait_opt()
@user_errors
def evaluate(config: Path, events_path: Path, outcome_field: str, layer: str | None, grid_path: Path | None,
             out_dir: Path, cv_block_km: float, bandwidths: list[float] | None, l_sats: list[float] | None,
             fit_weights: bool, extent: Path | None, wait: float) -> None:
    """Score the finished run in OUT against known events: AUC, capture curve, events per km² by
    class, calibration, block cross-validation. Writes evaluation.json, two PNGs and a report section."""
    from ..evaluate import evaluate as evaluate_run

    r = evaluate_run(config, events_path, out_dir, grid_path=grid_path, outcome_field=outcome_field, layer=layer,
                     cv_block_km=cv_block_km, bandwidths=bandwidths, l_sats=l_sats, fit_weights=fit_weights,
                     extent=extent, wait=wait)
    c = r["counts"]
    err.print(f"{c['events']} events ({c['positives']} positive, {c['negatives']} negative)")
    for name, p in r["products"].items():
        auc = "–" if p["auc"] != p["auc"] else f"{p['auc']:.3f}"
        err.print(f"  {name}: AUC {auc}; capture " + ", ".join(
            f"{k} {v:.0%}" for k, v in p["capture"].items() if v == v), soft_wrap=True)
    if r["classes"]:
        err.print(f"  {r['classes']['statement']}", soft_wrap=True)
    if r.get("fitted_on_these_events"):
        err.print(f"[bold yellow]note[/]: {escape(r['fitted_on_these_events'])}", soft_wrap=True)
    skill = r.get("skill")
    if skill:
        err.print(f"  nearest-record baseline: AUC {skill['baseline_auc']:.3f}, capture 10% "
                  f"{skill['baseline_capture_10']:.0%}", soft_wrap=True)
        if skill["banner"]:
            err.print(f"[bold yellow]note[/]: {escape(skill['banner'])}", soft_wrap=True)
    best = r["cross_validation"].get("best")
    if best:
        err.print(f"  cross-validation: best held-out AUC {best['heldout_auc']:.3f} "
                  f"(bandwidth_m {best['bandwidth_m']}, L_sat {best['L_sat']})")
    err.print(f"results: {out_dir / 'evaluation.json'}")


@main.command()
@config_arg
@click.option("--events", "events_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Known events: points or polygons with an outcome field (1 mine/accident/find, 0 searched clear).")
@click.option("--outcome-field", default="outcome", show_default=True, help="Field of --events holding 1 or 0.")
@click.option("--layer", help="Layer of the events file (default: its first).")
@click.option("--finds-field", help="Also label the config's [release] polygons by this field (devices found): "
                                    "cleared/reduced with finds 1, with none or cancelled 0.")
@click.option("--accidents", type=click.Path(dir_okay=False, path_type=Path), help="Accident points: positives.")
@click.option("--extent", type=click.Path(dir_okay=False, path_type=Path),
              help="Polygons of the area the events were surveyed in: the capture counts only its cells.")
@click.option("--cv-block-km", type=click.FloatRange(min=0, min_open=True), default=20.0, show_default=True,
              help="Edge of the square blocks folds are made of.")
@click.option("--bandwidths", callback=_numbers, help="Kernel bandwidths (m) to try (default 2000,5000,10000,20000).")
@click.option("--l-sat", "l_sats", callback=_numbers, help="L_sat values to try (default: ½, 1 and 2 × the config's).")
@click.option("--decays", callback=_numbers, help="λ (m) of the distance-decay H_m = exp(−d/λ) (default 1000,3000,10000).")
@click.option("--write", "write", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="FITTED.toml to write (beside CONFIG): CONFIG's text plus a [model] section.")
@grid_opt
@user_errors
def calibrate(config: Path, events_path: Path | None, outcome_field: str, layer: str | None, finds_field: str | None,
              accidents: Path | None, extent: Path | None, cv_block_km: float, bandwidths: list[float] | None,
              l_sats: list[float] | None, decays: list[float] | None, write: Path, grid_path: Path | None) -> None:
    """Fit P_c's H_m form, bandwidth, L_sat and weights to known events by spatial block
    cross-validation, and a calibrated probability; report nested held-out skill beside the
    nearest-record baseline; write FITTED.toml (run it like any config)."""
    from ..calibrate import calibrate as calibrate_config

    err.print(f"calibrate {escape(str(config))} → {escape(str(write))}", soft_wrap=True)
    r = calibrate_config(config, write, events=events_path, outcome_field=outcome_field, layer=layer,
                         finds_field=finds_field, accidents=accidents, extent=extent, cv_block_km=cv_block_km,
                         bandwidths=bandwidths, l_sats=l_sats, decays=decays, grid_path=grid_path)
    for line in calibration_lines(r):
        err.print(escape(line), soft_wrap=True)


def calibration_lines(r: dict) -> list[str]:
    """What `calibrate` prints: the labels, the choice, held-out skill beside the baseline, targets."""
    m, cv, c = r["model"], r["model"]["cv"], r["counts"]
    f = (lambda x, d=3: "–" if x is None else f"{x:.{d}f}")
    lines = [f"{c['events']} events ({c['positives']} positive, {c['negatives']} negative); "
             f"{len(r['candidates'])} candidates, {cv['folds']} folds of {cv['blocks']} blocks of {cv['block_km']:g} km",
             "chosen: " + (f"kernel density, bandwidth {m['bandwidth_m']:g} m, L_sat {m['L_sat']:g}"
                           if m["h_m_form"] == "kernel" else f"distance decay exp(-d/{m['decay_m']:g} m)"
                           if m["h_m_form"] == "distance" else "H_m as bound")
             + f", weights {m['weights']} (its own CV AUC {cv['chosen_cv_auc']:.3f}: used to choose)",
             f"held-out (nested) AUC {f(cv['heldout_auc'])} pooled, {f(cv['heldout_auc_fold_mean'])} fold mean; "
             f"nearest-record baseline {f(cv['baseline_auc'])} pooled, {f(cv['baseline_auc_fold_mean'])} fold mean",
             f"capture at 10 % of the area: {f(cv['capture_10'], 3)} (baseline {f(cv['baseline_capture_10'], 3)}); "
             f"{r['area']['note']}",
             f"calibrated_probability: held-out ECE {cv['ece']:.3f} (cross-fitted, 10 bins), held-out AUC "
             f"{f(cv.get('heldout_auc_calibrated'))} pooled (each fold's own calibration map: ties)"]
    if not cv["beats_baseline"]:
        lines.append("NOTE: the fitted model does not beat the nearest-record baseline by 0.03 held-out AUC: "
                     "searching near known records first ranks these events as well")
    for t in r["targets"]:
        lines.append(f"target {t['target']}: {f(t['value'])} (needs {f(t['needed'])}) "
                     + ("MET" if t["met"] else "NOT MET"))
    lines.append(f"written: {r['written']}")
    return lines


def entry() -> None:
    """The `minemap` command: `main`, then out without tearing down every module it imported
    (GDAL, PROJ, pandas, dask, matplotlib: ~1 s of each run) once its work is done and flushed.
    Everything it writes is closed and renamed into place before `main` returns."""
    try:
        main()
    except SystemExit as done:
        code = done.code
        if code is not None and not isinstance(code, int):  # a message, as sys.exit would print it
            print(code, file=sys.stderr)
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code or 0)
