"""Reading vector layers and class tables, turning library failures into InputError."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyogrio.errors import CRSError, DataLayerError, DataSourceError, FieldError
from pyproj import CRS
from pyproj.exceptions import ProjError

from . import store
from .errors import InputError


@dataclass(frozen=True)
class PointColumns:
    """Where a CSV holds its points: the x/y column names (None: found by their usual names)
    and the CRS of their values (None: EPSG:4326 for lon/lat columns, else refused)."""

    x: str | None = None
    y: str | None = None
    crs: str | None = None


# usual coordinate column pairs (matched ignoring case), lon/lat first: IMSMA, Excel, ArcGIS "Add XY"
LONLAT_PAIRS = (("lon", "lat"), ("longitude", "latitude"), ("long", "lat"), ("lng", "lat"))
XY_PAIRS = (("x", "y"), ("easting", "northing"), ("point_x", "point_y"), ("east", "north"))
LONLAT_CRS = "EPSG:4326"


def read_vector(path: str | Path, layer: str | None = None, where: str | None = None,
                columns: list[str] | None = None, points: PointColumns | None = None) -> gpd.GeoDataFrame:
    """Read a vector layer; missing, corrupt or unreadable files raise InputError naming the file.
    A CSV without a WKT column is read as points from its coordinate columns (`points`)."""
    path = located(path)
    if store.is_url(path):
        store.head(path)  # a missing, refused or silent object: its own error (exit 66, 77, 69)
    elif not path.exists():
        raise InputError("file not found", path)
    if path.suffix.lower() == ".csv":
        return read_csv_points(path, where, columns, points or PointColumns())
    return _read_layer(path, layer, where, columns)


def located(path: str | Path) -> Path | store.Url:
    """A local path as a Path, a URL as a `store.Url` (never through Path: it would lose a slash)."""
    return store.Url(path) if store.is_url(path) else Path(path)


def ogr(path: Path | str) -> Path | str:
    """What pyogrio opens: the path, or a URL's GDAL path (GDAL's store settings applied first)."""
    if not store.is_url(path):
        return path
    managed = {**dict.fromkeys(store.GDAL_RETRY), "AWS_S3_ENDPOINT": None, "AWS_HTTPS": None,
               "AWS_VIRTUAL_HOSTING": None}
    pyogrio.set_gdal_config_options({**managed, **store.gdal_options()})  # unset: the environment's own
    return store.gdal_path(path)


def _store_failure(path: Path | str, e: Exception) -> None:
    """Raise the store's own error when a GDAL failure on a URL is one (403, 404, no answer)."""
    if store.is_url(path):
        store.raise_gdal(path, e)


def _read_layer(path: Path, layer: str | None, where: str | None, columns: list[str] | None) -> gpd.GeoDataFrame:
    try:
        frame = pyogrio.read_dataframe(ogr(path), layer=layer, where=where, columns=columns)
    except CRSError as e:  # before DataSourceError, its base class
        prj = None if store.is_url(path) else path.with_suffix(".prj")
        text = f" ({crs_text(prj.read_text(errors='replace'))})" if prj is not None and prj.is_file() else ""
        raise InputError(f"its CRS{text} cannot be used: {_first_line(e)}", path) from None
    except (DataSourceError, DataLayerError) as e:
        _store_failure(path, e)
        raise InputError(f"cannot read vector data: {_first_line(e)}", path) from None
    except FieldError as e:
        raise InputError(f"field problem: {_first_line(e)}", path) from None
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry is None:
        raise InputError("has no geometry column", path)
    return frame


def field_names(path: Path, layer: str | None = None) -> list[str]:
    """The attribute fields of a layer as the file declares them ([] when it cannot be read)."""
    try:
        return [str(f) for f in pyogrio.read_info(ogr(path), layer=layer)["fields"]]
    except (DataSourceError, DataLayerError, OSError):
        return []


