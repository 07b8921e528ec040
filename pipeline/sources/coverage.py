"""Exact share of each cell covered by polygons: centre test inside, exact area on the edges."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from odc.geo.geobox import GeoBox
from rasterio.features import rasterize

from .geoms import window_boxes


def coverage_fraction(geoms: np.ndarray, gbox: GeoBox) -> np.ndarray:
    """Fraction (0–1, float32) of each cell of `gbox` covered by the union of `geoms`.

    A cell that no polygon edge crosses is wholly in or out, so its centre decides; the cells
    an edge touches get the exact area of their intersection with the union. Overlapping
    polygons count once.
    """
    shape = tuple(gbox.shape)
    out = np.zeros(shape, dtype=np.float32)
    if len(geoms) == 0:
        return out
    b = gbox.extent.boundingbox
    frame = shapely.box(b.left, b.bottom, b.right, b.top)
    union = polygonal(shapely.union_all(shapely.intersection(geoms, frame)))
    if union.is_empty:
        return out
    inside = rasterize([union], out_shape=shape, transform=gbox.affine, fill=0, default_value=1,
                       dtype="uint8", all_touched=False)
    out[inside == 1] = 1.0
    edges = rasterize([union.boundary], out_shape=shape, transform=gbox.affine, fill=0,
                      default_value=1, dtype="uint8", all_touched=True)
    rows, cols = np.nonzero(edges)
    if len(rows):
        boxes = window_boxes(gbox, rows, cols)
        shapely.prepare(union)
        area = shapely.area(shapely.intersection(boxes, union))
        out[rows, cols] = np.clip(area / abs(gbox.affine.a * gbox.affine.e), 0.0, 1.0)
    return out


def polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """Only the areal parts of a geometry (clipping can leave stray lines and points)."""
    parts = shapely.get_parts(geom)
    keep = parts[np.isin(shapely.get_type_id(parts), (3, 6))]  # Polygon, MultiPolygon
    return shapely.union_all(keep) if len(keep) else shapely.Polygon()


@dataclass(frozen=True)
class CoverageJob:
    geoms: np.ndarray
    gbox: GeoBox

    def __call__(self) -> np.ndarray:
        return coverage_fraction(self.geoms, self.gbox)
