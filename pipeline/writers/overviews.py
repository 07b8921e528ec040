"""Overview pyramids computed chunk by chunk in the workers, then handed to GDAL's COG driver.

Letting the COG driver build overviews costs ~3 s per 177 M-cell product (single-threaded
averaging of the whole file); averaging each chunk while it is in memory is cheap. Each level
halves the one before (as GDAL's own AVERAGE overviews of overviews do). Each chunk's levels are
staged (see `pieces`); the COG driver takes them through VRT mosaics, the band listing the
levels as <Overview> sources.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.windows import Window

from ..grid import FILE_TILE, Grid
from .pieces import Spot, piece_tiles


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


def write_vrt(path: Path, grid: Grid, dtype: str, nodata: float, pieces: dict[int, list[tuple[Spot, Window]]],
              tags: dict[str, str], band_tags: dict[str, str], description: str, unit: str) -> None:
    """A VRT mosaic of a product's staged blocks (where each lies, where it goes in the grid):
    full resolution (level 1) in its band, each overview level a mosaic VRT of its own listed
    as an <Overview>. Cells no piece covers (chunks outside the region) read as nodata."""
    for f in sorted(pieces):
        if f > 1:
            _mosaic(path.with_suffix(f".{f}.vrt"), grid, f, dtype, nodata, pieces[f])
    root, band = _mosaic_root(grid, 1, dtype, nodata)
    _metadata(root, tags, before=band)
    ET.SubElement(band, "Description").text = description
    ET.SubElement(band, "UnitType").text = unit
    _metadata(band, band_tags)
    _sources(band, pieces[1])
    for f in sorted(pieces):
        if f > 1:
            ov = ET.SubElement(band, "Overview")
            ET.SubElement(ov, "SourceFilename", relativeToVRT="1").text = path.with_suffix(f".{f}.vrt").name
            ET.SubElement(ov, "SourceBand").text = "1"
    ET.ElementTree(root).write(path, encoding="utf-8")


def _mosaic(path: Path, grid: Grid, f: int, dtype: str, nodata: float, pieces: list[tuple[Spot, Window]]) -> None:
    root, band = _mosaic_root(grid, f, dtype, nodata)
    _sources(band, pieces)
    ET.ElementTree(root).write(path, encoding="utf-8")


def _mosaic_root(grid: Grid, f: int, dtype: str, nodata: float) -> tuple[ET.Element, ET.Element]:
    h, w = grid.shape
    root = ET.Element("VRTDataset", rasterXSize=str(math.ceil(w / f)), rasterYSize=str(math.ceil(h / f)))
    ET.SubElement(root, "SRS").text = grid.crs.wkt
    ET.SubElement(root, "GeoTransform").text = ", ".join(repr(v) for v in (grid.geobox.affine @ Affine.scale(f)).to_gdal())
    band = ET.SubElement(root, "VRTRasterBand", dataType=_GDAL_TYPES[dtype], band="1")
    ET.SubElement(band, "NoDataValue").text = repr(float(nodata))
    return root, band


def _sources(band: ET.Element, pieces: list[tuple[Spot, Window]]) -> None:
    """One SimpleSource per staged block, its file's size given so GDAL opens it only when read."""
    for spot, dst in pieces:
        src = ET.SubElement(band, "SimpleSource")
        ET.SubElement(src, "SourceFilename", relativeToVRT="1").text = f"{spot.path.parent.name}/{spot.path.name}"
        ET.SubElement(src, "SourceBand").text = str(spot.band)
        h, w = spot.file_shape
        bx, by = piece_tiles(w, h)
        ET.SubElement(src, "SourceProperties", RasterXSize=str(w), RasterYSize=str(h),
                      DataType=_GDAL_TYPES[spot.dtype], BlockXSize=str(bx), BlockYSize=str(by))
        win = spot.window
        size = {"xSize": str(int(win.width)), "ySize": str(int(win.height))}
        ET.SubElement(src, "SrcRect", xOff=str(int(win.col_off)), yOff=str(int(win.row_off)), **size)
        ET.SubElement(src, "DstRect", xOff=str(int(dst.col_off)), yOff=str(int(dst.row_off)), **size)


_GDAL_TYPES = {"float32": "Float32", "uint8": "Byte", "float64": "Float64", "int16": "Int16", "uint16": "UInt16"}


def _metadata(parent: ET.Element, items: dict[str, str], before: ET.Element | None = None) -> None:
    md = ET.Element("Metadata")
    for k, v in items.items():
        ET.SubElement(md, "MDI", key=k).text = v
    parent.insert(list(parent).index(before) if before is not None else len(parent), md)