def coordinate_columns(path: Path, fields: list[str], points: PointColumns) -> tuple[str, str, str]:
    """The x and y columns of a CSV of points and the CRS of their values."""
    if (points.x is None) != (points.y is None):
        raise InputError("give both x_field and y_field (or neither: lon/lat, x/y… columns are found by name)",
                         path)
    if points.x is not None:
        gone = [c for c in (points.x, points.y) if c not in fields]
        if gone:
            raise InputError(f"has no column {', '.join(map(repr, gone))} (columns: {', '.join(fields)})", path)
        x, y, lonlat = points.x, points.y, False
    else:
        lower = {f.lower(): f for f in fields}
        found = [(lower[a], lower[b], pair in LONLAT_PAIRS) for pair in LONLAT_PAIRS + XY_PAIRS
                 for a, b in [pair] if a in lower and b in lower]
        if not found:
            raise InputError("a CSV of points needs coordinate columns: lon/lat, longitude/latitude, x/y or "
                             "easting/northing (any case), or set x_field and y_field on the source; "
                             f"its columns: {', '.join(fields) or 'none'}", path)
        x, y, lonlat = found[0]
    crs = points.crs or (LONLAT_CRS if lonlat else None)
    if crs is None:
        raise InputError(f"its coordinates ({x}, {y}) have no CRS: set crs = \"EPSG:…\" on the source "
                         f"(minemap init: --records-crs EPSG:…; EPSG:4326 is taken only for lon/lat columns)", path)
    return x, y, crs


def read_csv_points(path: Path, where: str | None, columns: list[str] | None,
                    points: PointColumns) -> gpd.GeoDataFrame:
    """A CSV's rows as points. Rows whose coordinates are empty, not numbers, or beyond lon/lat's
    range are refused (with their count and first line), never dropped."""
    try:
        info = pyogrio.read_info(ogr(path))
    except (DataSourceError, DataLayerError) as e:
        _store_failure(path, e)
        raise InputError(f"cannot read the CSV: {_first_line(e)}", path) from None
    fields = [str(f) for f in info["fields"]]
    if info.get("geometry_type"):  # a WKT column GDAL made geometry of: an ordinary layer
        frame = _read_layer(path, None, where, columns)
        return frame if frame.crs or not points.crs else frame.set_crs(points.crs)
    x, y, crs = coordinate_columns(path, fields, points)
    wanted = None if columns is None else list(dict.fromkeys([*columns, x, y]))
    try:  # AUTODETECT_TYPE: numbers as numbers (else every CSV field is text, also in `where`)
        table = pyogrio.read_dataframe(ogr(path), where=where, columns=wanted, fid_as_index=True,
                                       AUTODETECT_TYPE="YES")
    except (DataSourceError, DataLayerError, FieldError) as e:
        _store_failure(path, e)
        raise InputError(f"cannot read the CSV: {_first_line(e)}", path) from None
    try:
        geographic = CRS.from_user_input(crs).is_geographic
    except ProjError as e:
        raise InputError(f"crs {crs!r} is not a CRS PROJ knows: {_first_line(e)}", path) from None
    xs = pd.to_numeric(table[x], errors="coerce").to_numpy(dtype="float64")
    ys = pd.to_numeric(table[y], errors="coerce").to_numpy(dtype="float64")
    bad = ~(np.isfinite(xs) & np.isfinite(ys))
    if geographic:
        bad |= (np.abs(xs) > 180) | (np.abs(ys) > 90)
    if bad.any():
        first = int(np.argmax(bad))
        raise InputError(f"{int(bad.sum())} of {len(bad)} rows have no usable coordinates in columns {x}, {y} "
                         f"(first: line {int(table.index[first]) + 1}, {x} = {_cell(table[x].iloc[first])}, "
                         f"{y} = {_cell(table[y].iloc[first])}; {crs} values expected)", path)
    keep = [c for c in table.columns if columns is None or c in columns]
    return gpd.GeoDataFrame(table[keep].reset_index(drop=True), geometry=gpd.points_from_xy(xs, ys), crs=crs)


def _cell(value) -> str:
    """A CSV value as a message shows it (empty cells as "empty")."""
    return "empty" if value is None or (isinstance(value, float) and math.isnan(value)) or value == "" \
        else repr(value)


