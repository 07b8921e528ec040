"""Turn each config source into a lazy layer on the grid, checking its inputs on the way.

Every loader reads its files once in the driver (metadata, vectors), reports all problems it
finds at once, and returns a dask array whose chunks are independent picklable jobs.
"""

from __future__ import annotations

import glob
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import dask.array as da
import numpy as np
import rasterio
import shapely
from dask.base import tokenize
from odc.geo.crs import CRSError as OdcCRSError
from odc.geo.geobox import GeoBox
from pyproj.exceptions import ProjError
from rasterio.errors import RasterioError

from .. import store
from ..config import (ConstantSource, CoverageSource, DensitySource, LoadedConfig, PolygonSource,
                      ProductSource, RasterSource, StacSource)
from ..assessment import density_at_records
from ..errors import InputError, Problem
from ..grid import Grid
from ..tiles import Index, TileJob, job_fingerprint, tiled_array
from ..variables import VARIABLES, Variable
from ..vector import POINTS, POLYGONS, PointColumns, crs_text, located, read_table, table_column
from .coverage import CoverageJob, site_area_km2
from .density import DensityJob
from .geoms import Features, load_frame, no_class, numeric_values
from .polygons import BurnJob, lookup
from .raster import MosaicJob, RasterFile, acquisition_time
from .stac import load_stac


@dataclass
class Layer:
    """One variable on the grid: a lazy float32 array, the files it was made from, and a
    fingerprint per chunk (what decides that chunk's values) for incremental updates."""

    variable: str
    array: da.Array
    files: list[Path | str] = field(default_factory=list)  # str: an object's URL (a STAC asset)
    rejected: list[Problem] = field(default_factory=list)  # raster files left out (lenient mode)
    jobs: dict[Index, TileJob] = field(default_factory=dict)
    salt: str = ""  # what else decides the values (a constant, a unit factor)
    extent: dict[Index, TileJob] = field(default_factory=dict)  # where the source has information
    known: da.Array | None = None  # 1 inside the extent, 0 outside (None: no extent)
    at_records: np.ndarray | None = None  # density sources: the density at each record (L_sat = "auto")
    records: Features | None = None  # density sources: the records with a count > 0 (direct evidence)
    acquired: dict[Path | str, float] = field(default_factory=dict)  # file → acquisition time known without it (STAC)

    def fingerprint(self, idx: Index) -> str:
        job = self.jobs.get(idx)
        fp = f"{self.salt}:{job_fingerprint(job) if job is not None else ''}"
        if idx in self.extent:
            fp += f":extent {job_fingerprint(self.extent[idx])}"
        return fp


def tiled_layer(var: str, name: str, grid: Grid, make_job: Callable[[Index], TileJob], token: str,
                files: list[Path | str], rejected: list[Problem] | None = None, dtype: str = "float32") -> Layer:
    jobs = {idx: make_job(idx) for idx in grid.tile_ids()}
    return Layer(var, tiled_array(name, grid, jobs, dtype=np.dtype(dtype), token=token), files, rejected or [], jobs)


def file_identity(path: Path | str) -> str:
    """What tells `update` a file changed: a local file's SHA-256; an object's ETag, size and
    last-modified time (from a HEAD: nothing is downloaded to hash it)."""
    return store.fingerprint(path) if store.is_url(path) else file_sha256(path)


