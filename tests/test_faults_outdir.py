"""Fault matrix: the output folder, its state files, concurrency and kills (#11 items 1, 4, 5, 6).

Each case either refuses cleanly (exit code, message naming the file and the problem, OUT
byte-identical, no staging folder, lock free) or, where minemap can recover, recovers and ends
with the products a fresh run on a clean folder makes, cell for cell.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import Polygon, box

from conftest import REPO
from faults import assert_refused, no_leftovers, run_cli, snapshot
from made import made_products
from pipeline.outdir import JOURNAL, KILL_HOOK, output_lock
from pipeline.partsfile import decode_parts, encode_parts
from pipeline.sources.loaders import file_sha256
from pipeline.summaries import chunk_part
from world import CRS, X0, X1, Y0, Y1, write_gpkg, write_raster

STATE = Path(".minemap") / "state.json"


@pytest.fixture
def out(world: Path) -> Path:
    """A successful run's output folder on the tiny world."""
    folder = world.parent / "out"
    ok(run_cli("run", world, "--out", folder, "--quiet"))
    return folder


def ok(result, code: int = 0):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output, result.output
    return result


def update_json(config: Path, out: Path, *extra) -> tuple[dict, str]:
    """`minemap update --json`: its summary and everything it printed."""
    result = ok(run_cli("update", config, "--out", out, "--json", *extra))
    return json.loads(result.stdout.strip().splitlines()[-1]), result.output


def assert_same_products(out: Path, fresh: Path) -> None:
    """Cell for cell, georeferencing and statistics: the products of `out` are those of `fresh`
    (every product the run makes, from the registry)."""
    names = made_products(fresh)
    assert names == made_products(out)
    for name in names:
        with rasterio.open(out / f"{name}.tif") as a, rasterio.open(fresh / f"{name}.tif") as b:
            assert (a.shape, a.transform, a.crs) == (b.shape, b.transform, b.crs), name
            assert np.array_equal(a.read(1), b.read(1)), name
            assert a.tags(1) == b.tags(1), name
    zones, fresh_zones = (gpd.read_file(d / "priority_zones.gpkg") for d in (out, fresh))
    assert zones.drop(columns="geometry").equals(fresh_zones.drop(columns="geometry"))
    assert zones.geometry.geom_equals(fresh_zones.geometry).all()


def assert_full_run(config: Path, out: Path, tmp_path: Path, reason: str, *printed: str) -> dict:
    """`update` does a full run saying `reason` (and printing each of `printed`), and ends with
    what a fresh run makes, as one consistent set."""
    summary, output = update_json(config, out)
    assert summary["status"] == "full run" and summary["chunks_recomputed"] == summary["chunks_total"]
    assert reason in summary["reason"], summary["reason"]
    for needle in printed:
        assert needle in output.replace("\n", " "), output
    assert_same_products(out, fresh_run(config, tmp_path / "fresh"))
    assert_consistent_set(out)
    return summary


def fresh_run(config: Path, folder: Path, *extra) -> Path:
    ok(run_cli("run", config, "--out", folder, "--quiet", *extra))
    return folder


def assert_consistent_set(out: Path) -> None:
    """Every file run.json lists has the SHA-256 it lists, and all products carry its run's time."""
    record = json.loads((out / "run.json").read_text())
    names = made_products(out)
    assert set(record["files"]) >= {f"{n}.tif" for n in names} | {"item.json", "priority_zones.gpkg"}
    for name, sha in record["files"].items():
        assert file_sha256(out / name) == sha, name
    for name in names:
        with rasterio.open(out / f"{name}.tif") as ds:
            assert ds.tags()["MINEMAP_CREATED_UTC"] == record["created_utc"], name
    assert not (out / ".minemap" / JOURNAL).exists() and no_leftovers(out)


def drone(config: Path, name: str, value: float, col: int = 30) -> Path:
    """A 1 km square drone raster (20 m pixels) over rows 0–9 and cols col…col+9, valued `value`."""
    return write_raster(config.parent / "drone" / name, np.full((50, 50), value, np.float32), X0 + 100 * col, Y1,
                        20.0, CRS, nodata=-1.0, tags={"TIFFTAG_DATETIME": "2025:01:01 00:00:00"})


def pc_at(out: Path, row: int, col: int) -> float:
    with rasterio.open(out / "contamination_probability.tif") as ds:
        return float(ds.read(1)[row, col])


