"""Exact share of each cell covered by polygons, computed by exactextract.

exactextract walks each polygon's boundary through the grid and returns, per polygon, the
cells it touches with the exact covered fraction (interior cells 1). Measured on 2048² chunks
of the 10 m bench grid with 250–380 cleared areas each: 0.09–0.15 s, against 0.8–1.4 s for
intersecting every edge cell with shapely, and equal to float precision.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
from exactextract import exact_extract
from exactextract.feature import Feature, FeatureSource
from exactextract.raster import NumPyRasterSource
from odc.geo.geobox import GeoBox

from ..vector import polygonal


def cell_fractions(geoms: np.ndarray, gbox: GeoBox) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For polygons `geoms` (grid CRS) on `gbox`: (polygon index, flat cell index, covered
    fraction) of every cell each polygon touches, polygons in order."""
    h, w = gbox.shape
    a = gbox.affine
    if len(geoms) == 0 or h == 0 or w == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0)
    # a stand-in raster: only its extent and shape matter (cell_id and coverage read no values)
    raster = NumPyRasterSource(np.broadcast_to(np.uint8(0), (h, w)), a.c, a.f + h * a.e, a.c + w * a.a, a.f)
    found = exact_extract(raster, _Polygons(geoms), ["cell_id", "coverage"], include_cols=["k"], output="geojson")
    index, cells, fractions = [], [], []
    for f in found:
        p = f["properties"]
        ids = np.asarray(p["cell_id"], dtype=np.intp)
        index.append(np.full(len(ids), p["k"], dtype=np.intp))
        cells.append(ids)
        fractions.append(np.asarray(p["coverage"], dtype=np.float64))
    if not cells:
        return np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0)
    return np.concatenate(index), np.concatenate(cells), np.concatenate(fractions)


def coverage_fraction(geoms: np.ndarray, gbox: GeoBox) -> np.ndarray:
    """Fraction (0–1, float32) of each cell of `gbox` covered by the union of `geoms`
    (overlapping polygons count once)."""
    if len(geoms) == 0:
        return np.zeros(tuple(gbox.shape), dtype=np.float32)
    parts = shapely.get_parts(polygonal(shapely.union_all(geoms)))  # disjoint: their fractions add up
    _, cells, fractions = cell_fractions(parts, gbox)
    total = np.bincount(cells, weights=fractions, minlength=gbox.shape[0] * gbox.shape[1])
    return np.clip(total, 0.0, 1.0).astype(np.float32).reshape(tuple(gbox.shape))


def weighted_coverage(geoms: np.ndarray, weights: np.ndarray, gbox: GeoBox) -> np.ndarray:
    """Σ weight × covered fraction over polygons that may overlap (each counts on its own)."""
    k, cells, fractions = cell_fractions(geoms, gbox)
    total = np.bincount(cells, weights=fractions * np.asarray(weights, dtype=np.float64)[k],
                        minlength=gbox.shape[0] * gbox.shape[1])
    return total.astype(np.float32).reshape(tuple(gbox.shape))


def site_area_km2(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Ellipsoidal area in km² of each polygon of `frame` (on its CRS's ellipsoid), so a site
    measures the same whatever grid CRS it was brought into."""
    geod = frame.crs.get_geod()
    lonlat = frame.geometry.to_crs(frame.crs.geodetic_crs).values
    return np.array([abs(geod.geometry_area_perimeter(g)[0]) / 1e6 for g in lonlat], dtype=np.float64)


class _Polygon(Feature):
    """One polygon handed to exactextract as WKB (no GeoJSON text round trip), with its index."""

    def __init__(self, k: int, wkb: bytes):
        Feature.__init__(self)
        self.k, self.wkb = k, wkb

    def geometry(self) -> bytes:
        return self.wkb

    def set_geometry_format(self) -> str:
        return "wkb"

    def get(self, name: str) -> int:
        return self.k

    def fields(self) -> list[str]:
        return ["k"]


class _Polygons(FeatureSource):
    def __init__(self, geoms: np.ndarray):
        super().__init__()
        self.wkb = shapely.to_wkb(geoms)

    def count(self) -> int:
        return len(self.wkb)

    def __iter__(self):
        for k, wkb in enumerate(self.wkb):
            yield _Polygon(k, wkb)

    def srs_wkt(self) -> None:
        return None


@dataclass(frozen=True)
class CoverageJob:
    geoms: np.ndarray
    gbox: GeoBox

    def __call__(self) -> np.ndarray:
        return coverage_fraction(self.geoms, self.gbox)
