"""Exact share of each cell covered by polygons: centre test inside, exact area on the edges."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from odc.geo.geobox import GeoBox
from rasterio.enums import MergeAlg
from rasterio.features import rasterize

from .geoms import window_boxes


def coverage_fraction(geoms: np.ndarray, gbox: GeoBox) -> np.ndarray:
    """Fraction (0–1, float32) of each cell of `gbox` covered by the union of `geoms`.

    A cell that no polygon edge crosses is wholly in or out, so its centre decides; the cells
    an edge touches get the exact area of their intersection with the union. Overlapping
    polygons count once. Work is confined to the window the polygons span.
    """
    out = np.zeros(tuple(gbox.shape), dtype=np.float32)
    if len(geoms) == 0:
        return out
    b = gbox.extent.boundingbox
    union = polygonal(shapely.union_all(shapely.intersection(geoms, shapely.box(b.left, b.bottom, b.right, b.top))))
    if union.is_empty:
        return out
    (r0, r1), (c0, c1) = _window(gbox, union.bounds)
    sub = gbox[r0:r1, c0:c1]
    shape = tuple(sub.shape)
    view = out[r0:r1, c0:c1]
    inside = rasterize([union], out_shape=shape, transform=sub.affine, fill=0, default_value=1,
                       dtype="uint8", all_touched=False)
    view[inside == 1] = 1.0
    edges = rasterize([union.boundary], out_shape=shape, transform=sub.affine, fill=0,
                      default_value=1, dtype="uint8", all_touched=True)
    rows, cols = np.nonzero(edges)
    if len(rows):
        # the union's parts are disjoint: sum each edge cell's intersection with the parts it meets
        parts = shapely.get_parts(union)
        boxes = window_boxes(sub, rows, cols)
        cell, part = shapely.STRtree(parts).query(boxes, predicate="intersects")
        area = np.bincount(cell, weights=shapely.area(shapely.intersection(boxes[cell], parts[part])),
                           minlength=len(boxes))
        view[rows, cols] = np.clip(area / abs(sub.affine.a * sub.affine.e), 0.0, 1.0)
    return out


def weighted_coverage(geoms: np.ndarray, weights: np.ndarray, gbox: GeoBox) -> np.ndarray:
    """Σ weight × covered fraction over polygons that may overlap (each counts on its own).

    Cells no edge crosses take the summed weights of the polygons holding their centre; edge
    cells the exact intersection areas, all polygons at once through an STRtree.
    """
    out = np.zeros(tuple(gbox.shape), dtype=np.float32)
    if len(geoms) == 0:
        return out
    (r0, r1), (c0, c1) = _window(gbox, tuple(shapely.total_bounds(geoms)))
    sub = gbox[r0:r1, c0:c1]
    shape = tuple(sub.shape)
    if 0 in shape:
        return out
    view = out[r0:r1, c0:c1]
    view[:] = rasterize(zip(geoms, weights), out_shape=shape, transform=sub.affine, fill=0, all_touched=False,
                        merge_alg=MergeAlg.add, dtype="float32")
    edges = rasterize(shapely.boundary(geoms), out_shape=shape, transform=sub.affine, fill=0, default_value=1,
                      dtype="uint8", all_touched=True)
    rows, cols = np.nonzero(edges)
    if len(rows):
        boxes = window_boxes(sub, rows, cols)
        cell, k = shapely.STRtree(geoms).query(boxes, predicate="intersects")
        area = shapely.area(shapely.intersection(boxes[cell], geoms[k]))
        total = np.bincount(cell, weights=area * weights[k], minlength=len(boxes))
        view[rows, cols] = total / abs(sub.affine.a * sub.affine.e)
    return out


def _window(gbox: GeoBox, bounds: tuple[float, float, float, float]) -> tuple[tuple[int, int], tuple[int, int]]:
    """Rows and columns of `gbox` covering `bounds`, one cell of margin, clipped to the chunk."""
    a, (h, w) = gbox.affine, gbox.shape
    c0, r0 = ~a @ (bounds[0], bounds[3])
    c1, r1 = ~a @ (bounds[2], bounds[1])
    return ((max(int(np.floor(min(r0, r1))) - 1, 0), min(int(np.ceil(max(r0, r1))) + 1, h)),
            (max(int(np.floor(min(c0, c1))) - 1, 0), min(int(np.ceil(max(c0, c1))) + 1, w)))


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
