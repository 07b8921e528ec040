"""The runtime settings of a run, in one place: GDAL's configuration and the Dask scheduler.

`run` and `update` enter `runtime`; worker processes enter `gdal_env` once when they start
(`writers.chunks`); the writers enter it again around the COG assembly, so a direct call to
them (tests, bench) gets the same settings. Nothing else sets GDAL options or the scheduler.
"""

from __future__ import annotations

import os
from contextlib import ExitStack, contextmanager
from typing import Iterator

import dask
import rasterio

from . import store

# GDAL_CACHEMAX in bytes: rasterio hands an integer to GDALSetCacheMax64, so 512 meant 512 bytes
# (rasterising then re-walked every polygon per scanline: 5× slower; the COG copies cached nothing)
GDAL_ENV = {"GDAL_NUM_THREADS": "ALL_CPUS", "GDAL_CACHEMAX": 512 * 2**20}


def gdal_env() -> rasterio.Env:
    """GDAL's settings for minemap's reads and writes (with those for object storage: bounded retries,
    the endpoint from AWS_ENDPOINT_URL; see `store.gdal_options`)."""
    return rasterio.Env(**GDAL_ENV, **store.gdal_options())


@contextmanager
def scheduler(workers: int | None = None, address: str | None = None) -> Iterator[None]:
    """Threads on this machine (one thread: synchronous), or a distributed cluster at `address`."""
    address = address or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        from distributed import Client

        with Client(address):
            yield
    elif workers == 1:
        with dask.config.set(scheduler="synchronous"):
            yield
    else:
        with dask.config.set(scheduler="threads", num_workers=workers or os.cpu_count()):
            yield


@contextmanager
def runtime(workers: int | None = None, address: str | None = None) -> Iterator[None]:
    """The scheduler and GDAL's settings, entered together by `run` and `update`."""
    with ExitStack() as stack:
        stack.enter_context(scheduler(workers, address))
        stack.enter_context(gdal_env())
        yield


_worker_env: list[rasterio.Env] = []


def enter_worker() -> None:
    """In a worker process, once: GDAL's settings for the life of the process."""
    if not _worker_env:
        env = gdal_env()
        env.__enter__()
        _worker_env.append(env)
