"""Labels for `minemap calibrate` from the team's own finished work (issue #21 §2), in IMAS
land-release terms:

- an events file: points or polygons with an outcome field, 1 (mine, accident, find) or 0
  (searched and found clear);
- the config's `[release]` polygons with a finds field (devices found): cleared or reduced with
  finds > 0 is positive; cleared or reduced with none, or cancelled, is negative (within the
  effort applied); other statuses are left out;
- accident points: positive.

All are tied to the grid's cells as `evaluate` ties its events (`evaluate.events`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely

from ..config import LoadedConfig
from ..errors import InputError, Problem
from ..grid import Grid
from ..evaluate.events import Events, _as_outcome, _cells, _in_region, _shown
from ..vector import read_vector


@dataclass(frozen=True)
class LabelFile:
    """One file labels come from: `role` is "events", "release" or "accidents"."""

    path: Path
    role: str
    outcome_field: str | None = None  # events: the 1/0 field; release: the finds field
    layer: str | None = None


def _frame(src: LabelFile, grid: Grid):
    frame = read_vector(src.path, layer=src.layer)
    if frame.crs is None:
        raise InputError("has no CRS: set one (e.g. in QGIS, Layer ▸ Set CRS) and save again", src.path)
    if len(frame) == 0:
        raise InputError(f"holds no features: 0 {src.role} to calibrate on", src.path)
    field = src.outcome_field
    if field is not None and field not in frame.columns:
        fields = ", ".join(c for c in frame.columns if c != frame.geometry.name) or "none"
        flag = "--outcome-field" if src.role == "events" else "--finds-field"
        raise InputError(f"no field {field!r} (fields: {fields}); name it with {flag}", src.path)
    return frame, frame.to_crs(grid.crs.to_wkt()).geometry.values


def _outcomes(src: LabelFile, frame, cfg: LoadedConfig) -> np.ndarray:
    """1, 0 or NaN (left out) per feature; refuses values that are not labels."""
    if src.role == "accidents":
        return np.ones(len(frame))
    if src.role == "events":
        values = frame[src.outcome_field].to_numpy()
        numeric = np.array([_as_outcome(v) for v in values], dtype=float)
        bad = np.flatnonzero(np.isnan(numeric))
        if len(bad):
            raise InputError(f"field {src.outcome_field!r} must be 1 (mine, accident, find) or 0 (searched and found "
                             f"clear): {len(bad)} feature(s) hold something else (first at row {bad[0]}: "
                             f"{_shown(values[bad[0]])})", src.path)
        return numeric
    release = cfg.spec.release
    if release.status_field not in frame.columns:
        raise InputError(f"no status field {release.status_field!r} ([release] status_field)", src.path)
    outcome_of = release.outcome_of()
    status = frame[release.status_field].astype(str).map(outcome_of).to_numpy()
    finds = frame[src.outcome_field].to_numpy()
    out = np.full(len(frame), np.nan)
    for i, (s, f) in enumerate(zip(status, finds)):
        try:
            n = float(f)
        except (TypeError, ValueError):
            n = float("nan")
        if s in ("cleared", "reduced"):
            if not np.isfinite(n) or n < 0:
                raise InputError(f"field {src.outcome_field!r} (devices found) must be a count ≥ 0 on cleared and "
                                 f"reduced land: row {i} holds {_shown(f)}", src.path)
            out[i] = 1.0 if n > 0 else 0.0
        elif s == "cancelled":
            out[i] = 1.0 if np.isfinite(n) and n > 0 else 0.0  # a find on cancelled land is still a find
    return out


def read_labels(sources: list[LabelFile], cfg: LoadedConfig, grid: Grid) -> tuple[Events, list[int]]:
    """The labelled events of every source, as one `Events` (in the order of the files), and
    how many each file gave. Refused (InputError naming the
    file, exit 2): a file without features, bad labels, events outside the region, and labels
    of one class only (or none at all)."""
    geoms, outcome, paths = [], [], []
    for src in sources:
        frame, g = _frame(src, grid)
        y = _outcomes(src, frame, cfg)
        kinds = shapely.get_type_id(g)
        ok = np.isin(kinds, (0, 4, 3, 6))
        if not ok.all():
            raise InputError(f"{src.role} must be points or polygons: {int((~ok).sum())} feature(s) are not (first at "
                             f"row {int(np.argmin(ok))})", src.path)
        keep = np.isfinite(y)
        r, c, owner = _cells(g[keep], np.isin(kinds[keep], (0, 4)), grid)
        inside = _in_region(grid, r, c)
        outside = np.setdiff1d(np.arange(int(keep.sum())), owner[inside])
        if len(outside):
            row = np.flatnonzero(keep)[outside[0]]
            raise InputError(f"{len(outside)} of its {src.role} lie outside the region of grid {grid.name} (first at "
                             f"row {row}): calibrate only on land the map covers", src.path)
        geoms.append(g[keep])
        outcome.append(y[keep])
        paths.append(src.path)
    g, y = np.concatenate(geoms), np.concatenate(outcome).astype(np.int8)
    named = ", ".join(str(p) for p in paths)
    if len(y) == 0:
        raise InputError(Problem(named, "0 labelled events: nothing to calibrate on"))
    for code, name in ((1, "positive (mine, accident, find)"), (0, "negative (searched or cancelled, nothing found)")):
        if not (y == code).any():
            raise InputError(Problem(named, f"no {name} events among {len(y)}: a calibration needs both classes"))
    kinds = shapely.get_type_id(g)
    rows, cols, owner = _cells(g, np.isin(kinds, (0, 4)), grid)
    inside = _in_region(grid, rows, cols)
    return (Events(paths[0], y, rows[inside], cols[inside], owner[inside], int(np.isin(kinds, (3, 6)).sum())),
            [len(x) for x in outcome])
