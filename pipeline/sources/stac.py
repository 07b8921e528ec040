"""A `stac` source: drone layers published as STAC items, read as a `raster` glob's files are.

Each item's asset becomes one raster file of the mosaic, dated by the item's datetime (not a tag in
the file), newest on top. A chunk's fingerprint holds each item's id and `updated` besides its
asset's content fingerprint (SHA-256 of a local file; ETag, size and last-modified time of an object), so `update`
redoes the chunks under a new, changed or removed item only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from pathlib import Path

from dask.base import tokenize

from .. import stacread, store
from ..config import LoadedConfig, RasterSource, StacSource
from ..errors import InputError, Problem, StoreError
from ..grid import Grid
from ..variables import Variable
from ..vector import located
from .raster import MosaicJob, RasterFile


@dataclass(frozen=True)
class StacFile(RasterFile):
    """A raster file that is an item's asset: the item's id and `updated` decide its chunks too."""

    item: str = ""


def region_bbox(grid: Grid) -> tuple[float, float, float, float]:
    """The region's bounding box in lon/lat (west, south, east, north), rounded outward to 1e-6°."""
    b = grid.region.to_crs("EPSG:4326").boundingbox
    down, up = (lambda v: math.floor(v * 1e6) / 1e6), (lambda v: math.ceil(v * 1e6) / 1e6)
    return down(b.left), down(b.bottom), up(b.right), up(b.top)


def source_name(spec: StacSource, cfg: LoadedConfig) -> str:
    """The catalogue or API the items come from, as messages name it."""
    if spec.api is not None:
        return store.redact(spec.api)
    return store.redact(spec.catalog) if store.is_url(spec.catalog) else str(cfg.resolve(spec.catalog))


def search_params(spec: StacSource, bbox: tuple[float, ...]) -> dict[str, str]:
    """The GET /search query: collection, the region's bbox, datetime, limit, query and filter."""
    collections = [spec.collection] if isinstance(spec.collection, str) else list(spec.collection)
    params = {"collections": ",".join(collections), "bbox": ",".join(f"{v:.6f}" for v in bbox), "limit": str(spec.limit)}
    if spec.datetime:
        params["datetime"] = stacread.interval_text(spec.datetime)
    if spec.query is not None:
        params["query"] = json.dumps(spec.query, separators=(",", ":"))
    if spec.filter is not None:
        cql_json = not isinstance(spec.filter, str)
        params["filter"] = json.dumps(spec.filter, separators=(",", ":")) if cql_json else spec.filter
        params["filter-lang"] = "cql2-json" if cql_json else "cql2-text"
    return params


def find_items(spec: StacSource, cfg: LoadedConfig, grid: Grid, var: str) -> tuple[list[stacread.StacItem],
                                                                                   list[Problem]]:
    """The items for the region and datetime, each checked (asset, datetime); their problems apart."""
    bbox = region_bbox(grid)
    name = source_name(spec, cfg)
    if spec.api is not None:
        found = stacread.search_items(spec.api, search_params(spec, bbox))
    else:
        root = spec.catalog if store.is_url(spec.catalog) else str(cfg.resolve(spec.catalog))
        span = stacread.interval(spec.datetime) if spec.datetime else (None, None)
        found = [(f, d) for f, d in stacread.catalogue_items(root)
                 if stacread.intersects(f, bbox) and stacread.within(f, span)]
    if not found:
        when = f", datetime {spec.datetime}" if spec.datetime else ""
        raise InputError(f"no STAC item for the region (bbox {', '.join(f'{v:.6f}' for v in bbox)}{when}; "
                         f"inputs.{var} in {cfg.path.name})", name)
    items, problems, seen = [], [], set()
    for feature, doc in found:
        item = stacread.item_of(feature, doc, spec.asset, problems)
        if item is not None and item.id not in seen:  # an item listed twice is one layer
            seen.add(item.id)
            items.append(item)
    return items, problems


def load_stac(var: str, variable: Variable, spec: StacSource, cfg: LoadedConfig, grid: Grid, opts):
    """The V_i layer of the items' assets (see `loaders._raster`, whose checks each asset passes)."""
    from .loaders import inspect_raster, tiled_layer

    items, rejected = find_items(spec, cfg, grid, var)
    as_raster = RasterSource(kind="raster", path="", band=spec.band, resampling=spec.resampling, scale=spec.scale,
                             nodata=spec.nodata)
    files: list[StacFile] = []
    for item in items:
        problems: list[Problem] = []
        path = store.Url(item.href) if store.is_url(item.href) else Path(item.href)  # a Url prints redacted
        try:
            f = inspect_raster(path, as_raster, variable, grid, problems, opts.raster_checks, opts.warnings)
        except FileNotFoundError:
            f, problems = None, [Problem(str(path), "not found")]
        except StoreError as e:  # the store refused, lacks or ignores the asset: its own exit code, its item named
            raise type(e)([Problem(f"{p.where} (asset of {item.where})", p.what) for p in e.problems]) from None
        if f is not None:  # dated by its item, not by a tag in the file
            values = {k.name: getattr(f, k.name) for k in fields(RasterFile)}
            files.append(StacFile(**{**values, "acquired": item.acquired}, item=item.identity))
        rejected.extend(Problem(f"{path} (asset of {item.where})", p.what) for p in problems)
    if rejected and (not opts.lenient or not files):
        raise InputError(rejected)
    files.sort(key=lambda f: (f.acquired, f.path))

    def job(idx):
        gbox = grid.tile_geobox(idx)
        return MosaicJob(tuple(f for f in files if f.footprint.intersects(gbox.extent)), gbox, spec.resampling)

    token = tokenize(var, spec, [(str(f.path), f.sha256, f.acquired, f.item) for f in files], grid.fingerprint())
    paths = [located(f.path) for f in files]
    layer = tiled_layer(var, f"stac-{var}", grid, job, token, paths, rejected)
    layer.acquired = dict(zip(paths, (f.acquired for f in files)))
    return layer

