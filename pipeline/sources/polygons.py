"""Polygons burnt onto cells: a value per polygon, from a numeric field or a class table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from odc.geo.geobox import GeoBox
from rasterio.features import rasterize


@dataclass(frozen=True)
class BurnJob:
    """Burn `values` of `geoms` (later ones on top) into a chunk; `fill` where none lies.

    `dtype` is the chunk's type: codes burn as small integers, a quarter of float32's bytes
    for GDAL to copy (rasterio holds the GIL while it rasterises, so its time is serial).
    """

    geoms: np.ndarray
    values: np.ndarray
    gbox: GeoBox
    all_touched: bool = False
    fill: float = np.nan
    dtype: str = "float32"

    def __call__(self) -> np.ndarray:
        shape = tuple(self.gbox.shape)
        geoms, values, fill = self.geoms, self.values, self.fill
        if len(geoms):
            # a polygon holding the whole chunk (the region, a district, a large field) hides
            # everything beneath it: start from its value and burn only what lies on top
            b = self.gbox.extent.boundingbox
            holds = np.flatnonzero(shapely.contains(geoms, shapely.box(b.left, b.bottom, b.right, b.top)))
            if len(holds):
                top = holds[-1]
                geoms, values, fill = geoms[top + 1:], values[top + 1:], values[top]
        if len(geoms) == 0:
            return np.full(shape, fill, dtype=self.dtype)
        return rasterize(zip(geoms, values), out_shape=shape, transform=self.gbox.affine,
                         fill=fill, all_touched=self.all_touched, dtype=self.dtype)


def lookup(codes: np.ndarray, lut: np.ndarray, fill: float) -> np.ndarray:
    """Class codes (−1: no polygon) → values from a lookup table, in one gather: `fill` sits last,
    where −1 points (indexing by the codes as they are: 2.4× faster than widening them first)."""
    table = np.append(lut.astype(np.float32), np.float32(fill))
    return table[codes]