# --- the output path itself --------------------------------------------------------------------

def test_output_path_is_a_file(world):
    target = world.parent / "maps"
    target.write_bytes(b"not a folder")
    output = assert_refused(["run", world, "--out", target, "--quiet"], None, 2, str(target))
    assert "file" in output.lower()
    assert target.read_bytes() == b"not a folder"


def test_output_parent_is_a_file(world):
    parent = world.parent / "shared"
    parent.write_bytes(b"x")
    assert_refused(["run", world, "--out", parent / "maps", "--quiet"], None, 2, str(parent / "maps"),
                   "cannot write the output folder: Not a directory")
    assert parent.read_bytes() == b"x"


def test_output_folder_not_writable(world, tmp_path, monkeypatch):
    import pipeline.guard

    monkeypatch.setattr(pipeline.guard, "free_bytes", lambda folder: 10**12)  # sysfs says 0 free: not the point here
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        target = locked / "maps"
    else:  # root ignores permission bits; sysfs refuses new folders even to root
        target = Path("/sys/minemap-test-out")
    try:
        target.mkdir(parents=True)
    except OSError:
        pass
    else:
        target.rmdir()
        pytest.skip(f"{target} can be created here: no unwritable place to test with")
    assert_refused(["run", world, "--out", target, "--quiet"], None, 2, str(target), "cannot write the output folder")
    assert not target.exists()


# --- concurrency --------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["run", "update"])
def test_lock_held_by_another_writer(world, out, command):
    before = snapshot(out)
    with output_lock(out):
        assert_refused([command, world, "--out", out, "--quiet"], None, 75, str(out),
                       "another minemap run or update is writing this folder", "--wait")
    assert snapshot(out) == before and no_leftovers(out)


def test_wait_waits_for_the_other_writer(world, out):
    """--wait: the second writer waits for the lock instead of failing, then completes."""
    held, release = threading.Event(), threading.Event()

    def other_writer():
        with output_lock(out):
            held.set()
            release.wait(30)

    holder = threading.Thread(target=other_writer)
    holder.start()
    held.wait(30)
    threading.Timer(0.5, release.set).start()  # the other writer finishes while we wait
    try:
        ok(run_cli("run", world, "--out", out, "--quiet", "--wait", "60"))
    finally:
        release.set()
        holder.join()
    assert_consistent_set(out)


# --- state files --------------------------------------------------------------------------------

@pytest.mark.parametrize("damage, needle", [
    (lambda p: p.write_text('{"chunks": {"0,0": '), "unreadable"),  # truncated
    pytest.param(lambda p: p.write_bytes(b"\x00\xff" * 40), "unreadable", marks=pytest.mark.slow),
    (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "chunks": ["0,0"]})), "not a valid state file"),
    pytest.param(lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "version": "0.0.1"})),
                 "written by minemap 0.0.1", marks=pytest.mark.slow),
], ids=["truncated", "binary", "tampered", "other-version"])
def test_unusable_state_means_a_full_run_with_a_warning(world, out, tmp_path, damage, needle):
    damage(out / STATE)
    drone(world, "b.tif", 0.9)  # a change, so a patch would be tried
    assert_full_run(world, out, tmp_path, f"state.json {needle}", f"warning: {out / STATE}: full run: {needle}")
    assert update_json(world, out)[0]["status"] == "up to date"  # the state is good again


def test_truncated_product_then_update_does_a_full_run(world, out, tmp_path):
    product = out / "recovery_rate.tif"
    product.write_bytes(product.read_bytes()[:500])
    # nothing else changed: without the check, "up to date"
    assert_full_run(world, out, tmp_path, "recovery_rate.tif missing or not the size",
                    f"{product}: full run: missing or not the size the last run wrote")


def test_product_rewritten_at_the_same_size_is_not_read_back(world, out, tmp_path):
    """An update reads unchanged chunks back from the products: only if they are the last run's bytes."""
    product = out / "contamination_probability.tif"
    before = product.stat()
    data = bytearray(product.read_bytes())
    data[-1] ^= 0xFF  # same size, other bytes, and the modification time put back
    product.write_bytes(bytes(data))
    os.utime(product, ns=(before.st_atime_ns, before.st_mtime_ns))
    state = json.loads((out / STATE).read_text())
    published = state["published"][product.name]
    assert product.stat().st_size == published["size"] and product.stat().st_mtime_ns == published["stat"][1]
    drone(world, "b.tif", 0.9)
    assert_full_run(world, out, tmp_path, "SHA-256 differs", f"{product}: full run: not the file the last run wrote")


