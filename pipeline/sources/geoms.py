"""Vector evidence on the grid: features in the grid CRS, indexed so each chunk gets only its own."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from odc.geo.geobox import GeoBox

from ..errors import InputError, Problem
from ..grid import Grid
from ..variables import Variable
from ..vector import (POLYGONS, PointColumns, empty_layer_problem, field_names, geometry_type_problem,
                      read_vector, repair_geometries, to_crs)


@dataclass(frozen=True)
class Features:
    """Geometries (grid CRS) with one float value each, indexed for per-chunk queries."""

    geoms: np.ndarray  # shapely geometries
    values: np.ndarray  # float64

    @cached_property
    def tree(self) -> shapely.STRtree:
        return shapely.STRtree(self.geoms)

    def near(self, gbox: GeoBox, margin: float = 0.0) -> np.ndarray:
        """Indices (in file order) of features within `margin` metres of a chunk."""
        b = gbox.extent.boundingbox
        box = shapely.box(b.left - margin, b.bottom - margin, b.right + margin, b.top + margin)
        return np.sort(self.tree.query(box, predicate="intersects"))

    def digest(self) -> str:
        h = hashlib.sha256()
        h.update(b"".join(shapely.to_wkb(self.geoms)))
        h.update(self.values.tobytes())
        return h.hexdigest()


def load_frame(path: Path, grid: Grid, layer: str | None, where: str | None,
               columns: list[str] | None, problems: list[Problem], allowed: tuple[str, ...] = POLYGONS,
               source: str = "polygons source", allow_empty: bool = False,
               points: PointColumns | None = None) -> gpd.GeoDataFrame | None:
    """Read, check CRS, features and geometry types, repair geometries, check overlap; return
    the frame in the grid CRS. `points`: how a CSV holds its points.

    An empty layer is refused unless `allow_empty` (an empty soil layer would read as "no
    contamination"). Problems are appended (naming the file); None when the file is unusable.
    """
    try:
        frame = read_vector(path, layer=layer, where=where, columns=columns, points=points)
    except InputError as e:
        problems.extend(e.problems)
        return None
    missing = [c for c in columns or [] if c not in frame.columns]
    if missing:  # the frame holds only the columns asked for: list the file's own
        problems.append(Problem(str(path), missing_field_problem(missing, field_names(path, layer))))
        return None
    if frame.crs is None:
        problems.append(Problem(str(path), "has no CRS (add a .prj or write it with a CRS)"))
        return None
    if len(frame) == 0 and not allow_empty:
        problems.append(Problem(str(path), empty_layer_problem(path, layer, where) +
                                "; set allow_empty = true if no features is expected"))
        return None
    frame, bad = repair_geometries(frame, path)
    problems.extend(Problem(str(path), m) for m in bad)
    if bad:
        return None
    if msg := geometry_type_problem(frame, allowed, source):
        problems.append(Problem(str(path), msg))
        return None
    try:
        frame = to_crs(frame, grid.crs.wkt, path, f"the grid's {grid.crs}")
    except InputError as e:
        problems.extend(e.problems)
        return None
    if len(frame) and not shapely.intersects(frame.geometry.values, grid.region.geom).any():
        problems.append(Problem(str(path), f"no feature overlaps the region of grid {grid.name!r}"))
        return None
    return frame


def missing_field_problem(missing: list[str], fields: list[str]) -> str:
    """"has no field 'count' (fields: …)", naming a field that differs only in case."""
    lower = {f.lower(): f for f in fields}
    near = [lower[m.lower()] for m in missing if m.lower() in lower]
    hint = f"; did you mean {', '.join(map(repr, near))}? (field names are case-sensitive)" if near else ""
    return f"has no field {', '.join(map(repr, missing))} (fields: {', '.join(fields) or 'none'}){hint}"


def numeric_values(frame: gpd.GeoDataFrame, column: str, path: Path, var: Variable,
                   problems: list[Problem]) -> np.ndarray | None:
    """A numeric field as float64, checked against the variable's valid range."""
    try:
        values = frame[column].astype("float64").to_numpy()
    except (TypeError, ValueError):
        problems.append(Problem(str(path), f"field {column!r} is not numeric"))
        return None
    if np.isnan(values).any():
        problems.append(Problem(str(path), f"field {column!r} is empty in {int(np.isnan(values).sum())} feature(s)"))
        return None
    if len(values) and (msg := var.out_of_range(values.min(), values.max())):
        problems.append(Problem(str(path), f"field {column!r}: {msg}"))
        return None
    return values


def no_class(classes, field: str, path: Path, fix: str) -> Problem | None:
    """A problem when features have no class in `field` (NULL or blank): a lookup cannot place
    them (NumPy cannot even sort them among the names), and guessing one would invent evidence."""
    blank = classes.isna() | (classes.astype(str).str.strip() == "")
    if not (n := int(blank.sum())):
        return None
    return Problem(str(path), f"{n} feature{'s' * (n > 1)} {'have' if n > 1 else 'has'} no {field} (NULL or "
                              f"blank): {fix}")
