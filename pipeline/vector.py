"""Reading vector layers and class tables, turning library failures into InputError."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
from pyogrio.errors import CRSError, DataLayerError, DataSourceError, FieldError
from pyproj.exceptions import ProjError

from .errors import InputError


def read_vector(path: str | Path, layer: str | None = None, where: str | None = None,
                columns: list[str] | None = None) -> gpd.GeoDataFrame:
    """Read a vector layer; missing, corrupt or unreadable files raise InputError naming the file."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    try:
        frame = pyogrio.read_dataframe(path, layer=layer, where=where, columns=columns)
    except CRSError as e:  # before DataSourceError, its base class
        prj = path.with_suffix(".prj")
        text = f" ({crs_text(prj.read_text(errors='replace'))})" if prj.is_file() else ""
        raise InputError(f"its CRS{text} cannot be used: {_first_line(e)}", path) from None
    except (DataSourceError, DataLayerError) as e:
        raise InputError(f"cannot read vector data: {_first_line(e)}", path) from None
    except FieldError as e:
        raise InputError(f"field problem: {_first_line(e)}", path) from None
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry is None:
        raise InputError("has no geometry column", path)
    return frame


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
            layer = str(pyogrio.list_layers(path)[0][0])
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
    path = Path(path)
    if not path.exists():
        raise InputError("table not found", path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
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
