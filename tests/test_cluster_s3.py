"""A cluster with no shared disk (issue #23 §4): the test world's inputs in a local S3 server, `dask
scheduler` and two `dask worker` processes each in its own working directory and TMPDIR, the local input
folder gone before the run; a run with inputs and OUT in the bucket equals the local run cell for cell,
and its chunks ran on the workers (the scheduler's task stream)."""

import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
import rasterio

from conftest import REPO, engine_only
from made import stop_all, made_products, worker_tasks
from s3server import with_env
from world import make_world

from pipeline import store
from pipeline.runner import run

URL_KEYS = re.compile(r'^(grid|path|table|extent) = "([^"]+)"', re.M)


def start_cluster(tmp_path, env: dict) -> tuple[list[subprocess.Popen], str]:
    """`dask scheduler` and two `dask worker` processes (one thread each), each worker in its own
    folder (working directory and TMPDIR) with `env`."""
    tmp_path.mkdir()
    info = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    procs = [subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(info)], cwd=tmp_path, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    deadline = time.monotonic() + 60
    while not info.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    for n in (1, 2):
        home = tmp_path / f"worker{n}"
        (home / "tmp").mkdir(parents=True)
        procs.append(subprocess.Popen([*dask, "worker", "--scheduler-file", str(info), "--nworkers", "1",
                                       "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1",
                                       "--local-directory", str(home / "tmp")],
                                      cwd=home, env={**env, "TMPDIR": str(home / "tmp")},
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    return procs, json.loads(info.read_text())["address"]


def test_cluster_with_no_shared_disk_equals_the_local_run(tmp_path, local_s3, monkeypatch):
    pytest.importorskip("distributed")
    from distributed import Client

    config = engine_only(make_world(tmp_path / "world"))
    grid = config.parent / "grid.toml"  # 1000 × 1000 cells: 2 × 2 chunks of 512
    grid.write_text(grid.read_text().replace("resolution = 100.0", "resolution = 10.0"))
    run(config, tmp_path / "local", workers=2)
    names = made_products(tmp_path / "local")
    url = local_s3.upload_tree(config.parent, "world")
    cloud = tmp_path / "cloud" / "config.toml"
    cloud.parent.mkdir()
    cloud.write_text(URL_KEYS.sub(lambda m: f'{m.group(1)} = "{url}/{m.group(2)}"', config.read_text()))
    (config.parent).rename(tmp_path / "gone")  # nobody reads the local inputs
    for k, v in local_s3.env.items():
        monkeypatch.setenv(k, v)
    store.client.cache_clear()
    env = with_env(local_s3)  # this checkout importable from any working directory
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep)
                                                      if p and os.path.isabs(p)]])
    procs, address = start_cluster(tmp_path / "cluster", env)
    try:
        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            homes = client.run(os.getcwd)
        assert sorted(homes.values()) == [str(tmp_path / "cluster" / "worker1"), str(tmp_path / "cluster" / "worker2")]
        with worker_tasks(address) as tasks:
            record = run(cloud, f"s3://{local_s3.bucket}/out", scheduler_address=address)
    finally:
        stop_all(procs)
    # every chunk's job ran whole on one of the two workers (which uploaded its tiles)
    jobs = [r for r in tasks.records if str(r["key"]).startswith("ChunkJob")]
    assert len(jobs) == 4 and {r["worker"] for r in jobs} <= tasks.workers and len(tasks.workers) == 2
    assert all(k.startswith("s3://") for k in record["inputs"])
    the_set = json.loads(local_s3.client().get_object(Bucket=local_s3.bucket, Key="out/run.json")["Body"].read())["set"]
    for name in names:
        with rasterio.open(tmp_path / "local" / f"{name}.tif") as a, \
                rasterio.open(f"s3://{local_s3.bucket}/{the_set['prefix']}{name}.tif") as b:
            assert np.array_equal(a.read(1), b.read(1)), name
            assert a.overviews(1) == b.overviews(1), name
            assert a.tags(1) == b.tags(1), name
    # nothing was written in the workers' folders but Dask's own
    for n in (1, 2):
        home = tmp_path / "cluster" / f"worker{n}"
        assert {p.name for p in home.iterdir()} == {"tmp"}
