"""The grid: an immutable value naming CRS, cell size, alignment, region and chunking.

Geometry only, no I/O: `load_grid` reads a definition file and the region vector once, and
everything downstream asks the `Grid` for chunk geoboxes, windows and the region shape.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator

import numpy as np
from odc.geo import xy_
from odc.geo.geobox import GeoBox, GeoboxTiles
from odc.geo.geom import Geometry
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pyproj import CRS, Proj, Transformer
from pyproj.exceptions import CRSError, ProjError

from . import store
from .config import read_toml_model
from .errors import ConfigError, InputError, Problem
from .vector import POLYGONS, empty_layer_problem, geometry_type_problem, polygonal, read_vector, to_crs

FILE_TILE = 512  # GeoTIFF tile edge; chunks are multiples of it so each block is written once


class RegionSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    layer: str | None = None
    where: str | None = Field(None, description="OGR SQL filter, e.g. \"name IN ('Aghdam','Fuzuli')\"")


class GridSpec(BaseModel):
    """What a grid definition file (TOML) holds."""

    model_config = ConfigDict(extra="forbid")
    name: str
    crs: str = Field(description="EPSG code of a projected CRS in metres, e.g. 'EPSG:32638'")
    resolution: float = Field(gt=0, description="cell size in metres")
    origin: tuple[float, float] = Field((0.0, 0.0), description="cell edges fall on origin + k·resolution")
    chunk: int = Field(2048, gt=0, description="processing chunk edge in cells (multiple of 512)")
    region: RegionSpec

    @field_validator("crs")
    @classmethod
    def _known_crs(cls, v: str) -> str:
        try:
            CRS.from_user_input(v)
        except CRSError as e:
            raise ValueError(f"{v!r} is not a CRS PROJ knows ({str(e).splitlines()[0]}); "
                             f"give an EPSG code such as 'EPSG:32638'") from None
        return v

    @field_validator("chunk")
    @classmethod
    def _chunk_multiple_of_tile(cls, v: int) -> int:
        if v % FILE_TILE:
            raise ValueError(f"must be a multiple of {FILE_TILE} so chunks align with the GeoTIFF tiles")
        return v


@dataclass(frozen=True)
class Grid:
    """Cells of `geobox`, processed in `chunk`×`chunk` tiles; cells outside `region` are nodata."""

    name: str
    geobox: GeoBox
    region: Geometry  # in the grid CRS
    chunk: int
    source: str = ""  # the definition file, for messages and run records

    @property
    def crs(self):
        return self.geobox.crs

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.geobox.shape)

    @property
    def resolution(self) -> float:
        return abs(self.geobox.resolution.x)

    @property
    def cell_area_km2(self) -> float:
        return self.resolution**2 / 1e6

    @cached_property
    def tiles(self) -> GeoboxTiles:
        return GeoboxTiles(self.geobox, (self.chunk, self.chunk))

    @property
    def chunks(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return tuple(self.tiles.chunks)

    def tile_ids(self) -> Iterator[tuple[int, int]]:
        ny, nx = self.tiles.shape
        for i in range(ny):
            for j in range(nx):
                yield i, j

    def tile_geobox(self, idx: tuple[int, int]) -> GeoBox:
        return self.tiles[idx]

    def tile_in_region(self, idx: tuple[int, int]) -> bool:
        """False for chunks wholly outside the region: every product is nodata there."""
        return self.tile_geobox(idx).extent.intersects(self.region)

    def holds_cell_centre(self) -> bool:
        """Whether any cell centre lies in the region (else every product would be empty).
        Stops at the first chunk holding one, so a usual region costs one chunk's rasterisation."""
        import shapely

        a, (rows, cols) = self.geobox.affine, self.shape  # first: the cell holding a point inside the region
        inside = self.region.geom.representative_point()
        col, row = int((inside.x - a.c) // a.a), int((inside.y - a.f) // a.e)
        if 0 <= row < rows and 0 <= col < cols and shapely.contains_xy(
                self.region.geom, a.c + (col + 0.5) * a.a, a.f + (row + 0.5) * a.e):
            return True  # a centre strictly inside is burnt by the rasterisation below too
        from rasterio.features import rasterize  # only here: rasterio (and boto3) load after the first line

        for idx in self.tile_ids():
            gbox = self.tile_geobox(idx)
            if gbox.extent.intersects(self.region) and rasterize(
                    [self.region.geom], out_shape=tuple(gbox.shape), transform=gbox.affine, fill=0,
                    default_value=1, dtype="uint8").any():
                return True
        return False

    def area_scale(self) -> tuple[float, float]:
        """Least and greatest areal scale factor of the grid's CRS at the region's centre and the
        corners of its bounding box: how many grid-CRS "km²" one true km² becomes there."""
        b = self.region.boundingbox
        corners = [(b.left, b.bottom), (b.left, b.top), (b.right, b.bottom), (b.right, b.top)]
        x, y = np.array([self.region.geom.centroid.coords[0], *corners]).T
        lon, lat = Transformer.from_crs(self.crs.to_wkt(), "EPSG:4326", always_xy=True).transform(x, y)
        factors = Proj(CRS.from_wkt(self.crs.to_wkt())).get_factors(lon, lat).areal_scale
        return float(min(factors)), float(max(factors))

    def tile_window(self, idx: tuple[int, int]) -> tuple[slice, slice]:
        return self.tiles.roi[idx]

    def fingerprint(self) -> str:
        """Stable hash of everything that decides cell values' placement."""
        h = hashlib.sha256()
        h.update(repr((self.geobox.shape, tuple(self.geobox.affine), str(self.crs), self.chunk)).encode())
        h.update(self.region.geom.wkb)
        return h.hexdigest()[:16]

    def describe(self) -> dict:
        b = self.geobox.extent.boundingbox
        return {
            "name": self.name,
            "definition": self.source,
            "crs": str(self.crs),
            "resolution_m": self.resolution,
            "shape": list(self.shape),
            "cells": int(self.shape[0] * self.shape[1]),
            "bounds": [b.left, b.bottom, b.right, b.top],
            "chunk": self.chunk,
            "fingerprint": self.fingerprint(),
        }


def make_grid(name: str, crs: str, resolution: float, region: Geometry,
              origin: tuple[float, float] = (0.0, 0.0), chunk: int = 2048, source: str = "") -> Grid:
    """Snap a grid to `origin` around `region` (any CRS); cells are `resolution` metres."""
    region = region.to_crs(crs)
    anchor = xy_((origin[0] / resolution) % 1.0, (origin[1] / resolution) % 1.0)
    gbox = GeoBox.from_bbox(region.boundingbox, crs=crs, resolution=resolution, anchor=anchor, tol=0)
    if gbox.crs.units[0] not in ("metre", "m"):
        raise ConfigError(f"CRS {crs} is not in metres: choose a projected CRS (e.g. the UTM zone)", source)
    return Grid(name=name, geobox=gbox, region=region, chunk=chunk, source=source)


def load_grid(path: str | Path) -> Grid:
    """Read a grid definition file and its region boundary."""
    path = store.Url(path) if store.is_url(path) else Path(path)
    spec, _ = read_toml_model(path, GridSpec, "grid definition file")
    region_path = store.resolve(store.parent(path), spec.region.path)  # beside the grid file (a URL's too)
    frame = read_vector(region_path, layer=spec.region.layer, where=spec.region.where)
    if frame.crs is None:
        raise InputError("region boundary has no CRS", region_path)
    if len(frame) == 0:
        raise InputError(f"region boundary: {empty_layer_problem(region_path, spec.region.layer, spec.region.where)}"
                         " (check `where`)", region_path)
    if msg := geometry_type_problem(frame, POLYGONS, "a region boundary"):
        raise InputError(msg, region_path)
    frame = to_crs(frame, spec.crs, region_path, f"the grid's {spec.crs} (grid {path.name})")
    union = polygonal(frame.geometry.make_valid().union_all())
    if union.is_empty or union.area == 0:
        raise InputError("region boundary has no polygon area", region_path)
    grid = make_grid(spec.name, spec.crs, spec.resolution, Geometry(union, crs=spec.crs), spec.origin, spec.chunk,
                     str(path))
    if not grid.holds_cell_centre():
        raise InputError(f"the region covers no cell centre at {spec.resolution:g} m (grid {path.name}): every "
                         "product would be empty; widen the region or use smaller cells", region_path)
    return grid


AREA_TOLERANCE = 0.01  # warn when the grid CRS inflates or shrinks areas by more than 1 % at the region


def area_scale_warning(grid: Grid) -> Problem | None:
    """A warning when the grid's CRS is far from true scale at the region (EPSG:3857 at 40° N
    counts 1.7 "km²" per km²): cell areas, km² sums and densities would be off by as much."""
    try:
        low, high = grid.area_scale()
    except (ProjError, ValueError) as e:
        return Problem(grid.source, f"cannot check the scale of CRS {grid.crs} at the region: {e}")
    worst = low if abs(low - 1) > abs(high - 1) else high
    if abs(worst - 1) <= AREA_TOLERANCE:
        return None
    return Problem(grid.source, f"CRS {grid.crs} is not true to scale at the region: one km² on the ground counts "
                                f"as {low:.3f}–{high:.3f} km² of the grid (areal scale factor), so areas, km² "
                                f"and densities are off by up to {abs(worst - 1):.0%}; use a CRS true to scale "
                                f"there (e.g. its UTM zone)")

