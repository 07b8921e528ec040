"""Lazy arrays on the grid's chunks, built from one picklable job per chunk.

A job holds only plain data (paths, geometries clipped to its chunk, numbers): no open
dataset or lock rides in the graph, so it runs the same on threads or a distributed cluster.
A job's pickle is also its content: hashing it tells whether a chunk must be recomputed.
"""

from __future__ import annotations

import hashlib
import pickle
from typing import Mapping, Protocol

import dask.array as da
import numpy as np

from .grid import Grid

Index = tuple[int, int]


class TileJob(Protocol):
    """Computes one chunk of a layer; must pickle and must not hold open files."""

    def __call__(self) -> np.ndarray: ...


def chunk_key(idx: Index) -> str:
    """A chunk's name in run records and state files: "row,col"."""
    return f"{idx[0]},{idx[1]}"


def run_job(job: TileJob) -> np.ndarray:
    return job()


def job_fingerprint(job: TileJob) -> str:
    """Hash of everything that decides a job's output (its inputs, their hashes, its chunk)."""
    return hashlib.sha256(pickle.dumps(job, protocol=5)).hexdigest()


def tiled_array(name: str, grid: Grid, jobs: Mapping[Index, TileJob], dtype=np.float32, token: str = "") -> da.Array:
    """A dask array over `grid` whose chunk (i, j) is computed by `jobs[i, j]()`."""
    key = f"{name}-{hashlib.sha256((token or name).encode()).hexdigest()[:12]}"
    graph = {(key, i, j): (run_job, jobs[i, j]) for i, j in grid.tile_ids()}
    meta = np.empty((0, 0), dtype=dtype)
    return da.Array(graph, key, chunks=grid.chunks, dtype=dtype, meta=meta)
