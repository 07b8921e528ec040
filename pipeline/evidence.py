"""OUT/evidence.gpkg (and, when asked, OUT/evidence/): the evidence a run used, kept inside OUT
so the folder can be moved, zipped and mailed and its QGIS project still opens whole.

Vector inputs are read again here (cheap next to the products: measured in the README) rather
than carried through the loaders, which keep only geometries and values.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pyogrio

from . import __version__
from . import store
from .config import RASTER_KINDS, DensitySource, LoadedConfig
from .grid import Grid
from .outdir import Kept
from .sources.loaders import file_identity
from .vector import PointColumns, ogr, read_vector, repair_geometries, to_crs

EVIDENCE = "evidence.gpkg"
RASTERS = "evidence"  # folder of the bundled rasters
EVIDENCE_STYLE = "1"  # in evidence.gpkg's key: raise it when what is written changes


@dataclass(frozen=True)
class Bundled:
    """Where an input file's evidence is in OUT: `name` relative to OUT, `layer` inside it."""

    name: str
    layer: str | None = None


def evidence_plan(cfg: LoadedConfig, users: dict[Path, list[str]], bundle_rasters: bool) -> dict[Path, Bundled]:
    """Each input file kept in OUT (`users`: file → the variables it feeds): every vector layer
    as a layer of evidence.gpkg named after the file, the rasters in evidence/ if `bundle_rasters`.
    Tables without geometry (class CSVs) are not evidence on a map and stay out."""
    plan: dict[Path, Bundled] = {}
    taken: set[str] = set()
    for path, variables in users.items():
        if any(cfg.spec.inputs[v].kind in RASTER_KINDS for v in variables if v in cfg.spec.inputs):
            if bundle_rasters:
                plan[path] = Bundled(f"{RASTERS}/{_unique(path.stem, taken)}{path.suffix}")
            continue
        layer, _ = _read_as(cfg, path)
        if path.suffix.lower() == ".csv":
            if csv_points(cfg, path) is None:  # a class table
                continue
        elif not pyogrio.read_info(ogr(path), layer=layer).get("geometry_type"):
            continue
        plan[path] = Bundled(EVIDENCE, _unique(path.stem, taken))
    return plan


def write_evidence(staging: Path, cfg: LoadedConfig, grid: Grid, plan: dict[Path, Bundled],
                   hashes: dict[str, str] | None = None, kept: Kept | None = None,
                   made_from: dict[str, str] | None = None) -> list[str]:
    """Write the `plan` into `staging`: each vector layer as read (layer, `where`), in the grid
    CRS, clipped to the region; the rasters copied byte for byte. Returns the staged names.
    evidence.gpkg is `kept` (the last run's, copied) when made from the same files and settings
    (`evidence_key`, from the inputs' SHA-256 `hashes`); its key goes in `made_from`."""
    names = []
    vectors = {path: where for path, where in plan.items() if where.layer is not None}
    if vectors:
        key = evidence_key(cfg, grid, vectors, hashes or {})
        if made_from is not None:
            made_from[EVIDENCE] = key
        if kept is not None and kept.reuse(key, staging / EVIDENCE):
            names.append(EVIDENCE)
            plan = {path: where for path, where in plan.items() if where.layer is None}
    for path, where in plan.items():
        target = staging / where.name
        if where.layer is None:
            target.parent.mkdir(exist_ok=True)
            if store.is_url(path):  # a drone raster in a store: downloaded into OUT/evidence/
                store.download(path, target)
            else:
                shutil.copyfile(path, target)
            names.append(where.name)
            continue
        layer, condition = _read_as(cfg, path)
        points = csv_points(cfg, path)
        frame = to_crs(read_vector(path, layer=layer, where=condition, points=points), grid.crs.to_wkt(), path)
        frame, _ = repair_geometries(frame, path)  # as the loaders did: they refused what cannot be repaired
        frame = frame[~frame.geometry.is_empty & frame.geometry.notna()]
        frame = gpd.clip(frame, grid.region.geom, keep_geom_type=True)
        kind = "Point" if points else _declared(pyogrio.read_info(ogr(path), layer=layer)["geometry_type"])
        pyogrio.write_dataframe(frame, target, layer=where.layer, driver="GPKG", geometry_type=kind,
                                promote_to_multi=kind.startswith("Multi") and kind != "MultiPoint",
                                dataset_options={"VERSION": "1.2"}, append=target.exists())
        if where.name not in names:
            names.append(where.name)
    return names


def evidence_key(cfg: LoadedConfig, grid: Grid, vectors: dict[Path, Bundled], hashes: dict[str, str]) -> str:
    """A hash of everything evidence.gpkg is made from: the files' bytes, how each is read and
    named, the grid's CRS and region, and this minemap (its repairs and clipping)."""
    h = hashlib.sha256()
    for part in (EVIDENCE_STYLE, __version__, grid.crs.to_wkt(), grid.region.geom.wkb):
        h.update(repr(part).encode() + b"\0")
    for path, where in sorted(vectors.items(), key=lambda kv: (store.is_url(kv[0]), kv[0])):  # local ones first
        sha = hashes.get(str(path)) or file_identity(path)
        h.update(repr((str(path), sha, where.name, where.layer, _read_as(cfg, path), csv_points(cfg, path))).encode()
                 + b"\0")
    return h.hexdigest()[:32]


def csv_points(cfg: LoadedConfig, path: Path) -> PointColumns | None:
    """How a CSV of point records holds its points (None: not a records CSV, e.g. a class table)."""
    if path.suffix.lower() != ".csv":
        return None
    for spec in cfg.spec.inputs.values():
        if isinstance(spec, DensitySource) and path in {cfg.resolve(p) for p in spec.paths}:
            return PointColumns(spec.x_field, spec.y_field, spec.crs)
    return None


def _read_as(cfg: LoadedConfig, path: Path) -> tuple[str | None, str | None]:
    """The layer and `where` the config reads `path` with (a filter only when every use agrees)."""
    uses = set()
    for spec in cfg.spec.inputs.values():
        paths = getattr(spec, "paths", None) or ([spec.path] if isinstance(getattr(spec, "path", None), str) else [])
        if path in {cfg.resolve(p) for p in paths}:
            uses.add((spec.layer, spec.where))
        if getattr(spec, "extent", None) and cfg.resolve(spec.extent) == path:
            uses.add((spec.extent_layer, None))
    if cfg.spec.release and cfg.resolve(cfg.spec.release.path) == path:
        uses.add((cfg.spec.release.layer, None))
    layers = {layer for layer, _ in uses}
    wheres = {where for _, where in uses}
    return (layers.pop() if len(layers) == 1 else None), (wheres.pop() if len(wheres) == 1 else None)


def _declared(ogr_type: str | None) -> str:
    """The layer's geometry type in evidence.gpkg: lines and polygons as multi (clipping can
    split them), points as they were."""
    kind = (ogr_type or "Unknown").replace(" Z", "").replace(" M", "")
    return kind if "Point" in kind or kind == "Unknown" else "Multi" + kind.removeprefix("Multi")


def _unique(stem: str, taken: set[str]) -> str:
    """`stem`, or `stem_2`, `stem_3`… when two inputs share a file name (in other folders)."""
    name, n = stem, 1
    while name in taken:
        n += 1
        name = f"{stem}_{n}"
    taken.add(name)
    return name
