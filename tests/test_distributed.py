"""The same graph on a Dask distributed cluster (worker processes) gives the threaded run's outputs."""

import numpy as np
import pytest
import rasterio

from conftest import REPO
from pipeline.runner import run

PRODUCTS = ["contamination_probability", "evidence_count", "risk_class", "environmental_impact", "recovery_rate",
            "clearance_sustainability"]


def test_local_cluster_with_two_worker_processes_matches_threads(tmp_path):
    distributed = pytest.importorskip("distributed")
    config = REPO / "sample_data" / "minemap.toml"
    run(config, tmp_path / "threads", workers=2)
    # worker processes, not threads: anything unpicklable in the graph (an open dataset, a lock) fails here
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        record = run(config, tmp_path / "cluster", scheduler_address=cluster.scheduler_address)
    assert record["grid"]["shape"] == [1461, 1212]
    for name in PRODUCTS:
        with rasterio.open(tmp_path / "threads" / f"{name}.tif") as a, \
                rasterio.open(tmp_path / "cluster" / f"{name}.tif") as b:
            assert np.array_equal(a.read(1), b.read(1)), name
            assert a.tags(1) == b.tags(1), name
