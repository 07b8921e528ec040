"""What decides each chunk of the products, so `update` redoes only what changed.

OUT/.minemap/state.json (written by `outdir`) holds one fingerprint per chunk: a hash of every
job that computes that chunk of every layer (file hashes and acquisition times, the geometries
touching the chunk, settings) plus the product settings; and the grid it was computed on, which
`update` compares first: cells of one grid are never patched into files of another.
"""

from __future__ import annotations

import hashlib
import json

from . import __version__
from .grid import Grid
from .summaries import part_columns
from .tiles import chunk_key


def chunk_fingerprints(inputs, products: list[str]) -> dict[str, str]:
    """One fingerprint per chunk ("i,j") of everything that decides the products there."""
    cfg, grid = inputs.cfg, inputs.grid
    common = json.dumps({"version": __version__, "grid": grid.fingerprint(), "products": sorted(products),
                         "settings": cfg.spec.products.model_dump(mode="json"),
                         "output": cfg.spec.output.model_dump(mode="json"),
                         "tasks": cfg.spec.tasks.model_dump(mode="json"),  # the parts' task pieces
                         "summary_columns": part_columns(len(cfg.spec.products.risk_class.names)),  # parts' layout
                         "inputs": {v: s.model_dump(mode="json") for v, s in cfg.spec.inputs.items()},
                         "districts": [cfg.spec.districts.model_dump(mode="json"), inputs.districts.sha256]
                         if inputs.districts else None,
                         "model": cfg.spec.model.cells_key() if cfg.spec.model is not None else None},  # #21
                        sort_keys=True)
    out = {}
    for idx in grid.tile_ids():
        h = hashlib.sha256(common.encode())
        for var in sorted(inputs.layers):
            h.update(f"|{var}={inputs.layers[var].fingerprint(idx)}".encode())
        out[chunk_key(idx)] = h.hexdigest()
    return out


def grid_key(grid: Grid) -> dict:
    """What places the cells: CRS, transform, shape, chunking and the region's outline."""
    return {"crs": str(grid.crs), "transform": list(grid.geobox.affine)[:6], "shape": list(grid.shape),
            "chunk": grid.chunk, "region_sha256": hashlib.sha256(grid.region.geom.wkb).hexdigest()}


def grid_change(old: dict, new: dict) -> str | None:
    """What differs between two `grid_key`s, in words (None: the same grid)."""
    if old == new:
        return None
    changes = []
    if old.get("crs") != new["crs"]:
        changes.append(f"CRS {old.get('crs')} → {new['crs']}")
    a, b = old.get("transform") or [None] * 6, new["transform"]
    if a[0] != b[0] or a[4] != b[4]:
        changes.append(f"resolution {_m(a[0])} → {_m(b[0])} m")
    if (a[2], a[5]) != (b[2], b[5]):
        changes.append(f"origin ({_m(a[2])}, {_m(a[5])}) → ({_m(b[2])}, {_m(b[5])})")
    if old.get("shape") != new["shape"]:
        changes.append(f"shape {old.get('shape')} → {new['shape']} cells")
    if old.get("chunk") != new["chunk"]:
        changes.append(f"chunk {old.get('chunk')} → {new['chunk']} cells")
    if old.get("region_sha256") != new["region_sha256"]:
        changes.append("region boundary")
    return ", ".join(changes) or "grid description"


def _m(v) -> str:
    return "?" if v is None else f"{v:.12g}"