def test_malicious_pickle_in_the_state_folder_is_never_unpickled(world, out, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return open, (str(marker), "w")

    evil = out / ".minemap" / "parts-0123456789abcdef.pkl"
    evil.write_bytes(pickle.dumps(Payload()))
    state = json.loads((out / STATE).read_text())  # the attacker can write the state too
    (out / STATE).write_text(json.dumps({**state, "summary_parts": evil.name,
                                         "summary_parts_sha256": file_sha256(evil)}))
    drone(world, "b.tif", 0.9)
    assert_full_run(world, out, tmp_path, f"{evil.name} unusable summary parts", f"warning: {evil}: full run")
    assert not marker.exists()
    assert not evil.exists()  # replaced by the new run's parts


def test_corrupt_parts_file_means_a_full_run(world, out, tmp_path):
    parts = next((out / ".minemap").glob("parts-*.npz"))
    parts.write_bytes(parts.read_bytes()[:100])
    drone(world, "b.tif", 0.9)
    assert_full_run(world, out, tmp_path, f"{parts.name} unusable summary parts (its SHA-256 is not",
                    f"warning: {parts}: full run: unusable summary parts")


def test_no_pickle_is_kept_in_the_state_folder(out):
    kept = sorted(p.name for p in (out / ".minemap").iterdir())
    assert [n for n in kept if n.startswith("parts-")] == [n for n in kept if n.endswith(".npz")]
    assert len([n for n in kept if n.endswith(".npz")]) == 1
    assert not any(n.endswith(".pkl") for n in kept)


def test_parts_file_keeps_every_value_and_refuses_anything_else():
    """Parts of a 4 × 4 chunk with two zones (classes 3, 4 ≥ zone class 3) survive the file exactly."""
    cls = np.array([[3, 3, 1, 1], [1, 1, 1, 4], [1, 1, 1, 4], [255, 1, 1, 1]], np.uint8)
    p_c = np.where(cls == 255, np.nan, cls / 10).astype(np.float32)
    codes = np.array([[1, 1, 2, 2]] * 4, np.int16)
    part = chunk_part(codes, p_c, cls, names=["P_c", "class"], n_districts=2, n_classes=4, zone_class=3,
                      cell_km2=0.01, chunk=512, block_id=(0, 1))[0, 0]
    assert part["zones"]["n"] == 2 and part["zones"]["stats"]["cells"].tolist() == [2, 2]
    back = decode_parts(encode_parts({"0,1": part, "1,1": {"districts": part["districts"], "zones": None}}))
    assert set(back) == {"0,1", "1,1"} and back["1,1"]["zones"] is None
    got = back["0,1"]
    assert np.array_equal(got["districts"], part["districts"], equal_nan=True)
    assert got["zones"]["wkb"] == part["zones"]["wkb"] and got["zones"]["n"] == 2
    for group in ("stats", "edges"):
        for key, value in part["zones"][group].items():
            assert got["zones"][group][key].dtype == value.dtype, key
            assert np.array_equal(got["zones"][group][key], value, equal_nan=True), key
    # an object array (needs pickle), an unknown entry, a lying WKB length: refused, never loaded
    for arrays in ({"0,0.districts": np.array([{"a": 1}], dtype=object)}, {"0,0.evil": np.zeros(1)},
                   {"0,0.districts": np.zeros((3, 15)), "0,0.zones.n": np.array(1), "0,0.zones.wkb": np.zeros(3, np.uint8),
                    "0,0.zones.wkb_sizes": np.array([9]), **{f"0,0.zones.edges.{side}": np.zeros(4, np.int32)
                                                            for side in ("top", "bottom", "left", "right")}}):
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        with pytest.raises(ValueError, match="allow_pickle|malformed entry|unexpected entry"):
            decode_parts(buffer.getvalue())


def test_staging_folder_left_behind_is_cleaned(world, out):
    left = out / ".staging-killed123"
    (left / "chunks").mkdir(parents=True)
    (left / "contamination_probability.tif").write_bytes(b"half a file")
    before = snapshot(out)
    summary, _ = update_json(world, out)
    assert summary["status"] == "up to date"
    assert not left.exists() and no_leftovers(out)
    assert {k: v for k, v in before.items() if not k.startswith(".staging-")} == snapshot(out)


# --- raster hash cache (item 4) ---------------------------------------------------------------------

def test_rewritten_drone_with_same_size_and_mtime_is_recomputed(world, out, tmp_path):
    path = world.parent / "drone" / "a.tif"
    st = path.stat()
    assert pc_at(out, 0, 0) == pytest.approx((0 + 0.8 + 0.6) / 3)  # H_m 0, sand S_t 0.8, drone 0.6
    write_raster(path, np.full((50, 50), 0.3, np.float32), X0, Y1, 20.0, CRS, nodata=-1.0,
                 tags={"TIFFTAG_DATETIME": "2024:05:01 10:00:00"})
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    summary, _ = update_json(world, out)
    assert summary["status"] == "updated" and summary["changed"] == [str(path)]
    assert pc_at(out, 0, 0) == pytest.approx((0 + 0.8 + 0.3) / 3)
    assert_same_products(out, fresh_run(world, tmp_path / "fresh"))
    assert_consistent_set(out)


# --- grid changes (item 1) ----------------------------------------------------------------------

def _set(grid: Path, old: str, new: str) -> None:
    text = grid.read_text()
    assert old in text
    grid.write_text(text.replace(old, new))


GRID_CHANGES = {
    "coarser": (lambda g: _set(g, "resolution = 100.0", "resolution = 200.0"), "resolution 100 → 200 m", (50, 50)),
    "finer": (lambda g: _set(g, "resolution = 100.0", "resolution = 50.0"), "resolution 100 → 50 m", (200, 200)),
    "origin": (lambda g: _set(g, "chunk = 512", "chunk = 512\norigin = [50.0, 0.0]"), "origin (500000, 4410000) → "
               "(499950, 4410000)", (100, 101)),
    "region": (lambda g: _set(g, "name = 'square'", "name = 'north'"), "region boundary", (60, 100)),
}


@pytest.mark.parametrize("change", [pytest.param(c, marks=pytest.mark.slow) if c in ("coarser", "region") else c
                                    for c in GRID_CHANGES])  # two variants in `make test`, all in `make test-all`
def test_update_after_a_grid_change_is_a_full_run_on_the_new_grid(world, tmp_path, change):
    edit, words, shape = GRID_CHANGES[change]
    write_gpkg(world.parent / "region.gpkg", [{"name": "square", "geometry": box(X0, Y0, X1, Y1)},
                                              {"name": "north", "geometry": box(X0, Y0 + 4000, X1, Y1)}])
    _set(world.parent / "grid.toml", 'path = "region.gpkg"', 'path = "region.gpkg"\nwhere = "name = \'square\'"')
    out = fresh_run(world, tmp_path / "out")
    edit(world.parent / "grid.toml")
    summary = assert_full_run(world, out, tmp_path, words)
    assert summary["reason"].startswith("grid changed (")
    with rasterio.open(out / "risk_class.tif") as ds:  # and the same transform as the fresh run's
        assert ds.shape == shape


def test_another_grid_file_is_a_full_run(world, out, tmp_path):
    other = world.parent / "grid-1024.toml"
    other.write_text((world.parent / "grid.toml").read_text().replace("chunk = 512", "chunk = 1024"))
    result = ok(run_cli("update", world, "--out", out, "--grid", other))
    assert "full run" in result.output and "grid changed (chunk 512 → 1024 cells)" in result.output
    assert_same_products(out, fresh_run(world, tmp_path / "fresh", "--grid", other))
    assert_consistent_set(out)


@pytest.mark.slow
def test_region_with_the_same_extent_is_still_a_grid_change(world, out, tmp_path):
    """A hole in the region changes no transform or shape, only which cells are inside."""
    hole = Polygon([(X0, Y0), (X1, Y0), (X1, Y1), (X0, Y1)], [[(X0 + 2000, Y0 + 2000), (X0 + 4000, Y0 + 2000),
                                                                 (X0 + 4000, Y0 + 4000), (X0 + 2000, Y0 + 4000)]])
    write_gpkg(world.parent / "region.gpkg", [{"name": "square", "geometry": hole}])
    assert assert_full_run(world, out, tmp_path, "region")["reason"] == "grid changed (region boundary)"
    assert pc_at(out, 70, 30) == -9999.0  # in the hole: outside the region now


# --- kills during a publish (item 5) --------------------------------------------------------------

def killed_update(config: Path, out: Path, renames: int) -> None:
    """`minemap update` in a subprocess, SIGKILLed right after `renames` files were moved into OUT."""
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "update", str(config), "--out", str(out),
                           "--quiet", "--workers", "1"], env={**os.environ, KILL_HOOK: str(renames)}, cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert (out / ".minemap" / JOURNAL).exists()


