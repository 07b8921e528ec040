"""Reading vector layers and class tables, turning library failures into InputError."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import geopandas as gpd
import pyogrio
import shapely
from pyogrio.errors import DataLayerError, DataSourceError, FieldError

from .errors import InputError


def read_vector(path: str | Path, layer: str | None = None, where: str | None = None,
                columns: list[str] | None = None) -> gpd.GeoDataFrame:
    """Read a vector layer; missing, corrupt or unreadable files raise InputError naming the file."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path)
    try:
        frame = pyogrio.read_dataframe(path, layer=layer, where=where, columns=columns)
    except (DataSourceError, DataLayerError) as e:
        raise InputError(f"cannot read vector data: {_first_line(e)}", path) from None
    except FieldError as e:
        raise InputError(f"field problem: {_first_line(e)}", path) from None
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry is None:
        raise InputError("has no geometry column", path)
    return frame


def repair_geometries(frame: gpd.GeoDataFrame, path: Path) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Repair invalid geometries with make_valid; return the frame and messages for the irreparable."""
    problems = []
    geoms = frame.geometry.values
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if missing.any():
        problems.append(f"{int(missing.sum())} feature(s) with no geometry (first at row {int(missing.argmax())})")
    invalid = ~shapely.is_valid(geoms) & ~missing
    if invalid.any():
        fixed = shapely.make_valid(geoms[invalid])
        bad = shapely.is_empty(fixed) | ~shapely.is_valid(fixed)
        if bad.any():
            problems.append(f"{int(bad.sum())} invalid geometr(y/ies) that cannot be repaired")
        frame = frame.copy()
        frame.loc[invalid, frame.geometry.name] = fixed
    return frame, problems


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
