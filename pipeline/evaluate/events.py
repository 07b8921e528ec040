"""Known events for `minemap evaluate`: read, checked, and tied to the grid's cells.

Points score on the cell holding them; polygons on their riskiest cell among those whose centre
they hold (the cell holding the polygon's inner point when it holds no centre), the way a team
would rank a reported area by its worst part.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

from ..errors import InputError, Problem
from ..grid import Grid
from ..vector import empty_layer_problem, read_vector


@dataclass(frozen=True)
class Events:
    """`outcome` per event; each event's cells as (rows, cols) with `owner` the event index."""

    path: Path
    outcome: np.ndarray  # 1 mine / accident / find, 0 searched and clear
    rows: np.ndarray
    cols: np.ndarray
    owner: np.ndarray
    polygons: int

    def __len__(self) -> int:
        return len(self.outcome)

    def per_event(self, cell_values: np.ndarray) -> np.ndarray:
        """Each event's score from its cells' values: the maximum, NaN cells left out."""
        out = np.full(len(self), -np.inf)
        np.fmax.at(out, self.owner, np.nan_to_num(cell_values, nan=-np.inf))
        return np.where(np.isfinite(out), out, np.nan)


def read_events(path: Path, outcome_field: str, grid: Grid, layer: str | None = None) -> Events:
    """Read the events; refuse (InputError naming the file) an empty layer, a missing or non-0/1
    outcome field, geometries that are neither points nor polygons, events outside the region,
    and a set without positives or without negatives."""
    path = Path(path)
    frame = read_vector(path, layer=layer)
    where = str(path)
    if len(frame) == 0:  # no events: nothing to score a ranking against
        raise InputError(f"{empty_layer_problem(path, layer, None)}: evaluate needs known events, both positive "
                         "(1: mine, accident, find) and negative (0: searched and found clear)", path)
    if frame.crs is None:
        raise InputError("has no CRS: set one (e.g. in QGIS, Layer ▸ Set CRS) and save again", path)
    if outcome_field not in frame.columns:
        fields = ", ".join(c for c in frame.columns if c != frame.geometry.name) or "none"
        raise InputError(f"no outcome field {outcome_field!r} (fields: {fields}); name it with --outcome-field",
                         path)
    values = frame[outcome_field].to_numpy()
    numeric = np.array([_as_outcome(v) for v in values])
    bad = np.flatnonzero(np.isnan(numeric))
    problems = []
    if len(bad):
        problems.append(Problem(where, f"field {outcome_field!r} must be 1 (mine, accident, find) or 0 (searched "
                                       f"and found clear): {len(bad)} feature(s) hold something else (first at "
                                       f"row {bad[0]}: {_shown(values[bad[0]])})"))
    geoms = frame.to_crs(grid.crs.to_wkt()).geometry.values
    kinds = shapely.get_type_id(geoms)
    is_point, is_poly = np.isin(kinds, (0, 4)), np.isin(kinds, (3, 6))
    if (~(is_point | is_poly)).any():
        problems.append(Problem(where, f"events must be points or polygons: {int((~(is_point | is_poly)).sum())} "
                                       f"feature(s) are not (first at row {int(np.argmin(is_point | is_poly))})"))
    if problems:
        raise InputError(problems)
    rows, cols, owner = _cells(geoms, is_point, grid)
    inside = _in_region(grid, rows, cols)
    outside = np.setdiff1d(np.arange(len(geoms)), owner[inside])
    if len(outside):
        raise InputError(f"{len(outside)} event(s) lie outside the region of grid {grid.name} (first at row "
                         f"{outside[0]}): evaluate only events the map covers", path)
    rows, cols, owner = rows[inside], cols[inside], owner[inside]
    outcome = numeric.astype(np.int8)
    for code, name in ((1, "positive (1: mine, accident, find)"), (0, "negative (0: searched and found clear)")):
        if not (outcome == code).any():
            raise InputError(f"no {name} events in field {outcome_field!r}: the skill of a ranking needs both", path)
    return Events(path, outcome, rows, cols, owner, int(is_poly.sum()))


def read_extent(path: Path, grid: Grid, events: Events):
    """The surveyed area (union of polygons, grid CRS); every event's cells must lie in it."""
    frame = read_vector(path)
    if frame.crs is None:
        raise InputError("has no CRS", path)
    geoms = frame.to_crs(grid.crs.to_wkt()).geometry.make_valid().values
    if not np.isin(shapely.get_type_id(geoms), (3, 6, 7)).all():
        raise InputError("the evaluation extent must be polygons", path)
    area = shapely.union_all(geoms)
    xs, ys = grid.geobox.affine @ (events.cols + 0.5, events.rows + 0.5)
    outside = np.unique(events.owner[~shapely.contains_xy(area, xs, ys)])
    if len(outside):
        raise InputError(f"{len(outside)} event(s) lie outside this extent (first at row {outside[0]} of "
                         f"{events.path.name})", path)
    return area


def _shown(v) -> str:
    """A field value as the user wrote it (2, 'yes', None), not as NumPy prints it."""
    return repr(v.item() if isinstance(v, np.generic) else v)


def _as_outcome(v) -> float:
    """1.0 or 0.0 for the values 1 and 0 (numbers, booleans or their text); NaN for anything else."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return f if f in (0.0, 1.0) else float("nan")


def _cells(geoms: np.ndarray, is_point: np.ndarray, grid: Grid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every event's cells: the cell holding a point; the cells whose centre a polygon holds."""
    inv = ~grid.geobox.affine
    rows, cols, owner = [], [], []
    for i, g in enumerate(geoms):
        if is_point[i]:
            pts = shapely.get_coordinates(g)
        else:
            x0, y0, x1, y1 = g.bounds
            c0, r0 = inv @ (x0, y1)
            c1, r1 = inv @ (x1, y0)
            cc, rr = np.meshgrid(np.arange(np.floor(c0), np.ceil(c1)), np.arange(np.floor(r0), np.ceil(r1)))
            xs, ys = grid.geobox.affine @ (cc.ravel() + 0.5, rr.ravel() + 0.5)
            held = shapely.contains_xy(g, xs, ys)
            pts = np.c_[xs[held], ys[held]] if held.any() else shapely.get_coordinates(g.representative_point())
        c, r = inv @ (pts[:, 0], pts[:, 1])
        rows.append(np.floor(r).astype(np.int64))
        cols.append(np.floor(c).astype(np.int64))
        owner.append(np.full(len(pts), i))
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(owner)


def _in_region(grid: Grid, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Cells on the grid whose centre lies in the region (the cells every product has)."""
    ny, nx = grid.shape
    on = (rows >= 0) & (rows < ny) & (cols >= 0) & (cols < nx)
    xs, ys = grid.geobox.affine @ (cols + 0.5, rows + 0.5)
    return on & shapely.contains_xy(grid.region.geom, xs, ys)