@pytest.mark.parametrize("command", [pytest.param("update", marks=pytest.mark.slow), "run"])
def test_publish_killed_between_renames_is_completed_by_the_next_command(world, out, tmp_path, command):
    old = json.loads((out / "run.json").read_text())["files"]
    drone(world, "b.tif", 0.9)
    killed_update(world, out, 3)
    moved = [n for n, sha in old.items() if file_sha256(out / n) != sha]
    assert moved and "risk_class.tif" not in moved  # a mixed set: new P_c beside the old classes
    quiet = ["--quiet"] if command == "run" else []  # update's summary line is not printed with --quiet
    result = ok(run_cli(command, world, "--out", out, *quiet))
    assert "an interrupted publish was completed" in result.output
    assert_consistent_set(out)
    assert pc_at(out, 0, 35) == pytest.approx((0 + 0.8 + 0.9) / 3)
    assert_same_products(out, fresh_run(world, tmp_path / "fresh"))
    if command == "update":  # the interrupted update's state was written: nothing left to do
        assert "up to date" in result.output


def test_publish_killed_after_every_rename_writes_the_state_on_completion(world, out):
    # the published files and run.json, and the update's change_since_previous .tif, .qml and .png
    n = len(json.loads((out / "run.json").read_text())["files"]) + 1 + 3
    drone(world, "b.tif", 0.9)
    killed_update(world, out, n)  # all moved, the state not yet written
    summary, output = update_json(world, out)
    assert f"an interrupted publish was completed (0 of {n} files were still staged" in output.replace("\n", " ")
    assert summary["status"] == "up to date"
    assert_consistent_set(out)


