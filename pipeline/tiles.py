"""Lazy arrays on the grid's chunks, built from one picklable job per chunk.

A job holds only plain data (paths, geometries clipped to its chunk, numbers): no open
dataset or lock rides in the graph, so it runs the same on threads or a distributed cluster.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Protocol

import dask.array as da
import numpy as np

from .grid import Grid


class TileJob(Protocol):
    """Computes one chunk of a layer; must pickle and must not hold open files."""

    def __call__(self) -> np.ndarray: ...


def _run(job: TileJob) -> np.ndarray:
    return job()


def tiled_array(name: str, grid: Grid, make_job: Callable[[tuple[int, int]], TileJob],
                dtype=np.float32, token: str = "") -> da.Array:
    """A dask array over `grid` whose chunk (i, j) is computed by `make_job((i, j))()`."""
    key = f"{name}-{hashlib.sha256((token or name).encode()).hexdigest()[:12]}"
    graph = {(key, i, j): (_run, make_job((i, j))) for i, j in grid.tile_ids()}
    meta = np.empty((0, 0), dtype=dtype)
    return da.Array(graph, key, chunks=grid.chunks, dtype=dtype, meta=meta)
