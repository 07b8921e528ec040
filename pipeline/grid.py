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

from odc.geo import xy_
from odc.geo.geobox import GeoBox, GeoboxTiles
from odc.geo.geom import Geometry
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .config import read_toml_model
from .errors import ConfigError, InputError
from .vector import read_vector

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
    path = Path(path)
    spec, _ = read_toml_model(path, GridSpec, "grid definition file")
    region_path = (path.parent / spec.region.path).resolve()
    frame = read_vector(region_path, layer=spec.region.layer, where=spec.region.where)
    if frame.crs is None:
        raise InputError("region boundary has no CRS", region_path)
    if len(frame) == 0:
        raise InputError("region boundary has no features (check `where`)", region_path)
    union = frame.geometry.make_valid().union_all()
    if union.is_empty or union.area == 0:
        raise InputError("region boundary has no polygon area", region_path)
    region = Geometry(union, crs=str(frame.crs.to_string()))
    return make_grid(spec.name, spec.crs, spec.resolution, region, spec.origin, spec.chunk, str(path))

