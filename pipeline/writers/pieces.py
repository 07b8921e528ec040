"""Where a chunk's coarse overview levels are staged, compressed, until the COGs are assembled.

The levels a chunk covers in whole tiles are compressed in the workers (see `cog`); the coarser
ones (a chunk's block smaller than a tile: 1/48 of the cells) share tiles between chunks, so they
are staged here (ZSTD 1: staging stays compressed) and encoded when the file is assembled. Per
chunk and data type, one file holds all those levels side by side (an atlas: the first level at
the left, the others stacked at its right), a band per product: creating a GeoTIFF costs ~2 ms,
so one file a chunk, not one per product and level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.windows import Window

from ..grid import FILE_TILE
from ..tiles import Index


@dataclass(frozen=True)
class Spot:
    """One product's block at one level: which file, band and window of it."""

    path: Path
    band: int
    window: Window
    file_shape: tuple[int, int]  # (height, width) of the whole file
    count: int  # bands in the file
    dtype: str


def chunk_spots(staging: Path, idx: Index, products: list[tuple[str, str]], shape: tuple[int, int],
                factors: list[int]) -> dict[tuple[str, int], Spot]:
    """(product, level) → Spot for one chunk of `shape` cells; `products` as (name, dtype)."""
    h, w = shape
    sizes = {f: (math.ceil(h / f), math.ceil(w / f)) for f in factors}
    places, atlas_shape = {}, (0, 0)
    if factors:
        first, rest = factors[0], factors[1:]
        places[first] = (0, 0)
        row = 0
        for f in rest:
            places[f] = (row, sizes[first][1])
            row += sizes[f][0]
        atlas_shape = (max(sizes[first][0], row), sizes[first][1] + (sizes[rest[0]][1] if rest else 0))
    groups: dict[str, list[str]] = {}
    for name, dtype in products:
        groups.setdefault(dtype, []).append(name)
    spots = {}
    for dtype, names in groups.items():
        full = staging / f"{idx[0]}_{idx[1]}.{dtype}.tif"
        atlas = staging / f"{idx[0]}_{idx[1]}.{dtype}.overviews.tif"
        for band, name in enumerate(names, 1):
            spots[name, 1] = Spot(full, band, Window(0, 0, w, h), (h, w), len(names), dtype)
            for f in factors:
                (r, c), (fh, fw) = places[f], sizes[f]
                spots[name, f] = Spot(atlas, band, Window(c, r, fw, fh), atlas_shape, len(names), dtype)
    return spots


def write_pieces(spots: dict[tuple[str, int], Spot], blocks: dict[tuple[str, int], np.ndarray],
                 origin: Affine) -> None:
    """Write each file of `spots` once, every block in its band and window. `origin` is the
    chunk's top-left corner, so the full-resolution files are georeferenced (an atlas is given
    its first level's cell size; the assembly puts the parts in their places)."""
    files: dict[Path, list[tuple[Spot, np.ndarray, int]]] = {}
    for key, block in blocks.items():
        files.setdefault(spots[key].path, []).append((spots[key], block, key[1]))
    for path, parts in files.items():
        first = parts[0][0]
        h, w = first.file_shape
        bx, by = piece_tiles(w, h)
        level = min(f for _, _, f in parts)
        with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=first.count, dtype=first.dtype,
                           transform=origin @ Affine.scale(level), tiled=True, blockxsize=bx, blockysize=by,
                           interleave="band", compress="zstd", zstd_level=1,
                           predictor=3 if np.dtype(first.dtype).kind == "f" else 2) as ds:  # staging stays small
            for spot, block, _ in parts:
                ds.write(block, spot.band, window=spot.window)


def piece_tiles(width: int, height: int) -> tuple[int, int]:
    """Tile size of a staged file: the product's tile, or the file itself rounded up to 16
    (TIFF's tile unit) when smaller; small tiles would swamp GDAL's block cache."""
    return tuple(min(FILE_TILE, -(-n // 16) * 16) for n in (width, height))