def file_sha256(path: Path, block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(block):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class LoadOptions:
    """How strict loading is, and what is known of raster files from the last run."""

    lenient: bool = False  # leave unusable raster files out (listed) instead of failing
    # path → {size, mtime_ns, ctime_ns, ino, band, sha256, min, max}: unchanged files are not read
    # and hashed again
    raster_checks: dict[str, dict] = field(default_factory=dict)
    # things the user should know that do not stop a run (printed as `warning:`, kept in run.json)
    warnings: list[Problem] = field(default_factory=list)


def load_layer(var: str, spec, cfg: LoadedConfig, grid: Grid, opts: LoadOptions | None = None) -> Layer | None:
    """The layer for `var`; raises InputError listing every problem found. None for a product."""
    opts = opts or LoadOptions()
    variable = VARIABLES[var]
    if isinstance(spec, ProductSource):
        return None
    if unit := unit_problem(var, variable, spec, cfg):
        raise InputError([unit])
    if isinstance(spec, ConstantSource):
        if msg := variable.out_of_range(spec.value, spec.value):
            raise InputError(msg, f"{cfg.path}: inputs.{var}")
        return Layer(var, da.full(grid.shape, spec.value, chunks=grid.chunks, dtype=np.float32),
                     salt=f"constant {spec.value!r}")
    loader = {RasterSource: _raster, StacSource: load_stac, PolygonSource: _polygons, DensitySource: _density,
              CoverageSource: _coverage}[type(spec)]
    if isinstance(spec, DensitySource) and getattr(spec, "extent", None) is None:
        opts.warnings.append(Problem(f"{cfg.path}: inputs.{var}", "no `extent`: absence of records will be read "
                                     "as absence of mines (set extent = \"FILE\", the surveyed area)"))
    problems: list[Problem] = []
    extent = _extent_jobs(var, spec, cfg, grid, problems)
    try:
        layer = loader(var, variable, spec, cfg, grid, opts)
    except InputError as e:
        raise InputError(e.problems + problems) from None
    if problems:
        raise InputError(problems)
    if extent is not None:
        layer.extent, path, token = extent
        layer.files.append(path)
        layer.known = tiled_array(f"extent-{var}", grid, layer.extent, dtype=np.uint8, token=token)
        # records outside the extent still count: a lower bound there, never dropped (issue #20)
        outside = outside_unless_recorded if isinstance(spec, DensitySource) else outside_nan
        layer.array = da.map_blocks(outside, layer.array, layer.known, dtype=np.float32)
    return layer


# --- units: what a source kind yields must be what the variable means -------------------

COVERAGE_UNITS = {"fraction": "1", "percent": "%", "km2": "km²", "site_km2": "km²"}  # `units` → unit yielded


def unit_problem(var: str, variable: Variable, spec, cfg: LoadedConfig) -> Problem | None:
    """A problem when a density or coverage source cannot give `var`'s unit, checked before any
    file is read: a density yields items per km² (unbounded), so bound to a coefficient such as
    V_i it would lift P_c far above 1; a coverage share read as a percentage is 100 times too small."""
    key = f"{cfg.path}: inputs.{var}"
    what = f"{var} ({variable.meaning}) is {_unit_text(variable)}"
    if isinstance(spec, DensitySource) and not variable.unit.endswith("/km²"):
        return Problem(key, f"a density source yields items per km² (0 and up), but {what}: bind the "
                            f"records to L (mines/km², from which H_m is derived), and give {var} a raster, "
                            f"polygons or constant source")
    if isinstance(spec, CoverageSource) and COVERAGE_UNITS[spec.units] != variable.unit:
        fits = " or ".join(f'units = "{u}"' for u, unit in COVERAGE_UNITS.items() if unit == variable.unit)
        other = "density" if variable.unit.endswith("/km²") else "raster, polygons or constant"
        fix = f"set {fits}" if fits else f"a coverage source cannot give {var}: use a {other} source"
        return Problem(key, f"units = \"{spec.units}\" yields {_unit_words(COVERAGE_UNITS[spec.units])}, "
                            f"but {what}: {fix}")
    return None


def _unit_words(unit: str) -> str:
    return {"1": "a share (0–1)", "%": "a percentage (0–100)", "km²": "km²"}.get(unit, unit)


def _unit_text(variable: Variable) -> str:
    return f"a coefficient in {variable.range_text}" if variable.unit == "1" else f"in {variable.unit}"


# --- extent: where a vector source has information ---------------------------------------

def _extent_jobs(var: str, spec, cfg: LoadedConfig, grid: Grid,
                 problems: list[Problem]) -> tuple[dict[Index, BurnJob], Path, str] | None:
    """Per chunk, the extent polygons touching it burnt as 1 by cell centre (None: no extent)."""
    if getattr(spec, "extent", None) is None:
        return None
    path = cfg.resolve(spec.extent)
    # polygons, never empty: an empty extent would make the whole variable unknown
    frame = load_frame(path, grid, spec.extent_layer, None, None, problems, source=f"the extent of inputs.{var}")
    if frame is None:
        return None
    geoms = frame.geometry.values
    feats = Features(geoms, np.ones(len(geoms)))
    job = _burn_jobs(feats, grid, False, 0, "uint8")
    return {idx: job(idx) for idx in grid.tile_ids()}, path, tokenize(str(path), feats.digest(), grid.fingerprint())


def outside_nan(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """NaN where the extent does not reach (`known` 0): no information is not a zero."""
    return np.where(known == 1, values, np.float32(np.nan)).astype(np.float32, copy=False)


def outside_unless_recorded(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """A density outside its extent: NaN where no record reaches (absence there says nothing),
    the records' own density where one does (a lower bound: others may lie unrecorded)."""
    return np.where((known == 1) | (values > 0), values, np.float32(np.nan)).astype(np.float32, copy=False)


# --- raster -------------------------------------------------------------------------------

def _raster(var: str, variable: Variable, spec: RasterSource, cfg: LoadedConfig, grid: Grid,
            opts: LoadOptions) -> Layer:
    pattern = cfg.resolve(spec.path)
    if store.is_url(pattern):  # an s3:// glob is listed in the bucket; a plain URL is taken as it is
        paths = store.listing(pattern) if store.has_glob(pattern) else [pattern]
    else:
        pattern = str(pattern)
        paths = sorted(Path(p) for p in glob.glob(pattern))
    if not paths:
        raise InputError(f"no file matches (inputs.{var}.path in {cfg.path.name})", pattern)
    files, rejected = [], []
    for path in paths:
        problems: list[Problem] = []
        f = inspect_raster(path, spec, variable, grid, problems, opts.raster_checks, opts.warnings)
        if f is not None:
            files.append(f)
        rejected.extend(problems)
    if rejected and (not opts.lenient or not files):
        raise InputError(rejected)
    files.sort(key=lambda f: (f.acquired, f.path))

    def job(idx):
        gbox = grid.tile_geobox(idx)
        mine = tuple(f for f in files if f.footprint.intersects(gbox.extent))
        return MosaicJob(mine, gbox, spec.resampling)

    token = tokenize(var, spec, [(str(f.path), f.sha256, f.acquired) for f in files], grid.fingerprint())
    layer = tiled_layer(var, f"raster-{var}", grid, job, token, [located(f.path) for f in files], rejected)
    if spec.time_tag:  # read from each file's tags here: "data as of" need not open them again
        layer.acquired = {located(f.path): f.acquired for f in files}
    return layer


def inspect_raster(path: Path | str, spec: RasterSource, variable: Variable, grid: Grid,
                   problems: list[Problem], checks: dict[str, dict] | None = None,
                   warnings: list[Problem] | None = None) -> RasterFile | None:
    """Check one raster (readable, CRS, overlap, value range, zero padding) and describe it for
    chunk jobs.

    `checks` remembers each file's hash and value range by size, modification and change time
    and inode, so an unchanged file is not read in full again; new results are added to it. The
    change time and inode cannot be set back by a copy or rewrite (os.utime sets only mtime). An
    object in a store is remembered by its ETag, size and last-modified time instead (a HEAD).
    """
    where = str(path)  # a URL redacted: state and run.json never hold a signature
    checks = {} if checks is None else checks
    ident = {**identity_of(path), "band": spec.band}
    known = checks.get(where)
    if known and ({k: known.get(k) for k in ident} != ident or known.get("nodata") != spec.nodata):
        known = None
    try:
        with rasterio.open(store.gdal_path(path) if store.is_url(path) else path) as ds:
            if ds.crs is None:
                problems.append(Problem(where, "has no CRS"))
                return None
            if not 1 <= spec.band <= ds.count:
                problems.append(Problem(where, f"has no band {spec.band} (it has {ds.count})"))
                return None
            try:
                footprint = GeoBox(ds.shape, ds.transform, ds.crs).extent.to_crs(grid.crs)
            except (ProjError, OdcCRSError) as e:
                problems.append(Problem(where, f"its CRS {crs_text(ds.crs)} cannot be transformed to the grid's "
                                               f"{grid.crs}: {str(e).splitlines()[0]}"))
                return None
            if not footprint.intersects(grid.region):
                problems.append(Problem(where, f"does not overlap the region of grid {grid.name!r}"))
                return None
            offset, span = _scaling(spec.scale, ds.dtypes[spec.band - 1])
            nodata = ds.nodata if spec.nodata is None else spec.nodata
            vmin, vmax = (known["min"], known["max"]) if known else _valid_range(ds, spec.band, nodata)
            padded = None if nodata is not None else known.get("zero_border") if known else None
            if padded is None and nodata is None:
                padded = _zero_border(ds, spec.band)
            acquired = acquisition_time(ds.tags(), spec.time_tag, path)
    except RasterioError as e:
        if store.is_url(path):
            store.raise_gdal(path, e)  # 403, 404, no answer: the store's own error, not a bad file
        problems.append(Problem(where, f"corrupt or unreadable raster: {str(e).splitlines()[0]}"))
        return None
    if vmin is None:
        problems.append(Problem(where, "has no valid pixels"))
        return None
    lo, hi = (vmin - offset) / span, (vmax - offset) / span
    if msg := variable.out_of_range(lo, hi):
        scaled = "" if (offset, span) == (0.0, 1.0) else (
            f" after dividing by {span:g} (scale = \"auto\": the maximum of its integer type)"
            if spec.scale == "auto" else f" after scaling by {spec.scale}")
        problems.append(Problem(where, msg + scaled))
        return None
    if padded and vmax > 0 and warnings is not None:
        warnings.append(Problem(where, f"has no nodata value and every pixel of its border is exactly 0: if that is "
                                       f"padding around the survey, it is read as {variable.name} = 0 (surveyed, "
                                       f"nothing found) and counts as evidence there. Set nodata = 0 in "
                                       f"[inputs.{variable.name}], or mark the file: gdal_edit.py -a_nodata 0 "
                                       f"{path.name}"))
    sha = known["sha256"] if known else file_identity(path)
    checks[where] = {**ident, "sha256": sha, "min": vmin, "max": vmax, "nodata": spec.nodata,
                     "zero_border": padded}
    return RasterFile(path if store.is_url(path) else str(path), spec.band, nodata, offset, span, acquired,
                      footprint, sha)


STAT_KEYS = ("size", "mtime_ns", "ctime_ns", "ino", "band")  # what must match for a remembered check to count
URL_KEYS = ("size", "etag", "modified")  # the same for an object in a store (its HEAD)


def stat_values(st) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def identity_of(path: Path | str) -> dict:
    """What must be unchanged for a remembered check of a file to count: its stat, or its HEAD."""
    if store.is_url(path):
        h = store.head(path)  # a 404, 403 or silence ends here, with the store's own error
        return dict(zip(URL_KEYS, (h.size, h.etag, h.modified)))
    return dict(zip(STAT_KEYS, stat_values(Path(path).stat())))


def _scaling(scale, dtype: str) -> tuple[float, float]:
    if scale == "none":
        return 0.0, 1.0
    if scale == "auto":  # integer files: v / the type's maximum, so 0 stays 0 (negatives fall out of range)
        if np.issubdtype(np.dtype(dtype), np.integer):
            return 0.0, float(np.iinfo(np.dtype(dtype)).max)
        return 0.0, 1.0
    lo, hi = scale
    return float(lo), float(hi - lo)


def _valid_range(ds, band: int, nodata) -> tuple[float | None, float | None]:
    """Min and max of valid pixels, read block-row by block-row to keep memory small."""
    vmin, vmax = np.inf, -np.inf
    rows = max(1, min(ds.height, (1 << 24) // max(ds.width, 1)))
    for r0 in range(0, ds.height, rows):
        a = ds.read(band, window=((r0, min(r0 + rows, ds.height)), (0, ds.width)))  # native type: fast
        ok = np.isfinite(a) if a.dtype.kind == "f" else np.ones(a.shape, bool)
        if nodata is not None and not np.isnan(nodata):
            ok &= a != a.dtype.type(nodata)
        if ok.any():
            vmin, vmax = min(vmin, float(a[ok].min())), max(vmax, float(a[ok].max()))
    return (None, None) if vmin == np.inf else (float(vmin), float(vmax))


def _zero_border(ds, band: int) -> bool:
    """Whether every pixel of the outer rows and columns is exactly 0: the padding a raster
    without a nodata value gets when cropped or reprojected (four edge reads, not the file)."""
    h, w = ds.height, ds.width
    edges = (((0, 1), (0, w)), ((h - 1, h), (0, w)), ((0, h), (0, 1)), ((0, h), (w - 1, w)))
    return all(not ds.read(band, window=edge).any() for edge in edges)


# --- polygons -----------------------------------------------------------------------------

def _polygons(var: str, variable: Variable, spec: PolygonSource, cfg: LoadedConfig, grid: Grid,
              opts: LoadOptions) -> Layer:
    path = cfg.resolve(spec.path)
    problems: list[Problem] = []
    column = spec.field or spec.class_field
    frame = load_frame(path, grid, spec.layer, spec.where, [column], problems, allow_empty=spec.allow_empty)
    values = None
    if frame is not None and spec.field:
        values = numeric_values(frame, spec.field, path, variable, problems)
    elif frame is not None:
        values = _class_values(frame[spec.class_field], spec, var, variable, cfg, path, problems)
    if problems:
        raise InputError(problems)
    if spec.fill is not None and (msg := variable.out_of_range(spec.fill, spec.fill)):
        raise InputError(f"fill: {msg}", f"{cfg.path}: inputs.{var}")
    fill = np.nan if spec.fill is None else spec.fill
    files = [path] + ([cfg.resolve(spec.table)] if spec.table else [])
    if spec.field:
        feats = Features(frame.geometry.values, values)
        token = tokenize(var, spec, feats.digest(), grid.fingerprint())
        return tiled_layer(var, f"polygons-{var}", grid, _burn_jobs(feats, grid, spec.all_touched, fill), token, files)
    # class tables: burn class codes once per file (shared by S_t, D, T_s, B_r…), then look values up
    names, codes = np.unique(frame[spec.class_field].astype(str).str.strip().to_numpy(), return_inverse=True)
    lut = np.zeros(len(names), dtype=np.float32)
    lut[codes] = values
    feats = Features(frame.geometry.values, codes.astype(np.float64))
    token = tokenize(str(path), spec.layer, spec.where, spec.class_field, spec.all_touched, feats.digest(),
                     grid.fingerprint())
    dtype = "int16" if len(names) < 2**15 else "int32"  # codes −1 (none), 0…n−1
    layer = tiled_layer(var, "classes", grid, _burn_jobs(feats, grid, spec.all_touched, -1, dtype), token, files,
                        dtype=dtype)
    layer.array = layer.array.map_blocks(lookup, lut=lut, fill=fill, dtype=np.float32)
    layer.salt = f"lookup {lut.tolist()!r} fill {fill!r}"
    return layer


def _burn_jobs(feats: Features, grid: Grid, all_touched: bool, fill: float,
               dtype: str = "float32") -> Callable[[Index], BurnJob]:
    def job(idx: Index) -> BurnJob:
        gbox = grid.tile_geobox(idx)
        near = feats.near(gbox)
        return BurnJob(feats.geoms[near], feats.values[near], gbox, all_touched, fill, dtype)

    return job


def _class_values(classes, spec: PolygonSource, var: str, variable: Variable, cfg: LoadedConfig,
                  path: Path, problems: list[Problem]) -> np.ndarray | None:
    """Look each feature's class up in the CSV table; unknown classes and bad values are problems."""
    table_path = cfg.resolve(spec.table)
    column = spec.column or var
    try:
        lookup = table_column(read_table(table_path, spec.class_field), column, table_path)
    except InputError as e:
        problems.extend(e.problems)
        return None
    bad = {cls: v for cls, v in lookup.items() if variable.out_of_range(v, v)}
    for cls, v in bad.items():
        problems.append(Problem(str(table_path), f"class {cls!r}: {column} = {v:g} outside the valid "
                                                 f"range of {var} {variable.range_text}"))
    fix = (f"give each a class from {Path(spec.table).name}, or leave them out with "
           f"where = \"{spec.class_field} IS NOT NULL\"")
    if missing := no_class(classes, spec.class_field, path, fix):
        problems.append(missing)
        return None
    keys = classes.astype(str).str.strip()
    unknown = keys[~keys.isin(list(lookup))].value_counts()
    if len(unknown):
        listed = ", ".join(f"{k!r} ({n} feature{'s' * (n > 1)})" for k, n in unknown.items())
        problems.append(Problem(str(path), f"unknown {spec.class_field} {listed}: not in {table_path.name}"))
    if bad or len(unknown):
        return None
    return keys.map(lookup).to_numpy(dtype="float64")


# --- density ------------------------------------------------------------------------------

def _density(var: str, variable: Variable, spec: DensitySource, cfg: LoadedConfig, grid: Grid,
             opts: LoadOptions) -> Layer:
    problems: list[Problem] = []
    counts_var = Variable("count", "items recorded", "items", 0)
    point_xy, point_n, poly_g, poly_d, paths = [], [], [], [], []
    for p in spec.paths:
        path = cfg.resolve(p)
        paths.append(path)
        if (spec.x_field or spec.crs) and path.suffix.lower() != ".csv":
            problems.append(Problem(str(path), f"x_field, y_field and crs (inputs.{var}) are for CSV files; "
                                               "this file's own geometries and CRS are used"))
            continue
        columns = [] if spec.count is not None else [spec.count_field]
        frame = load_frame(path, grid, spec.layer, spec.where, columns, problems, POINTS + POLYGONS,
                           "density source", spec.allow_empty, PointColumns(spec.x_field, spec.y_field, spec.crs))
        if frame is None:
            continue
        counts = np.full(len(frame), spec.count) if spec.count is not None else \
            numeric_values(frame, spec.count_field, path, counts_var, problems)
        if counts is None:
            continue
        geoms = frame.geometry.values
        kinds = shapely.get_type_id(geoms)
        is_point = np.isin(kinds, (0, 4))  # the others are polygons (load_frame checked)
        is_poly = ~is_point
        pts, idx = shapely.get_parts(geoms[is_point], return_index=True)
        per_part = counts[is_point][idx] / np.bincount(idx)[idx] if len(idx) else np.zeros(0)
        point_xy.append(shapely.get_coordinates(pts))
        point_n.append(per_part)
        area_km2 = shapely.area(geoms[is_poly]) / 1e6
        poly_g.append(geoms[is_poly])
        poly_d.append(counts[is_poly] / np.where(area_km2 > 0, area_km2, np.inf))
    if problems:
        raise InputError(problems)
    xy, n = np.concatenate(point_xy), np.concatenate(point_n)
    points = Features(shapely.points(xy), n)
    polys = Features(np.concatenate(poly_g), np.concatenate(poly_d))
    bandwidth = spec.bandwidth_m

    def job(idx):
        gbox = grid.tile_geobox(idx)
        near_pts = points.near(gbox, margin=bandwidth + grid.resolution)
        near_polys = polys.near(gbox)
        return DensityJob(xy[near_pts], n[near_pts], polys.geoms[near_polys], polys.values[near_polys],
                          gbox, bandwidth)

    token = tokenize(var, spec, points.digest(), polys.digest(), grid.fingerprint())
    layer = tiled_layer(var, f"density-{var}", grid, job, token, paths)
    layer.at_records = density_at_records(xy, n, bandwidth, polys.values)
    recorded_pts, recorded_polys = n > 0, polys.values > 0
    layer.records = Features(np.concatenate([points.geoms[recorded_pts], polys.geoms[recorded_polys]]),
                             np.ones(int(recorded_pts.sum() + recorded_polys.sum())))
    return layer


# --- coverage -----------------------------------------------------------------------------

def _coverage(var: str, variable: Variable, spec: CoverageSource, cfg: LoadedConfig, grid: Grid,
              opts: LoadOptions) -> Layer:
    path = cfg.resolve(spec.path)
    problems: list[Problem] = []
    frame = load_frame(path, grid, spec.layer, spec.where, [], problems, source="coverage source",
                       allow_empty=spec.allow_empty)
    if problems:
        raise InputError(problems)
    area = site_area_km2(frame) if spec.units == "site_km2" else None
    if msg := variable.out_of_range(*coverage_range(spec.units, grid, area)):
        raise InputError(f"units = \"{spec.units}\" yields {msg}", f"{cfg.path}: inputs.{var}")
    if area is not None:
        # each cell takes its site's whole area, so values do not depend on the cell size;
        # the largest site burns last (on top) where sites overlap
        order = np.argsort(area, kind="stable")
        sites = Features(frame.geometry.values[order], area[order])
        token = tokenize(var, "site_km2", str(path), spec.layer, spec.where, sites.digest(), grid.fingerprint())
        return tiled_layer(var, f"sites-{var}", grid, _burn_jobs(sites, grid, False, 0.0), token, [path])
    feats = Features(frame.geometry.values, np.zeros(len(frame)))
    factor = {"fraction": 1.0, "percent": 100.0, "km2": grid.cell_area_km2}[spec.units]

    def job(idx):
        gbox = grid.tile_geobox(idx)
        return CoverageJob(feats.geoms[feats.near(gbox)], gbox)

    # the token leaves out units and variable: C and A_c from one file share one computation
    token = tokenize(str(path), spec.layer, spec.where, feats.digest(), grid.fingerprint())
    layer = tiled_layer(var, "coverage", grid, job, token, [path])
    if factor != 1.0:
        layer.array = layer.array * np.float32(factor)
        layer.salt = f"x{factor!r}"
    return layer


def coverage_range(units: str, grid: Grid, site_km2: np.ndarray | None = None) -> tuple[float, float]:
    """The values a coverage source can take, known before computing: 0 (uncovered) to a whole
    cell, or to the largest site's km² for site_km2."""
    if units == "site_km2":
        return 0.0, float(np.max(site_km2, initial=0.0))
    return 0.0, {"fraction": 1.0, "percent": 100.0, "km2": grid.cell_area_km2}[units]
