"""The products of a finished run as one lazy, georeferenced `xarray.Dataset`, for notebooks.

Read chunk by chunk from the published COGs on first use (dask), georeferenced with odc-geo's
accessor (`ds.odc.geobox`); float nodata reads as NaN, as the products are computed.
"""

from __future__ import annotations

import json
from pathlib import Path

import dask.array as da
import rasterio
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from .errors import InputError, Problem
from .tiles import run_job
from .writers.geotiff import ReadBack

RUN_RECORD = "run.json"


def open_products(out: str | Path):
    """Every product of the run published in `out` (its run.json), as data variables of one lazy
    `xarray.Dataset` on the grid (x, y cell centres, `spatial_ref`); attrs carry unit and equation."""
    from odc.geo.geobox import GeoBox

    out = Path(out)
    path = out / RUN_RECORD
    try:
        record = json.loads(path.read_text())
        products, chunk = record["products"], int(record["grid"]["chunk"])
    except FileNotFoundError:
        raise InputError([Problem(str(path), "no run record: not the output folder of a finished minemap run")]) \
            from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError([Problem(str(path), f"not a readable minemap run record ({type(e).__name__}: {e})")]) \
            from None
    variables = {}
    for name, p in products.items():
        tif = out / p["file"]
        try:
            with rasterio.open(tif) as ds:
                shape, transform, crs, dtype, nodata = ds.shape, ds.transform, ds.crs, ds.dtypes[0], ds.nodata
        except rasterio.errors.RasterioIOError as e:
            raise InputError([Problem(str(tif), f"product listed in run.json cannot be opened: {e}")]) from None
        data = _lazy(str(tif), shape, dtype, nodata, chunk)
        variables[name] = (data, nodata, {"units": p.get("unit", ""), "equation": p.get("equation", "")})
        gbox = GeoBox(shape, transform, crs)
    return georeferenced(variables, gbox, {"minemap_version": record.get("minemap_version", ""),
                                           "created_utc": record.get("created_utc", ""),
                                           "grid": record["grid"].get("name", "")})


def georeferenced(variables: dict[str, tuple[da.Array, float, dict]], gbox, attrs: dict):
    """Arrays on one grid (name → (array, nodata of its files, attrs)) as a Dataset with x, y
    cell-centre coordinates and a `spatial_ref` grid mapping (odc-geo's); float nodata is NaN."""
    import xarray as xr
    from odc.geo.xr import wrap_xr

    return xr.Dataset({name: wrap_xr(data, gbox, nodata=float("nan") if data.dtype.kind == "f" else nodata, **extra)
                       for name, (data, nodata, extra) in variables.items()}, attrs=attrs)


def _lazy(path: str, shape: tuple[int, int], dtype: str, nodata: float, chunk: int) -> da.Array:
    """A dask array reading `path` in `chunk`-sized windows (picklable tasks: a path and numbers)."""
    rows = [min(chunk, shape[0] - r) for r in range(0, shape[0], chunk)]
    cols = [min(chunk, shape[1] - c) for c in range(0, shape[1], chunk)]
    name = f"minemap-product-{tokenize(path, shape, dtype, chunk)}"
    layer = {(name, i, j): (run_job, ReadBack(path, (slice(i * chunk, i * chunk + h), slice(j * chunk, j * chunk + w)),
                                               nodata))
             for i, h in enumerate(rows) for j, w in enumerate(cols)}
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[])
    return da.Array(graph, name, chunks=(tuple(rows), tuple(cols)), dtype=dtype)
