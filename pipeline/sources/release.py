"""Released land (IMAS land release): the [release] polygons as layers on the grid.

A layer like any vector source (one picklable coverage job per chunk, holding only the polygons
touching it), so a new or edited release polygon recomputes only the chunks it touches.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from dask.base import tokenize

from ..config import RELEASE_OUTCOMES, LoadedConfig
from ..errors import InputError, Problem
from ..grid import Grid
from .coverage import CoverageJob
from .geoms import Features, load_frame, no_class
from .loaders import Layer, tiled_layer

RELEASED = "released_share"  # the layer (and product): share of each cell released, any outcome


def outcome_layer(outcome: str) -> str:
    """The name of the layer holding the share of each cell released with `outcome`."""
    return f"released_{outcome}"


def load_release(cfg: LoadedConfig, grid: Grid) -> dict[str, Layer]:
    """The union of all release polygons, and of each outcome's; {} when [release] is not set.

    Statuses that are neither mapped to an outcome nor ignored are refused (file, field, values).
    An empty layer is fine: nothing is released yet.
    """
    spec = cfg.spec.release
    if spec is None:
        return {}
    path = cfg.resolve(spec.path)
    problems: list[Problem] = []
    columns = [spec.status_field] + ([spec.date_field] if spec.date_field else [])
    # an empty release layer is normal (nothing released yet): released_share 0 everywhere
    frame = load_frame(path, grid, spec.layer, None, columns, problems, source="the release layer", allow_empty=True)
    if frame is None:
        raise InputError(problems)
    if missing := no_class(frame[spec.status_field], spec.status_field, path,
                           f"give each a status ({', '.join(RELEASE_OUTCOMES)}, or one mapped under "
                           "[release.values] or listed in release.ignore)"):
        raise InputError([*problems, missing])
    statuses = frame[spec.status_field].astype(str).str.strip()
    outcome_of = spec.outcome_of()
    unknown = statuses[~statuses.isin(list(outcome_of) + spec.ignore)].value_counts()
    if len(unknown):
        listed = ", ".join(f"{k!r} ({n} feature{'s' * (n > 1)})" for k, n in unknown.items())
        problems.append(Problem(str(path), f"field {spec.status_field!r} has unknown release status {listed}: map "
                                           f"them to {', '.join(RELEASE_OUTCOMES)} under [release.values] "
                                           "or list them in release.ignore"))
    if spec.date_field:
        problems.extend(_bad_dates(frame[spec.date_field], spec.date_field, path))
    geoms = frame.geometry.values
    kinds = np.asarray([g.geom_type for g in geoms])
    if len(kinds) and not np.isin(kinds, ("Polygon", "MultiPolygon")).all():
        problems.append(Problem(str(path), "release features must be polygons"))
    if problems:
        raise InputError(problems)
    outcomes = statuses.map(outcome_of).to_numpy()
    layers = {}
    for name, keep in [(RELEASED, np.isin(outcomes, RELEASE_OUTCOMES))] + \
            [(outcome_layer(o), outcomes == o) for o in RELEASE_OUTCOMES]:
        feats = Features(geoms[keep], np.zeros(int(keep.sum())))

        def job(idx, feats=feats):
            gbox = grid.tile_geobox(idx)
            return CoverageJob(feats.geoms[feats.near(gbox)], gbox)

        token = tokenize(name, str(path), feats.digest(), grid.fingerprint())
        layers[name] = tiled_layer(name, name, grid, job, token, [path] if name == RELEASED else [])
    return layers


def _bad_dates(values: pd.Series, field: str, path: Path) -> list[Problem]:
    """Dates that are given but are not dates (empty is fine: not every record has one)."""
    text = values.astype("string").str.strip()
    given = text.notna() & (text != "")
    parsed = pd.to_datetime(values.where(given), errors="coerce", format="mixed")
    bad = text[given & parsed.isna()]
    if not len(bad):
        return []
    return [Problem(str(path), f"field {field!r} (release.date_field) has values that are not dates: "
                               f"{', '.join(map(repr, bad.unique()[:5]))}")]
