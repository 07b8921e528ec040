"""A cluster started the way operators start one: `dask scheduler` and `dask worker` processes
from their command lines, on this machine's loopback; the outputs equal the local run's."""

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import rasterio

from made import stop_all, made_products, worker_tasks
from pipeline.runner import run


@pytest.fixture
def cluster(tmp_path):
    """A scheduler and one `dask worker` command running two single-threaded worker processes."""
    pytest.importorskip("distributed")
    info = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    procs = [subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(info)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        procs.append(subprocess.Popen([*dask, "worker", "--scheduler-file", str(info), "--nworkers", "2",
                                       "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        address = json.loads(info.read_text())["address"]
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
    finally:
        stop_all(procs)


def test_command_line_cluster_matches_local_run(tmp_path, cluster, engine_sample):
    config = engine_sample
    run(config, tmp_path / "local", workers=2)
    with worker_tasks(cluster) as tasks:
        run(config, tmp_path / "cluster", scheduler_address=cluster)
    # the `dask worker` processes computed it: every chunk of L (3 × 3 chunks of 512) on one of them
    ran = tasks.chunks("density-L")
    assert sorted(ran) == [(i, j) for i in range(3) for j in range(3)] and set(ran.values()) <= tasks.workers
    assert len(tasks.workers) == 2
    names = made_products(tmp_path / "local")
    assert "released_share" in names and "residual_probability" in names  # the sample releases land
    for name in names:
        with rasterio.open(tmp_path / "local" / f"{name}.tif") as a, \
                rasterio.open(tmp_path / "cluster" / f"{name}.tif") as b:
            assert np.array_equal(a.read(1), b.read(1)), name
            assert a.tags(1) == b.tags(1), name  # statistics
    assert (tmp_path / "local" / "districts.csv").read_text() == (tmp_path / "cluster" / "districts.csv").read_text()
