"""Pieces computed per chunk (priority zones, field tasks) joined into whole shapes across chunk
borders: labels that meet along a shared edge are one shape (union-find, in pixel terms, so the
join is exact and the same whatever the chunk size)."""

from __future__ import annotations

import re
from typing import Callable

import numpy as np
import shapely

from .grid import Grid
from .tiles import Index, chunk_key


def chunk_pieces(parts: dict[str, dict], grid: Grid, kind: str) -> dict[Index, dict]:
    """Each chunk's pieces of `kind` ("zones", "tasks"), in tile order; chunks without any left out."""
    pieces: dict[Index, dict] = {}
    for idx in grid.tile_ids():
        part = parts.get(chunk_key(idx))
        if part is not None and part.get(kind) is not None:
            pieces[idx] = part[kind]
    return pieces


def piece_groups(pieces: dict[Index, dict],
                 joinable: Callable[[dict, int, dict, int], bool] | None = None) -> np.ndarray:
    """The group of every piece (numbered over `pieces` in order): pieces whose labels meet along a
    shared chunk border are one group (union-find), unless `joinable(a, la, b, lb)` says not."""
    start, total = {}, 0
    for idx, z in pieces.items():
        start[idx] = total
        total += z["n"]
    parent = np.arange(total)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for (i, j), z in pieces.items():
        for nb, mine, theirs in (((i, j + 1), "right", "left"), ((i + 1, j), "bottom", "top")):
            other = pieces.get(nb)
            if other is None:
                continue
            a, b = z["edges"][mine], other["edges"][theirs]
            touch = (a > 0) & (b > 0)
            for la, lb in set(zip(a[touch].tolist(), b[touch].tolist())):
                if joinable is not None and not joinable(z, la, other, lb):
                    continue
                ra, rb = find(start[(i, j)] + la - 1), find(start[nb] + lb - 1)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(k) for k in range(total)], dtype=np.int64)


def ring_polygon(rings: list) -> shapely.Polygon:
    """A GeoJSON polygon's rings as a shapely Polygon, each ring made from one array (shapely's
    `shape` walks the vertices in Python: half the time of the zone outlines)."""
    holes = [shapely.linearrings(np.asarray(ring)) for ring in rings[1:]]
    return shapely.polygons(shapely.linearrings(np.asarray(rings[0])), holes=holes or None)


def class_column(name: str) -> str:
    """The column of a risk class's km² in the zone, task and district tables: "very high" → km2_very_high."""
    return "km2_" + (re.sub(r"[^0-9a-zA-Z]+", "_", name).strip("_").lower() or "class")
