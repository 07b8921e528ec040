"""OUT in object storage (issue #23 §2), against a local S3 server (tests/s3server.py): a run's set
under its own prefix, made current by the pointer files written last; equal, cell for cell, to a
local run; a run stopped part-way leaves the previous set current; `update` and the clean-up."""

import hashlib
import json
import os

import numpy as np
import pytest
import rasterio

from conftest import engine_only
from made import made_products
from world import CRS, X0, Y1, make_world, write_raster

from pipeline import store
from pipeline.errors import LockedError
from pipeline.runner import run, update


@pytest.fixture
def s3(local_s3, monkeypatch):
    """The local server, its AWS environment in this process (boto3 and GDAL read it from there)."""
    for k, v in local_s3.env.items():
        monkeypatch.setenv(k, v)
    store.client.cache_clear()  # one client a process: this test's server, not the last one's
    yield local_s3
    store.client.cache_clear()


def fine(config):
    """The test world at 10 m: 1000 × 1000 cells in 2 × 2 chunks of 512, deliverables off."""
    grid = config.parent / "grid.toml"
    grid.write_text(grid.read_text().replace("resolution = 100.0", "resolution = 10.0"))
    return engine_only(config)


def get(s3, key: str) -> bytes:
    return s3.client().get_object(Bucket=s3.bucket, Key=key)["Body"].read()


def pointer(s3, prefix: str = "out") -> dict:
    return json.loads(get(s3, f"{prefix}/run.json"))


