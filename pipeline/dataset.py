"""Products as one lazy, georeferenced `xarray.Dataset`, for notebooks: a finished run's
(`open_products`), or a config's, computed on first use without writing anything (`lazy`).

Read chunk by chunk from the published COGs (or products.zarr) on first use (dask),
georeferenced with odc-geo's accessor (`ds.odc.geobox`); float nodata reads as NaN, as the
products are computed.
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
from .readback import ReadBack

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
    if any(p.get("variable") for p in products.values()):  # [output] format = "zarr" (issue #12)
        return _open_store(out, record)
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


def lazy(config: str | Path, grid: str | Path | None = None):
    """The products of `config` (on its grid, or `grid`) as a lazy Dataset: the run's own
    per-chunk jobs, computed only for the cells asked for, nothing written. The inputs are
    read and checked first, as by `minemap run` (a bad one raises MinemapError)."""
    from .engine.plan import load_inputs
    from .products import PRODUCTS, build_products, product_equation

    inputs = load_inputs(config, grid)
    cfg = inputs.cfg
    variables = {name: (array, PRODUCTS[name].nodata, {"units": PRODUCTS[name].unit,
                                                        "equation": product_equation(name, cfg)})
                 for name, array in build_products(cfg, inputs.grid, inputs.layers).items()}
    return georeferenced(variables, inputs.grid.geobox, {"grid": inputs.grid.name, "config": str(cfg.path),
                                                         "warnings": [str(w) for w in inputs.warnings]})


def _open_store(out: Path, record: dict):
    """The run's products.zarr: values as stored (float nodata is NaN there; codes keep 255, with
    a `nodata` attribute, as read from the GeoTIFFs), unit and equation from run.json."""
    import odc.geo.xr  # noqa: F401  (the .odc accessor)
    import xarray as xr

    products = record["products"]
    store = out / next(iter(products.values()))["file"]
    try:
        ds = xr.open_zarr(store, mask_and_scale=False, decode_coords="all")
    except (OSError, ValueError, KeyError) as e:
        raise InputError([Problem(str(store), f"products store listed in run.json cannot be opened: {e}")]) from None
    for name, p in products.items():
        var = ds[p["variable"]]
        var.attrs.update(units=p.get("unit", ""), equation=p.get("equation", ""),
                         nodata=float("nan") if var.dtype.kind == "f" else var.attrs.get("_FillValue"))
    ds.attrs.update(minemap_version=record.get("minemap_version", ""), created_utc=record.get("created_utc", ""),
                    grid=record["grid"].get("name", ""))
    return ds[[p["variable"] for p in products.values()]]


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
