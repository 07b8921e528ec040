"""Fingerprints (pipeline/state.py, sources.loaders): a file's hash, the remembered raster checks
keyed by size, mtime, ctime and inode, and per-chunk fingerprints that change only where an input did."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest

from pipeline.engine.plan import load_inputs
from pipeline.sources.loaders import STAT_KEYS, file_sha256, inspect_raster
from pipeline.state import chunk_fingerprints
from pipeline.variables import VARIABLES

from world import CRS, X0, Y1, make_world, write_raster

ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"  # FIPS 180-2's "abc" example


def test_file_sha256_is_the_standard_digest_and_sees_one_byte(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"abc")
    assert file_sha256(f) == ABC_SHA256
    assert file_sha256(f, block=1) == ABC_SHA256  # read in blocks: the same digest
    f.write_bytes(b"abd")
    assert file_sha256(f) != ABC_SHA256


@pytest.fixture
def drone(tmp_path):
    """The world's drone tile (0.6 everywhere, 20 m pixels over the NW 1 km) and what inspects it."""
    config = make_world(tmp_path / "w")
    cfg_inputs = load_inputs(config)
    spec, grid = cfg_inputs.cfg.spec.inputs["V_i"], cfg_inputs.grid
    path = config.parent / "drone" / "a.tif"

    def inspect(checks):
        problems = []
        f = inspect_raster(path, spec, VARIABLES["V_i"], grid, problems, checks)
        assert problems == []
        return f
    return path, inspect


def test_a_remembered_check_is_used_while_size_times_and_inode_match(drone):
    path, inspect = drone
    checks = {}
    first = inspect(checks)
    remembered = checks[str(path)]
    st = path.stat()
    assert [remembered[k] for k in STAT_KEYS] == [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, 1]
    assert first.sha256 == remembered["sha256"] == file_sha256(path)
    assert remembered["min"] == remembered["max"] == pytest.approx(0.6)
    # unchanged file: the file is not read and hashed again (a planted hash and range are taken as they are)
    checks[str(path)] = {**remembered, "sha256": "planted", "min": 0.25, "max": 0.5}
    assert inspect(checks).sha256 == "planted"


def test_a_rewrite_with_the_old_size_and_mtime_is_still_seen(drone):
    """Same bytes count, mtime set back with os.utime: the change time moves, so the file is read again."""
    path, inspect = drone
    checks = {}
    inspect(checks)
    st = path.stat()
    time.sleep(0.05)  # past the filesystem's timestamp granularity, so the change time differs
    write_raster(path, np.full((50, 50), 0.3, np.float32), X0, Y1, 20.0, CRS, nodata=-1.0,
                 tags={"TIFFTAG_DATETIME": "2024:05:01 10:00:00"})
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    checks[str(path)] = {**checks[str(path)], "sha256": "planted"}
    again = inspect(checks)
    assert again.sha256 == file_sha256(path) != "planted"
    assert checks[str(path)]["max"] == pytest.approx(0.3)  # the range was read again too


def test_a_copy_moved_into_place_is_another_inode(drone):
    path, inspect = drone
    checks = {}
    inspect(checks)
    copy = path.with_name("copy.tif")
    shutil.copy2(path, copy)  # same bytes, same mtime
    os.replace(copy, path)
    checks[str(path)] = {**checks[str(path)], "sha256": "planted"}
    assert inspect(checks).sha256 == file_sha256(path)


def test_chunk_fingerprints_change_only_where_an_input_changed(tmp_path):
    """The world at 10 m: 2 × 2 chunks of 512 cells; the drone tile lies in the NW chunk only."""
    config = make_world(tmp_path / "w")
    grid_file = config.parent / "grid.toml"
    grid_file.write_text(grid_file.read_text().replace("resolution = 100.0", "resolution = 10.0"))

    def fingerprints():
        inputs = load_inputs(config)
        return chunk_fingerprints(inputs, ["contamination_probability"])

    before = fingerprints()
    assert sorted(before) == ["0,0", "0,1", "1,0", "1,1"] and len(set(before.values())) == 4
    assert fingerprints() == before  # nothing changed: the same fingerprints (a no-op update)
    write_raster(config.parent / "drone" / "a.tif", np.full((50, 50), 0.3, np.float32), X0, Y1, 20.0, CRS,
                 nodata=-1.0, tags={"TIFFTAG_DATETIME": "2024:05:01 10:00:00"})
    after = fingerprints()
    assert [k for k in before if after[k] != before[k]] == ["0,0"]
    config.write_text(config.read_text().replace("L_sat = 50.0", "L_sat = 40.0"))  # a product setting: everywhere
    assert all(v != after[k] for k, v in fingerprints().items())
