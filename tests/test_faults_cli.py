"""Fault matrix, families "CLI, signals, disk, outputs" (issue #11): each case ends in a clean
refusal (documented exit code, file and problem named, previous OUT byte-identical, no staging
left, lock free) or, for inputs that are fine but unusual, in right outputs."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import rasterio
from shapely.geometry import box

from conftest import REPO
from faults import assert_refused, no_leftovers, run_cli, snapshot
from made import made_products
from world import CRS, X0, X1, Y0, Y1, cell_box, make_world, write_gpkg, write_raster


@pytest.fixture
def published(world: Path) -> Path:
    """The tiny world's outputs after a successful run: what a failing command must leave alone."""
    out = world.parent / "out"
    result = run_cli("run", world, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    return out


def constant_config(root: Path, **values: float) -> Path:
    """The tiny world with every variable a constant (a uniform product everywhere); P_c's layers
    say `evidence = true`, else no cell would be assessed (issue #20: a constant is a filler)."""
    config = make_world(root, drone=False)
    values = {"L": 10, "S_t": 0.5, "V_i": 0.5, "D": 0.5, "C": 20, "R": 0.5, "A_c": 0.002, "B_r": 0.5, "T_s": 1,
              "E_f": 0.5, "D_i": 0.8, **values}
    config.write_text('grid = "grid.toml"\n' + "".join(
        f'[inputs.{v}]\nkind = "constant"\nvalue = {x}\n' + ("evidence = true\n" if v in ("L", "S_t", "V_i") else "")
        for v, x in values.items()))
    return config


def add_drone(config: Path) -> Path:
    """A new drone flight over the south-east kilometre: a change for `update`."""
    return write_raster(config.parent / "drone" / "b.tif", np.full((50, 50), 0.3, np.float32), X1 - 1000, Y0 + 1000,
                        20.0, CRS, nodata=-1.0, tags={"TIFFTAG_DATETIME": "2024:06:01 10:00:00"})


# ---- worker processes ----------------------------------------------------------------------

def test_a_worker_process_killed_mid_run_is_exit_71_and_out_untouched(tmp_path, monkeypatch):
    """The system killing a worker process (most often the kernel, for memory) as the chunks
    start: exit 71 naming OUT and the likely cause, nothing published (OUT byte-identical), no
    staging left, the lock free; not "unexpected failure (a bug)" with a traceback."""
    from pipeline.writers import chunks

    world = make_world(tmp_path / "world")
    grid = world.parent / "grid.toml"  # 10 m cells: 1000 × 1000 in four chunks, for two worker processes
    grid.write_text(grid.read_text().replace("resolution = 100.0", "resolution = 10"))
    published = tmp_path / "out"
    assert run_cli("run", world, "--out", published, "--quiet").exit_code == 0
    real_executor, killed = chunks._executor, []

    def kill_a_worker_first(*args):
        pool, get, in_flight = real_executor(*args)
        pid = pool.submit(os.getpid).result()  # a worker's process id, if the chunks go to processes
        if pid != os.getpid():
            os.kill(pid, signal.SIGKILL)  # as the out-of-memory killer does
            killed.append(pid)
        return pool, get, in_flight

    monkeypatch.setattr(chunks, "PROCESS_MIN_CELLS", 0)
    monkeypatch.setattr(chunks, "spawn_is_harmless", lambda: True)  # pytest's main is safe to re-run
    monkeypatch.setattr(chunks, "_executor", kill_a_worker_first)
    assert_refused(["run", world, "--out", published, "--workers", "2"], published, 71,
                   "a worker process stopped", str(published), "--workers 1")
    assert len(killed) == 1  # the chunks did go to worker processes


# ---- outputs -------------------------------------------------------------------------------

def test_valid_percent_is_the_share_of_the_grid_with_a_value(world, published):
    """CSC has values on the two cleared cells only (cell (10, 10) and half of (10, 20)) of the
    100 × 100 grid: 2 / 10 000 = 0.02 %; P_c covers every cell: 100 %."""
    record = json.loads((published / "run.json").read_text())
    assert record["products"]["clearance_sustainability"]["valid_cells"] == 2
    assert record["products"]["clearance_sustainability"]["valid_percent"] == pytest.approx(0.02)
    assert record["products"]["contamination_probability"]["valid_percent"] == pytest.approx(100.0)
    with rasterio.open(published / "clearance_sustainability.tif") as ds:
        assert float(ds.tags(1)["STATISTICS_VALID_PERCENT"]) == pytest.approx(0.02)
    with rasterio.open(published / "contamination_probability.tif") as ds:
        assert float(ds.tags(1)["STATISTICS_VALID_PERCENT"]) == pytest.approx(100.0)
    item = json.loads((published / "item.json").read_text())
    stats = item["assets"]["clearance_sustainability"]["raster:bands"][0]["statistics"]
    assert stats["valid_percent"] == pytest.approx(0.02)


def test_valid_percent_counts_cells_outside_the_region(tmp_path):
    """An L-shaped region fills 3/4 of its box (the grid): P_c has a value on 75 % of the cells."""
    config = constant_config(tmp_path / "w")
    # columns 0–49 everywhere plus columns 50–99 in rows 0–49: 7 500 of 10 000 cells
    write_gpkg(config.parent / "region.gpkg", [{"name": "L", "geometry": box(X0, Y0, X0 + 5000, Y1).union(
        box(X0 + 5000, Y1 - 5000, X0 + 10_000, Y1))}])
    out = tmp_path / "out"
    result = run_cli("run", config, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    with rasterio.open(out / "contamination_probability.tif") as ds:
        assert ds.shape == (100, 100)
        assert float(ds.tags(1)["STATISTICS_VALID_PERCENT"]) == pytest.approx(75.0)


def test_geopackages_are_version_1_2(tmp_path):
    """GDAL < 3.7 (QGIS 3.22 on Debian 12) warns on opening GeoPackage 1.4; 1.2 it reads quietly."""
    config = make_world(tmp_path / "w")
    config.write_text(config.read_text() + '[districts]\npath = "region.gpkg"\nname_field = "name"\n')
    out = tmp_path / "out"
    result = run_cli("run", config, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    for name in ("districts.gpkg", "priority_zones.gpkg"):
        with sqlite3.connect(out / name) as db:
            assert db.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47  # "GPKG"
            assert db.execute("PRAGMA user_version").fetchone()[0] == 10200, name


@pytest.mark.parametrize("one_cell", [False, True])
def test_uniform_products_are_drawn(tmp_path, one_cell):
    """Constant inputs make every product one value (min = max); on a one-cell region too. Each
    is mapped on its fixed colour range (never stretched to the data, which would be empty) and
    every PNG is written."""
    config = constant_config(tmp_path / "w")
    if one_cell:
        write_gpkg(config.parent / "region.gpkg", [{"name": "one", "geometry": cell_box(50, 50).buffer(-10)}])
    out = tmp_path / "out"
    result = run_cli("run", config, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    record = json.loads((out / "run.json").read_text())
    assert record["products"]["recovery_rate"]["min"] == record["products"]["recovery_rate"]["max"]
    assert record["grid"]["shape"] == ([1, 1] if one_cell else [100, 100])
    for name in made_products(out):
        assert (out / f"{name}.png").stat().st_size > 0, name
    # R_e = A_c·B_r / (T_s·P_c) = 0.002 · 0.5 / (1 · 0.4) = 0.0025 everywhere, drawn on R_e's fixed 0–5 range
    assert record["products"]["recovery_rate"]["min"] == pytest.approx(0.0025)
    style = (out / "recovery_rate.qml").read_text()
    assert 'classificationMin="0.0"' in style and 'classificationMax="5.0"' in style


def test_product_with_no_valid_cell_is_drawn(tmp_path):
    """T_s = 0 leaves R_e no valid cell, C = 0 leaves CSC none: still mapped, exit 0."""
    config = constant_config(tmp_path / "w", T_s=0, C=0, A_c=0)
    out = tmp_path / "out"
    result = run_cli("run", config, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    record = json.loads((out / "run.json").read_text())
    assert record["products"]["recovery_rate"]["valid_cells"] == 0
    assert record["products"]["clearance_sustainability"]["valid_cells"] == 0
    for name in made_products(out):
        assert (out / f"{name}.png").stat().st_size > 0, name


# ---- huge grids (item 7) ----------------------------------------------------------------------

def one_line(output: str, needle: str) -> str:
    """The one output line holding `needle` (lines are never wrapped outside a terminal)."""
    lines = [line for line in output.splitlines() if needle in line]
    assert len(lines) == 1, output
    return lines[0]


def test_grid_above_max_cells_is_refused_with_the_figures(world, published):
    out = assert_refused(["run", world, "--out", published, "--max-cells", "5000"], published, 2,
                         "grid.toml", "grid too large")
    line = one_line(out, "grid too large")
    first, *rest = out.strip().splitlines()  # what is run (the grid is read), then one message; no progress bar
    assert first.startswith(f"run {world}: grid square") and rest == [line]
    # 100 × 100 cells; staging: 2 × 10 000 cells × (4 float32 + 2 uint8 bytes) × 4/3 + 2 MB deliverables
    for figure in ("10,000 cells", "about 2.3 MB staged in", "free there", "of memory", "--max-cells 5,000"):
        assert figure in line, line


def test_update_shares_max_cells(world, published):
    assert_refused(["update", world, "--out", published, "--max-cells", "9999"], published, 2,
                   "grid.toml", "10,000 cells", "--max-cells 9,999")


@pytest.mark.parametrize("command", ["run", "validate"])
def test_grid_at_1_m_over_the_sample_region_is_refused_before_reading_inputs(tmp_path, monkeypatch, command):
    """17.7 G cells: refused from the grid alone; no input layer is read, no chunk job built
    (`validate` said "ok" after a minute of reading inputs: now it refuses as `run` does)."""
    import pipeline.engine.plan

    def no_layers(*args, **kwargs):
        raise AssertionError("an input layer was read for a grid that must be refused")

    monkeypatch.setattr(pipeline.engine.plan, "load_layer", no_layers)
    grid = tmp_path / "karabakh-1m.toml"
    grid.write_text((REPO / "grids" / "karabakh-100m.toml").read_text()
                    .replace("resolution = 100", "resolution = 1")
                    .replace('"../sample_data/districts.gpkg"', f'"{REPO / "sample_data" / "districts.gpkg"}"'))
    out = tmp_path / "out"
    where = ["--out", out] if command == "run" else []
    # the sample's 8 products (6 float32, 2 uint8: 26 bytes a cell), staged compressed (worst case: not at all)
    # plus one float32 product twice while its file is assembled: 17.68 G cells × (26 + 4) × 4/3 = 707.2 GB
    text = assert_refused([command, REPO / "sample_data" / "minemap.toml", "--grid", grid, *where], None, 2,
                          "karabakh-1m.toml", "grid too large", "17,680,258,192 cells", "707.2 GB staged")
    assert not out.exists()  # nothing created
    assert "--max-cells 2,000,000,000" in one_line(text, "grid too large")


def test_staging_larger_than_the_free_disk_is_refused(world, published, monkeypatch):
    import pipeline.guard

    monkeypatch.setattr(pipeline.guard, "free_bytes", lambda folder: 1_000_000)
    assert_refused(["run", world, "--out", published], published, 2,
                   "grid.toml", "not enough disk for this grid", "about 2.3 MB staged", "1.0 MB free there")


def test_update_checks_the_disk_only_for_a_full_run(world, published, monkeypatch):
    """Nothing to do needs no disk (a cron update on a nearly full disk stays "up to date");
    a first update (a full run) into an empty folder is refused like `run`."""
    monkeypatch.setattr("pipeline.guard.free_bytes", lambda folder: 1_000_000)
    result = run_cli("update", world, "--out", published)
    assert result.exit_code == 0 and "up to date" in result.stderr, result.output
    fresh = world.parent / "fresh"
    assert_refused(["update", world, "--out", fresh], fresh, 2, "not enough disk for this grid", "1.0 MB free there")
    assert not (fresh / "run.json").exists()


# ---- disk full while writing (item 8) ---------------------------------------------------------

def _failing(err_no: int):
    def fail(*args, **kwargs):
        raise OSError(err_no, os.strerror(err_no))
    return fail


@pytest.mark.parametrize("where, err_no", [("pipeline.writers.cog.TileFile.write", errno.ENOSPC),
                                           ("pipeline.writers.geotiff.assemble", errno.EDQUOT),
                                           ("pipeline.engine.deliver.write_maps_and_report", errno.EROFS),
                                           ("pipeline.engine.deliver.write_summaries", errno.EIO)])
def test_a_write_the_disk_refuses_exits_74_and_keeps_the_previous_outputs(world, published, monkeypatch,
                                                                           where, err_no):
    if "write_summaries" in where:  # only written with districts: add them (and publish again)
        world.write_text(world.read_text() + '[districts]\npath = "region.gpkg"\nname_field = "name"\n')
        assert run_cli("run", world, "--out", published, "--quiet").exit_code == 0
    monkeypatch.setattr(where, _failing(err_no))
    text = assert_refused(["run", world, "--out", published, "--quiet"], published, 74,
                          str(published), os.strerror(err_no), "needs about 2.3 MB", "previous outputs kept")
    assert one_line(text, "could not write the outputs")


def test_update_reports_a_full_disk_as_json(world, published, monkeypatch):
    add_drone(world)  # something to update
    monkeypatch.setattr("pipeline.writers.cog.TileFile.write", _failing(errno.ENOSPC))
    monkeypatch.setattr("pipeline.writers.geotiff.shutil.copyfile", _failing(errno.ENOSPC))  # the patch path
    before = snapshot(published)
    result = run_cli("update", world, "--out", published, "--json", "--quiet")
    assert result.exit_code == 74, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "error" and report["exit_code"] == 74
    assert report["problems"][0]["where"] == str(published)
    assert "No space left on device" in report["problems"][0]["what"]
    assert snapshot(published) == before and no_leftovers(published)


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs (root only); unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_a_really_full_disk(world, small_disk, monkeypatch):
    """A real filesystem filling up during the run (another program wrote to it after the check)."""
    out = small_disk / "out"
    assert run_cli("run", world, "--out", out, "--quiet").exit_code == 0
    free = shutil.disk_usage(small_disk).free
    (small_disk / "filler").write_bytes(b"\0" * (free - 200_000))  # 200 kB left: less than the staging
    monkeypatch.setattr("pipeline.engine.plan.check", lambda *args, **kwargs: None)  # filled after the check
    assert_refused(["run", world, "--out", out, "--quiet"], out, 74, str(out), "could not write the outputs",
                   "No space left on device", "previous outputs kept")


# ---- Ctrl-C (item 10) -------------------------------------------------------------------------

def test_ctrl_c_exits_130_and_keeps_the_previous_outputs(world, published):
    """A real process interrupted while it computes a 10 m grid (4 chunks, slowed down)."""
    fine = world.parent / "grid10.toml"
    fine.write_text((world.parent / "grid.toml").read_text().replace("resolution = 100.0", "resolution = 10.0"))
    before = snapshot(published)
    env = {**os.environ, "MINEMAP_TEST_BATCH_DELAY": "0.5"}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "run", str(world), "--grid", str(fine),
                             "--out", str(published), "--quiet"], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while not list(published.glob(".staging-*/chunks")):  # computing has started
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "Aborted" not in stderr
    assert f"interrupted: {published}: previous outputs kept as they were" in stderr
    assert snapshot(published) == before
    assert no_leftovers(published)


def test_ctrl_c_in_update_json(world, published, monkeypatch):
    add_drone(world)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("pipeline.engine.deliver.write_catalogue_item", interrupted)  # Ctrl-C while staging
    before = snapshot(published)
    result = run_cli("update", world, "--out", published, "--json")
    assert result.exit_code == 130, result.output
    assert json.loads(result.stdout) == {"status": "interrupted", "exit_code": 130, "problems": [
        {"where": str(published), "what": "previous outputs kept as they were"}]}
    assert snapshot(published) == before and no_leftovers(published)


def test_ctrl_c_before_a_first_run_wrote_anything(world, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("pipeline.engine.plan.load_layer", interrupted)  # while reading the inputs
    out = tmp_path / "out"
    assert_refused(["run", world, "--out", out], out, 130, f"interrupted: {out}: nothing written")
    assert not out.exists()


def test_ctrl_c_during_the_renames_waits_for_them():
    """SIGINT inside `deferred_interrupt` is held until the block is done, then raised."""
    from pipeline.guard import deferred_interrupt

    steps = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)  # a signal handler runs between bytecodes: it has run by now
            steps.append("renamed")
    assert steps == ["renamed"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


# ---- messages, --json, --quiet (items 15, 16) -------------------------------------------------

def test_brackets_in_problems_are_printed_verbatim(world, published, monkeypatch):
    from pipeline.errors import InputError, Problem

    def bad(*args, **kwargs):
        raise InputError(Problem(f"{world}: [inputs.L]", "scale must be [lo, hi] with lo < hi"))

    monkeypatch.setattr("pipeline.runner.load_inputs", bad)
    assert_refused(["run", world, "--out", published], published, 2,
                   f"{world}: [inputs.L]: scale must be [lo, hi] with lo < hi")


def test_missing_binding_hint_keeps_its_brackets(world, published):
    block = '[inputs.T_s]\nkind = "polygons"\npath = "soil.gpkg"\nclass_field = "soil_class"\ntable = "soil.csv"\n'
    assert block in world.read_text()
    world.write_text(world.read_text().replace(block, ""))
    assert_refused(["run", world, "--out", published], published, 2, "config.toml: inputs",
                   "product recovery_rate needs T_s: bind them under [inputs.NAME] or disable it with "
                   "[products.recovery_rate] enabled = false")


def test_validate_json_prints_the_problems_on_stdout(world):
    ok = run_cli("validate", world, "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["status"] == "ok"
    (world.parent / "soil.csv").unlink()
    result = run_cli("validate", world, "--json")
    assert result.exit_code == 2, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "error" and report["exit_code"] == 2
    assert any(p["where"].endswith("soil.csv") for p in report["problems"]), report
    assert "soil.csv" in result.stderr  # the human lines stay on stderr


def test_update_json_on_a_bad_config(world, published):
    world.write_text(world.read_text() + "\nbogus_key = 1\n")
    before = snapshot(published)
    result = run_cli("update", world, "--out", published, "--json")
    assert result.exit_code == 2
    report = json.loads(result.stdout)
    assert report["exit_code"] == 2 and "bogus_key" in json.dumps(report["problems"])
    assert str(world) in report["problems"][0]["where"]
    assert snapshot(published) == before and no_leftovers(published)


def test_update_json_when_the_folder_is_locked(world, published):
    from pipeline.outdir import output_lock

    with output_lock(published):
        result = run_cli("update", world, "--out", published, "--json")
    assert result.exit_code == 75
    report = json.loads(result.stdout)
    assert report["exit_code"] == 75 and report["problems"][0]["where"] == str(published)
    assert "another minemap run or update is writing this folder" in report["problems"][0]["what"]


def test_update_json_on_a_bug_still_prints_one_object(world, published, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("pipeline.runner.chunk_fingerprints", broken)
    result = run_cli("update", world, "--out", published, "--json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["exit_code"] == 1 and "RuntimeError: boom" in report["problems"][0]["what"]
    assert no_leftovers(published)


def test_lines_are_never_wrapped(world, tmp_path):
    out = tmp_path / ("a-rather-long-folder-name-" * 4) / "out"  # every product line > 80 characters
    result = run_cli("run", world, "--out", out)
    assert result.exit_code == 0, result.output
    line = one_line(result.stderr, "clearance_sustainability.tif")
    assert len(line) > 120 and line.strip().endswith(")")


def test_quiet_prints_only_warnings_and_errors(world, tmp_path):
    out = tmp_path / "out"
    # the tiny world's mine records have no extent: the one warning is all --quiet prints
    warning = 'warning: {}: inputs.L: no `extent`: absence of records will be read as absence of mines'.format(world)
    result = run_cli("run", world, "--out", out, "--quiet")
    assert result.exit_code == 0 and result.output.splitlines() == [warning + ' (set extent = "FILE", the surveyed area)']
    result = run_cli("update", world, "--out", out, "--quiet")
    assert result.exit_code == 0 and [line[:len(warning)] for line in result.output.splitlines()] == [warning]
    assert "up to date" in run_cli("update", world, "--out", out).stderr  # without --quiet: the summary


def test_every_exit_code_is_documented():
    """The README's table and `minemap --help` list the same codes, including every error class's."""
    import re

    import pipeline.cli
    from pipeline.errors import MinemapError

    def codes(text: str) -> set[int]:
        return {int(c) for c in re.findall(r"(?:^|[;:]\s)(\d+) ", " ".join(text.split()))}

    readme = (REPO / "README.md").read_text()
    table = readme[readme.index("Exit codes: 0"):].split("\n\n")[0]
    used = {0, 1, pipeline.cli.REJECTED_EXIT, pipeline.cli.INTERRUPTED_EXIT}

    def subclasses(cls):
        return {cls} | {s for c in cls.__subclasses__() for s in subclasses(c)}

    import pipeline.guard  # noqa: F401  (defines DiskError)
    used |= {c.exit_code for c in subclasses(MinemapError)}
    assert used == {0, 1, 2, 3, 66, 69, 71, 74, 75, 77, 130}  # 66, 69, 77: an object store's 404, silence, 403
    assert codes(table) == used, table
    assert codes(pipeline.cli.EXIT_CODES) == used, pipeline.cli.EXIT_CODES


def test_what_counts_as_the_disk_refusing_a_write(tmp_path):
    """GDAL's errors carry no errno: its words decide; other errors stay what they are (a bug: exit 1)."""
    from rasterio._err import CPLE_AppDefinedError
    from rasterio.errors import RasterioIOError

    from pipeline.guard import disk_failure

    def chained(outer: Exception, inner: Exception) -> Exception:
        try:
            try:
                raise inner
            except Exception as e:
                raise outer from e
        except Exception as e:
            return e

    gdal = chained(RasterioIOError("Write failed. See previous exception for details."),
                   CPLE_AppDefinedError(1, 1, "TIFFAppendToStrip:Write error at scanline 0"))
    assert disk_failure(gdal, tmp_path)  # (the wording depends on the free space left)
    assert disk_failure(OSError(errno.ENOSPC, "No space left on device"), tmp_path) == "No space left on device"
    assert disk_failure(OSError(errno.EROFS, "x", str(tmp_path / "a.tif")), tmp_path) == "x"
    assert disk_failure(OSError(errno.EIO, "x", "/elsewhere/input.tif"), tmp_path) is None  # an input, not OUT
    assert disk_failure(OSError(errno.EACCES, "Permission denied"), tmp_path) is None
    assert disk_failure(RasterioIOError("'a.tif' not recognized as a supported file format."), tmp_path) is None
    assert disk_failure(ValueError("boom"), tmp_path) is None


def test_a_geopackage_error_means_a_full_disk_only_when_the_disk_is_full(tmp_path, monkeypatch):
    """SQLite under a GeoPackage reports a full disk as anything ("no such table"): with under
    1 MB free it is the disk (exit 74); with room left it stays the error it is."""
    from pyogrio.errors import FeatureError

    from pipeline import guard

    e = FeatureError("sqlite3_exec(INSERT INTO gpkg_contents ...) failed: no such table: gpkg_contents")
    monkeypatch.setattr(guard, "free_bytes", lambda folder: 200_000)
    assert guard.disk_failure(e, tmp_path) == os.strerror(errno.ENOSPC)
    monkeypatch.setattr(guard, "free_bytes", lambda folder: 10**9)
    assert guard.disk_failure(e, tmp_path) is None
