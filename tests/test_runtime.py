"""pipeline/runtime.py: GDAL's settings and the scheduler in one context, in the run and in workers."""

from __future__ import annotations

import dask
import rasterio.env

from pipeline.runtime import GDAL_ENV, runtime
from pipeline.writers.chunks import _spawn


def test_runtime_sets_gdal_and_the_scheduler_and_restores_them():
    assert not rasterio.env.hasenv() or "GDAL_CACHEMAX" not in rasterio.env.getenv()
    with runtime(workers=1):
        env = rasterio.env.getenv()
        assert env["GDAL_NUM_THREADS"] == "ALL_CPUS" and env["GDAL_CACHEMAX"] == 512 * 2**20
        assert dask.config.get("scheduler") == "synchronous"
    assert not rasterio.env.hasenv() or "GDAL_CACHEMAX" not in rasterio.env.getenv()
    assert dask.config.get("scheduler", None) != "synchronous"


def test_worker_processes_run_with_the_same_gdal_settings():
    pool = _spawn(1)
    try:
        env = pool.submit(rasterio.env.getenv).result(timeout=120)
    finally:
        pool.shutdown()
    assert {k: env[k] for k in GDAL_ENV} == GDAL_ENV
