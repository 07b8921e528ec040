"""Overview pyramids computed chunk by chunk in the workers, compressed there with the
full-resolution tiles (see `cog`).

Letting GDAL's COG driver build overviews cost ~3 s per 177 M-cell product (single-threaded
averaging of the whole file); averaging each chunk while it is in memory is cheap. Each level
halves the one before (as GDAL's own AVERAGE overviews of overviews do).
"""

from __future__ import annotations

import math

import numpy as np

from ..grid import FILE_TILE


def overview_factors(shape: tuple[int, int], chunk: int) -> list[int]:
    """As GDAL's COG driver: halve until the larger side fits one tile (factors must divide the chunk)."""
    factors, f = [], 2
    while max(shape) / (f // 2) > FILE_TILE and chunk % f == 0:
        factors.append(f)
        f *= 2
    return factors


def level_chunks(chunks: tuple[tuple[int, ...], ...], f: int) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(math.ceil(c / f) for c in axis) for axis in chunks)


def downsample(block: np.ndarray, f: int, nodata: float, average: bool) -> np.ndarray:
    """One chunk of the next overview level: the mean of the valid cells under each coarse cell,
    or the top-left cell (nearest, for classes and counts). Blocks come nodata-filled (no NaN)."""
    if not average:
        return block[::f, ::f].copy()
    h, w = block.shape
    if h % f or w % f:  # a ragged grid edge: pad with nodata
        padded = np.full((math.ceil(h / f) * f, math.ceil(w / f) * f), nodata, dtype=block.dtype)
        padded[:h, :w] = block
        block = padded
    valid = block != block.dtype.type(nodata)
    if valid.all():  # most chunks: a plain mean (× 1/f², a power of two: the same floats as ÷ f²)
        total = block[::f, ::f].copy()
        for i, j in [(i, j) for i in range(f) for j in range(f)][1:]:
            total += block[i::f, j::f]
        total *= block.dtype.type(1 / (f * f))
        return total
    values = np.where(valid, block, block.dtype.type(0))
    total, count = values[::f, ::f].copy(), valid[::f, ::f].astype(block.dtype)
    for i, j in [(i, j) for i in range(f) for j in range(f)][1:]:  # strided in-place adds: no temporaries
        total += values[i::f, j::f]
        count += valid[i::f, j::f]
    out = np.full(count.shape, nodata, dtype=block.dtype)
    np.divide(total, count, out=out, where=count > 0)
    return out