def repair_geometries(frame: gpd.GeoDataFrame, path: Path) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Repair invalid geometries with make_valid; return the frame and messages for the irreparable.

    A repaired polygon keeps only its polygonal part: make_valid turns a zero-area spike into a
    stray line beside the polygon, which no polygon source could use.
    """
    problems = []
    geoms = frame.geometry.values
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        problems.append(f"{int(missing.sum())} feature(s) with no geometry (first at row {int(missing.argmax())})")
    invalid = ~shapely.is_valid(geoms) & ~missing
    if invalid.any():
        fixed = shapely.make_valid(geoms[invalid])
        areal = np.isin(shapely.get_type_id(geoms[invalid]), POLYGON_IDS)
        fixed[areal] = [polygonal(g) for g in fixed[areal]]
        bad = shapely.is_empty(fixed) | ~shapely.is_valid(fixed)
        if bad.any():
            problems.append(f"{int(bad.sum())} invalid geometr(y/ies) that cannot be repaired")
        frame = frame.copy()
        frame.loc[invalid, frame.geometry.name] = fixed
    return frame, problems


POLYGON_IDS = (3, 6)  # shapely type ids of Polygon, MultiPolygon
POLYGONS = ("Polygon", "MultiPolygon")
POINTS = ("Point", "MultiPoint")


def polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """Only the areal parts of a geometry (a union or a repair can leave stray lines and points)."""
    parts = shapely.get_parts(geom)
    keep = parts[np.isin(shapely.get_type_id(parts), POLYGON_IDS)]
    return shapely.union_all(keep) if len(keep) else shapely.Polygon()


def geometry_type_problem(frame: gpd.GeoDataFrame, allowed: tuple[str, ...], source: str) -> str | None:
    """Why the frame's geometry types do not suit `source` (e.g. points given to a polygons
    source), or None when they do."""
    found = sorted(set(frame.geometry.geom_type.dropna()) - set(allowed))
    if not found:
        return None
    return f"has {'/'.join(found)} geometries; {source} needs {'/'.join(allowed)}"


def empty_layer_problem(path: Path, layer: str | None, where: str | None) -> str:
    """The message for a layer with no features (an empty layer is not "no contamination")."""
    if layer is None:
        try:
            layer = str(pyogrio.list_layers(ogr(path))[0][0])
        except (DataSourceError, IndexError):
            layer = path.stem
    return f"layer {layer!r} has 0 features" + (f" where {where}" if where else "")


def to_crs(frame: gpd.GeoDataFrame, crs, path: Path, what: str = "the grid's CRS") -> gpd.GeoDataFrame:
    """`frame` in `crs`; a CRS PROJ cannot transform becomes an InputError naming the file and the CRS."""
    try:
        return frame.to_crs(crs)
    except ProjError as e:  # pyproj's CRSError is one
        raise InputError(f"its CRS {crs_text(frame.crs)} cannot be transformed to {what}: {_first_line(e)}",
                         path) from None


def crs_text(crs, limit: int = 80) -> str:
    """A CRS as short text for messages: its EPSG code when it has one, else its (cut) WKT."""
    text = str(crs.to_string() if hasattr(crs, "to_string") else crs).strip()
    return text if len(text) <= limit else text[:limit] + "…"


def read_table(path: str | Path, key: str) -> dict[str, dict[str, str]]:
    """Read a CSV lookup table keyed by column `key`: {class: {column: text}}."""
    path = located(path)
    if not store.is_url(path) and not path.exists():
        raise InputError("table not found", path)
    try:
        if store.is_url(path):  # a 404, 403 or silence: the store's own error
            f = io.StringIO(store.read_bytes(path).decode("utf-8-sig"), newline="")
        else:
            f = path.open(newline="", encoding="utf-8-sig")
        with f:
            reader = csv.reader(f)
            header = next(reader, [])
            lines = [(reader.line_num, r) for r in reader if r]
    except (UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"not a readable CSV table: {e}", path) from None
    for line, r in lines:  # a comma in an unquoted text shifts every later column: refuse the row
        if len(r) != len(header):
            raise InputError(f"line {line} has {len(r)} fields, the header has {len(header)} "
                             f"(quote text holding commas: \"a, b\")", path)
    rows = [dict(zip(header, r)) for _, r in lines]
    if not rows or key not in rows[0]:
        raise InputError(f"table has no column {key!r}", path)
    table: dict[str, dict[str, str]] = {}
    for row in rows:
        cls = (row[key] or "").strip()
        if cls in table:
            raise InputError(f"class {cls!r} appears twice in column {key!r}", path)
        table[cls] = row
    return table


def table_column(table: dict[str, dict[str, str]], column: str, path: Path) -> dict[str, float]:
    """The numeric values of one table column; non-numbers raise InputError."""
    first = next(iter(table.values()))
    if column not in first:
        raise InputError(f"table has no column {column!r}", path)
    out = {}
    for cls, row in table.items():
        try:
            value = float(row[column])
        except (TypeError, ValueError):
            raise InputError(f"class {cls!r}: {column} = {row[column]!r} is not a number", path) from None
        if math.isnan(value):
            raise InputError(f"class {cls!r}: {column} is NaN", path)
        out[cls] = value
    return out


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
