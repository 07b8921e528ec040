"""Direct evidence: the cells that hold a mine record or lie in a minefield or hazard polygon.

Such a cell is never "low", whatever soil and drones say (issue #20; minemap's rule, not the
paper's): its risk class is raised to `[products.risk_class] direct_evidence_class`. Records come
from the density sources (count > 0), hazards from `[hazards]` (confirmed hazard areas).
A polygon marks every cell it touches, a point the cell holding it.
"""

from __future__ import annotations

import numpy as np
from dask.base import tokenize

from ..config import DensitySource, LoadedConfig
from ..errors import InputError, Problem
from ..grid import Grid
from .geoms import Features, load_frame
from .loaders import Layer, tiled_layer
from .polygons import BurnJob

DIRECT = "direct_evidence"  # the layer: 1 where a cell holds direct evidence, else 0


def load_direct(cfg: LoadedConfig, grid: Grid, layers: dict[str, Layer]) -> dict[str, Layer]:
    """The direct-evidence layer ({} when nothing can give direct evidence)."""
    geoms, files = [], []
    for var, spec in cfg.spec.inputs.items():
        layer = layers.get(var)
        if isinstance(spec, DensitySource) and layer is not None and layer.records is not None:
            geoms.append(layer.records.geoms)
    hazards = cfg.spec.hazards
    if hazards is not None:
        path = cfg.resolve(hazards.path)
        problems: list[Problem] = []
        columns = [hazards.id_field] if hazards.id_field else []
        frame = load_frame(path, grid, hazards.layer, hazards.where, columns, problems, source="the hazards layer",
                           allow_empty=True)
        if frame is None:
            raise InputError(problems)
        geoms.append(frame.geometry.values)
        files.append(path)
    if not geoms:
        return {}
    all_geoms = np.concatenate(geoms)
    feats = Features(all_geoms, np.ones(len(all_geoms)))

    def job(idx):
        gbox = grid.tile_geobox(idx)
        near = feats.near(gbox)
        return BurnJob(feats.geoms[near], feats.values[near], gbox, True, 0, "uint8")

    token = tokenize(DIRECT, feats.digest(), grid.fingerprint())
    return {DIRECT: tiled_layer(DIRECT, DIRECT, grid, job, token, files, dtype="uint8")}