def same_products(local, url: str, names: list[str]) -> None:
    for name in names:
        with rasterio.open(local / f"{name}.tif") as a, rasterio.open(f"{url}/{name}.tif") as b:
            assert np.array_equal(a.read(1), b.read(1)), name
            assert a.overviews(1) == b.overviews(1), name
            small = (max(1, a.height // 2), max(1, a.width // 2))
            assert np.array_equal(a.read(1, out_shape=small), b.read(1, out_shape=small)), name
            assert a.tags(1) == b.tags(1), name  # statistics
            assert b.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG", name


def test_run_to_s3_equals_a_local_run_and_its_pointers_name_the_whole_set(tmp_path, s3):
    from click.testing import CliRunner

    from pipeline.cli import main

    # one chunk of 1024 whose object holds two levels' tiles (1 and 2): the runs are fetched by range
    config = fine(make_world(tmp_path / "world", chunk=1024))
    run(config, tmp_path / "local", workers=2)
    result = CliRunner().invoke(main, ["run", str(config), "--out", f"s3://{s3.bucket}/out/", "--workers", "2"])
    assert result.exit_code == 0, result.output
    record = pointer(s3)
    the_set = record["set"]
    run_prefix = f"out/runs/{the_set['run']}/"
    assert the_set["prefix"] == run_prefix
    assert f"s3://{s3.bucket}/{run_prefix}contamination_probability.tif" in result.output
    # the pointers and the set, nothing else: no staged chunk, no lock, every object named
    named = {f["key"] for f in the_set["files"].values()}
    assert set(s3.keys("out/")) == {"out/run.json", "out/item.json", "out/catalog.json"} | named
    assert all(k.startswith(run_prefix) for k in named)
    assert {"contamination_probability.tif", "run.json", "item.json", ".minemap/state.json"} <= set(the_set["files"])
    for name, f in the_set["files"].items():  # each object is the bytes the pointer names
        body = get(s3, f["key"])
        assert (len(body), hashlib.sha256(body).hexdigest()) == (f["size"], f["sha256"]), name
    # the same files as the local run's, the products equal cell for cell (overviews and statistics too)
    local = json.loads((tmp_path / "local" / "run.json").read_text())
    def kinds(files):  # a history item is named by its run's time
        return {"history/*.json" if n.startswith("history/") else n for n in files}

    assert kinds(record["files"]) == kinds(local["files"])
    names = made_products(tmp_path / "local")
    assert len(names) == 6
    same_products(tmp_path / "local", f"s3://{s3.bucket}/{run_prefix}".rstrip("/"), names)
    # item.json at the root links into the run's prefix; the catalog links the run's history item
    item = json.loads(get(s3, "out/item.json"))
    href = item["assets"]["contamination_probability"]["href"]
    assert href == f"./runs/{the_set['run']}/contamination_probability.tif"
    catalog = json.loads(get(s3, "out/catalog.json"))
    items = [link["href"] for link in catalog["links"] if link["rel"] == "item"]
    assert len(items) == 1 and items[0].startswith(f"./runs/{the_set['run']}/history/")
    assert f"{run_prefix}{items[0].split('/', 3)[3]}" in named


def test_a_run_stopped_part_way_leaves_the_previous_set_current(tmp_path, world, s3, monkeypatch):
    from pipeline.writers import cog

    config = engine_only(world)
    url = f"s3://{s3.bucket}/out"
    run(config, url, workers=2)
    first = pointer(s3)
    before = {k: get(s3, k) for k in s3.keys("out/")}

    calls = []
    real = cog.ChunkStage.__call__

    def fail_in_a_stage(self, blocks):  # the chunk's tiles uploaded, then a failure
        calls.append(real(self, blocks))
        raise RuntimeError("stopped in a chunk")

    monkeypatch.setattr(cog.ChunkStage, "__call__", fail_in_a_stage)
    with pytest.raises(RuntimeError, match="stopped in a chunk"):
        run(config, url, workers=2)
    assert calls
    monkeypatch.setattr(cog.ChunkStage, "__call__", real)
    # the pointer files and every object of the previous set as they were (the lock released)
    assert {k: get(s3, k) for k in s3.keys("out/") if k in before} == before
    assert pointer(s3) == first
    # stopped between the pointer files: item.json and catalog.json name the new set, run.json not yet
    monkeypatch.setenv("MINEMAP_TEST_S3_FAIL_BEFORE", "run.json")
    with pytest.raises(RuntimeError, match="before run.json"):
        run(config, url, workers=2)
    monkeypatch.delenv("MINEMAP_TEST_S3_FAIL_BEFORE")
    assert pointer(s3) == first  # still the first set: every file of it there and readable
    for name, f in first["set"]["files"].items():
        assert hashlib.sha256(get(s3, f["key"])).hexdigest() == f["sha256"], name
    with rasterio.open(f"s3://{s3.bucket}/{first['set']['prefix']}contamination_probability.tif") as ds:
        assert ds.read(1)[50, 50] == pytest.approx(0.6)  # the mines (H_m 1) on rock (S_t 0.2), no drone
    left = {k.split("/")[2] for k in s3.keys("out/runs/")} - {first["set"]["run"]}
    assert len(left) == 2  # the stopped runs' leftovers: a chunk's tiles, a whole set
    assert any("/.chunks/" in k for k in s3.keys("out/runs/"))
    # the next run repairs the root, publishes, and removes the stopped runs' leftovers
    third = run(config, url, workers=2)
    assert any("interrupted publish was undone: item.json, catalog.json" in w for w in third["warnings"])
    runs = {k.split("/")[2] for k in s3.keys("out/runs/")}
    assert runs == {first["set"]["run"], pointer(s3)["set"]["run"]}  # the first kept by the history catalog
    assert not s3.client().list_multipart_uploads(Bucket=s3.bucket).get("Uploads")


def test_update_to_s3_after_a_drone_change_equals_a_full_local_run_and_old_runs_go(tmp_path, world, s3):
    config = fine(world)
    config.write_text(config.read_text() + "keep_history = 1\n")  # into [output]
    url = f"s3://{s3.bucket}/out"
    run(config, url, workers=2)
    first = pointer(s3)["set"]["run"]
    # the north-west drone tile (chunk (0, 0) only) gets new pixels
    write_raster(config.parent / "drone" / "a.tif", np.full((50, 50), 0.2, np.float32), X0, Y1, 20.0, CRS,
                 nodata=-1.0, tags={"TIFFTAG_DATETIME": "2024:06:01 10:00:00"})
    summary = update(config, url, workers=2)
    assert summary["status"] == "updated", summary
    assert (summary["chunks_recomputed"], summary["chunks_total"]) == (1, 4)
    assert summary["changed"] == [str(config.parent / "drone" / "a.tif")]
    the_set = pointer(s3)["set"]
    assert the_set["run"] != first
    run(config, tmp_path / "local", workers=2)  # a full run of the changed inputs
    same_products(tmp_path / "local", f"s3://{s3.bucket}/{the_set['prefix']}".rstrip("/"),
                  made_products(tmp_path / "local"))
    with rasterio.open(f"s3://{s3.bucket}/{the_set['prefix']}contamination_probability.tif") as ds:
        assert ds.read(1)[0, 0] != ds.read(1)[999, 999]
    # keep_history = 1: the first run's prefix is gone, only this run's set and the pointers remain
    assert {k.split("/")[2] for k in s3.keys("out/runs/")} == {the_set["run"]}
    assert update(config, url, workers=2)["status"] == "up to date"


def test_a_held_lock_refuses_a_second_writer_and_a_stale_one_is_taken_over(world, s3, monkeypatch):
    from pipeline import outstore

    config = engine_only(world)
    url = f"s3://{s3.bucket}/out"
    s3.client().put_object(Bucket=s3.bucket, Key="out/.minemap/lock", Body=b'{"run": "another"}')
    with pytest.raises(LockedError, match="another minemap run"):
        run(config, url, workers=1)
    assert s3.keys("out/") == ["out/.minemap/lock"]  # nothing written
    monkeypatch.setattr(outstore, "LOCK_TTL", 0.0)  # its holder stopped beating: stale
    run(config, url, workers=1)
    assert "out/.minemap/lock" not in s3.keys("out/") and pointer(s3)["set"]["run"]


def test_a_multipart_upload_sends_parts_of_at_least_5_mb_but_the_last(s3):
    data = os.urandom(store.PART * 2 + 12345)
    upload = store.Upload(s3.bucket, "big.bin")
    for i in range(0, len(data), 1 << 20):  # written in 1 MB pieces, sent in PART pieces
        upload.write(data[i:i + (1 << 20)])
    done = upload.close()
    assert done == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "etag": done["etag"]}
    assert done["etag"].endswith("-3")  # three parts: 8 MiB, 8 MiB, the rest
    assert get(s3, "big.bin") == data


def test_an_update_after_a_product_object_was_replaced_is_a_full_run(world, s3):
    config = engine_only(world)
    url = f"s3://{s3.bucket}/out"
    run(config, url, workers=1)
    the_set = pointer(s3)["set"]
    key = the_set["files"]["contamination_probability.tif"]["key"]
    body = get(s3, key)  # the same size, other bytes: only its ETag tells
    s3.client().put_object(Bucket=s3.bucket, Key=key, Body=body[:-1] + bytes([body[-1] ^ 1]))
    write_raster(world.parent / "drone" / "a.tif", np.full((50, 50), 0.2, np.float32), X0, Y1, 20.0, CRS,
                 nodata=-1.0, tags={"TIFFTAG_DATETIME": "2024:06:01 10:00:00"})
    summary = update(config, url, workers=1)
    assert summary["status"] == "full run"
    assert "contamination_probability.tif" in summary["reason"] and "ETag" in summary["reason"]


def test_an_out_bucket_that_does_not_exist_is_refused_naming_it(world, s3):
    from click.testing import CliRunner

    from pipeline.cli import main

    config = engine_only(world)
    result = CliRunner().invoke(main, ["run", str(config), "--out", "s3://no-such-bucket/out", "--workers", "1"])
    assert result.exit_code == 66, result.output  # EX_NOINPUT, as a missing input object
    assert "s3://no-such-bucket/out" in result.output
    result = CliRunner().invoke(main, ["watch", str(config), "--out", "s3://bucket/out"])
    assert result.exit_code == 2 and "this command writes a local folder" in result.output


def test_worker_processes_upload_their_own_chunks(tmp_path, world, s3, monkeypatch):
    """A large grid's chunks run in spawned worker processes (forced here on the 10 m world): each
    uploads the chunks it computed; the products equal a local run's."""
    from pipeline.writers import chunks

    config = fine(world)
    run(config, tmp_path / "local", workers=2)
    spawned = []
    real_spawn = chunks._spawn
    monkeypatch.setattr(chunks, "PROCESS_MIN_CELLS", 0)
    monkeypatch.setattr(chunks, "spawn_is_harmless", lambda: True)
    monkeypatch.setattr(chunks, "_spawn", lambda n: spawned.append(n) or real_spawn(n))
    run(config, f"s3://{s3.bucket}/out", workers=2)
    assert spawned == [2]
    same_products(tmp_path / "local", f"s3://{s3.bucket}/{pointer(s3)['set']['prefix']}".rstrip("/"),
                  made_products(tmp_path / "local"))


def test_a_run_that_lost_its_lock_publishes_nothing(world, s3, monkeypatch):
    """A run stalled past the lock's TTL whose lock another run took over stops before its pointers."""
    import time

    from pipeline import outstore

    config = engine_only(world)
    url = f"s3://{s3.bucket}/out"
    monkeypatch.setattr(outstore, "LOCK_TTL", 0.4)  # a heartbeat every 0.1 s
    real = outstore.S3Out.publish

    def taken_over_first(self, *args, **kwargs):
        s3.client().put_object(Bucket=s3.bucket, Key="out/.minemap/lock", Body=b'{"run": "another"}')
        time.sleep(0.5)  # the next heartbeat finds another run's lock
        return real(self, *args, **kwargs)

    monkeypatch.setattr(outstore.S3Out, "publish", taken_over_first)
    with pytest.raises(LockedError, match="lost OUT's lock"):
        run(config, url, workers=1)
    assert not any(k.startswith("out/") and k.count("/") == 1 for k in s3.keys("out/"))  # no pointer
    assert get(s3, "out/.minemap/lock") == b'{"run": "another"}'  # the other run's lock left alone