def test_publish_that_cannot_be_completed_is_rolled_back(world, out, tmp_path):
    before = {k: v for k, v in snapshot(out).items() if not k.startswith(".minemap")}
    drone(world, "b.tif", 0.9)
    killed_update(world, out, 3)
    journal = json.loads((out / ".minemap" / JOURNAL).read_text())
    (out / journal["staging"] / "risk_class.tif").unlink()  # a staged file lost: no way forward
    (world.parent / "drone" / "b.tif").unlink()  # and the inputs are as they were
    summary, output = update_json(world, out)
    assert "could not be completed (risk_class.tif missing or changed" in output.replace("\n", " ")
    assert "the previous files were put back" in output.replace("\n", " ")
    assert summary["status"] == "up to date"  # the old state describes the restored set
    assert {k: v for k, v in snapshot(out).items() if not k.startswith(".minemap")} == before
    assert_consistent_set(out)


def test_publish_neither_completable_nor_reversible_discards_the_state(world, out, tmp_path):
    """No hard links where OUT lives (no backups) and a staged file lost: the set is rebuilt afresh."""
    drone(world, "b.tif", 0.9)
    killed_update(world, out, 3)
    path = out / ".minemap" / JOURNAL
    journal = {**json.loads(path.read_text()), "previous": None}
    path.write_text(json.dumps(journal))
    (out / journal["staging"] / "risk_class.tif").unlink()
    assert_full_run(world, out, tmp_path, "no previous run", "could neither be completed (risk_class.tif missing")


@pytest.mark.parametrize("journal", [b"{not json", json.dumps({
    "staging": "../../elsewhere", "files": {"../../etc/passwd": "0" * 64}, "previous": None, "state": {}}).encode()],
    ids=["corrupt", "path-escape"])
def test_unusable_journal_is_removed_with_the_state(world, out, tmp_path, journal):
    (out / ".minemap" / JOURNAL).write_bytes(journal)
    assert_full_run(world, out, tmp_path, "no previous run", f"{out / '.minemap' / JOURNAL}: unreadable publish journal")
