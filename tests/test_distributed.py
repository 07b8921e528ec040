"""The same graph on a Dask distributed cluster (worker processes) gives the threaded run's outputs."""

import numpy as np
import pytest
import rasterio

from pipeline.runner import run
from world import make_world

PRODUCTS = ["contamination_probability", "evidence_count", "environmental_impact", "recovery_rate",
            "clearance_sustainability"]


def ten_metre_world(root):
    config = make_world(root)
    grid = config.parent / "grid.toml"
    grid.write_text(grid.read_text().replace("resolution = 100.0", "resolution = 10"))  # 2 × 2 chunks
    config.write_text(config.read_text().replace("bandwidth_m = 50 ", "bandwidth_m = 500"))
    return config


def test_local_cluster_with_two_worker_processes_matches_threads(tmp_path):
    distributed = pytest.importorskip("distributed")
    config = ten_metre_world(tmp_path / "w")
    run(config, tmp_path / "threads", workers=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        record = run(config, tmp_path / "cluster", scheduler_address=cluster.scheduler_address)
    assert record["grid"]["shape"] == [1000, 1000]
    for name in PRODUCTS:
        with rasterio.open(tmp_path / "threads" / f"{name}.tif") as a, \
                rasterio.open(tmp_path / "cluster" / f"{name}.tif") as b:
            assert np.array_equal(a.read(1), b.read(1)), name
