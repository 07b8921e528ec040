"""What team leads hand on: per-district figures and high-risk zones as polygons.

Both are computed chunk by chunk in the same pass that writes the products (one small
"part" per chunk, kept in OUT/.minemap so an update recomputes only the changed chunks'),
then merged: district sums are added up; zone pieces that touch across a chunk border are
joined (4-connected cells, matching labels along the shared edge), in pixel coordinates so
the pieces' edges meet exactly.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import dask.array as da
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from rasterio.features import shapes
from scipy import ndimage

from .config import RELEASE_OUTCOMES, LoadedConfig
from .errors import InputError
from .grid import Grid
from .formulas import SUSTAINABLE
from .products import INSUFFICIENT, PRODUCTS, UINT8_NODATA
from .sources.polygons import BurnJob
from .joins import chunk_pieces, class_column, piece_groups, ring_polygon
from .tasks import Tasking, task_pieces, tasking_for
from .tiles import chunk_key, tiled_array
from .vector import POLYGONS, empty_layer_problem, geometry_type_problem, read_vector, repair_geometries, to_crs

# the per-chunk inputs of a part, in this order; products or layers that are not there are skipped
FIELDS = ["P_c", "n", "class", "E", "R_e", "CSC", "L", "C", *[f"rel_{o}" for o in RELEASE_OUTCOMES], "P_res",
          "P_c_all", "direct", "L_lb"]


@dataclass(frozen=True)
class Districts:
    """District polygons in the grid CRS, coded 1…n on the grid in this order."""

    names: list[str]
    geoms: np.ndarray
    sha256: str


def load_districts(cfg: LoadedConfig, grid: Grid) -> Districts | None:
    """The [districts] layer of the config, or None if it names none."""
    spec = cfg.spec.districts
    if spec is None:
        return None
    path = cfg.resolve(spec.path)
    frame = read_vector(path, layer=spec.layer)
    if frame.crs is None:
        raise InputError("has no CRS: set one (e.g. ogr2ogr -a_srs EPSG:4326)", path)
    if spec.name_field not in frame.columns:
        raise InputError(f"has no field {spec.name_field!r} (districts.name_field); fields: "
                         f"{', '.join(c for c in frame.columns if c != frame.geometry.name)}", path)
    if len(frame) == 0:
        raise InputError(empty_layer_problem(path, spec.layer, None) + " (districts needs polygons)", path)
    frame, problems = repair_geometries(frame, path)
    if problems:
        raise InputError("; ".join(problems), path)
    if msg := geometry_type_problem(frame, POLYGONS, "the districts layer"):
        raise InputError(msg, path)
    frame = to_crs(frame, grid.crs.to_wkt(), path, f"the grid's {grid.crs}")
    names = [str(v) for v in frame[spec.name_field]]
    if len(set(names)) != len(names):
        raise InputError(f"district names in {spec.name_field!r} repeat: each must be unique", path)
    return Districts(names, np.asarray(frame.geometry.values), hashlib.sha256(path.read_bytes()).hexdigest())


def district_codes(grid: Grid, districts: Districts | None) -> da.Array:
    """Each cell's district code (1…n by cell centre; 0: none)."""
    if districts is None:
        geoms, values = np.array([grid.region.geom]), np.array([0.0])
        token = grid.fingerprint()
    else:
        geoms, values = districts.geoms, np.arange(1, len(districts.names) + 1, dtype=float)
        token = grid.fingerprint() + districts.sha256
    dtype = "int16" if len(values) < 2**15 else "int32"
    jobs = {idx: BurnJob(geoms, values, grid.tile_geobox(idx), False, 0, dtype) for idx in grid.tile_ids()}
    return tiled_array("districts", grid, jobs, dtype=np.dtype(dtype), token=token)


def summary_array(grid: Grid, codes: da.Array, fields: dict[str, da.Array], n_districts: int, n_classes: int,
                  zone_class: int | None, tasking: Tasking | None = None) -> da.Array:
    """One part per chunk (a 1×1 object block): district sums, zone pieces and task pieces."""
    names = [f for f in FIELDS if f in fields]
    ny, nx = len(grid.chunks[0]), len(grid.chunks[1])
    return da.map_blocks(chunk_part, codes, *[fields[f] for f in names], names=names, n_districts=n_districts,
                         n_classes=n_classes, zone_class=zone_class, cell_km2=grid.cell_area_km2,
                         chunk=grid.chunk, tasking=tasking, dtype=object, chunks=((1,) * ny, (1,) * nx),
                         meta=np.empty((0, 0), dtype=object))


# district sums, one row per district code (0: outside every district), these columns:
def part_columns(n_classes: int) -> list[str]:
    return ["cells", "pc_n", "pc_sum", "pc_max", *[f"class_{k}" for k in range(1, n_classes + 1)], "mines",
            "e_n", "e_sum", "re_n", "re_sum", "cleared_km2", "sustainable_km2", "insufficient",
            *[f"released_{o}" for o in RELEASE_OUTCOMES], "l_n", "res_sum", "res_max", "pc_all_n", "pc_all_sum",
            "l_lb"]


MAX_COLUMNS = ("pc_max", "res_max")  # merged by maximum (NaN: no value yet); the others are sums


def chunk_part(codes: np.ndarray, *arrays: np.ndarray, names: list[str], n_districts: int, n_classes: int,
               zone_class: int | None, cell_km2: float, chunk: int, block_id: tuple[int, int] = (0, 0),
               tasking: Tasking | None = None) -> np.ndarray:
    """Sums per district and zone pieces of one chunk (pure: arrays in, numbers and shapes out)."""
    a = dict(zip(names, arrays))
    n = n_districts + 1
    cols = part_columns(n_classes)
    sums = np.zeros((n, len(cols)), dtype=np.float64)
    sums[:, [cols.index(c) for c in MAX_COLUMNS]] = np.nan
    put = {c: k for k, c in enumerate(cols)}
    # a chunk holds few districts (most just one): masked reductions over each present district's
    # bounding window are ~10× cheaper than one bincount over every cell (a gather and a float64 copy)
    lo, hi = int(codes.min()), int(codes.max())
    full = (slice(None), slice(None))
    present = [(lo, full, None)] if lo == hi else [_window_of(codes == d, d) for d in range(lo, hi + 1)]
    present = [p for p in present if p is not None]

    def add(col: str, weights: np.ndarray | None, ok: np.ndarray | None) -> None:
        for d, win, m in present:
            where = m if ok is None else ok[win] if m is None else ok[win] & m
            if weights is None:
                sums[d, put[col]] += codes[win].size if where is None else np.count_nonzero(where)
            else:
                sums[d, put[col]] += np.sum(weights[win], where=True if where is None else where, dtype=np.float64)

    region = ~np.isnan(a["P_c"]) if "P_c" in a else None
    coded = a["n"] if "n" in a else a.get("class")
    inside = coded != UINT8_NODATA if coded is not None else region  # cells in the grid's region
    add("cells", None, inside)
    if "class" in a:
        for k in range(1, n_classes + 1):
            add(f"class_{k}", None, a["class"] == k)
        add("insufficient", None, a["class"] == INSUFFICIENT)
    for o in RELEASE_OUTCOMES:  # km² released, by outcome
        if f"rel_{o}" in a:
            share = a[f"rel_{o}"]
            known = ~np.isnan(share)
            add(f"released_{o}", share * np.float32(cell_km2), known if inside is None else known & inside)
    if region is not None:
        add("pc_n", None, region)
        for field, total, top in (("P_c", "pc_sum", "pc_max"), ("P_res", "res_sum", "res_max")):
            if field not in a:
                continue
            add(total, a[field], region)
            for d, win, m in present:
                where = region[win] if m is None else region[win] & m
                if np.any(where):
                    sums[d, put[top]] = np.max(a[field][win], where=where, initial=-np.inf)
    cleared = None
    if "C" in a:
        cleared = np.where(np.isnan(a["C"]), np.float32(0), a["C"]) * np.float32(0.01)  # fraction cleared
    if "L" in a:
        remaining = a["L"] * np.float32(cell_km2)
        if cleared is not None:
            remaining *= 1 - cleared
        add("mines", remaining, ~np.isnan(a["L"]))
        add("l_n", None, ~np.isnan(a["L"]))  # cells where L is known (outside its extent it is not)
    if "L_lb" in a:  # L outside the records' extent: the records' own density, a lower bound
        add("l_lb", None, a["L_lb"] == 1)
    if "P_c_all" in a:  # eq. (2) on every cell with a layer, assessed or not: the all-cells figure
        ok = ~np.isnan(a["P_c_all"])
        add("pc_all_n", None, ok)
        add("pc_all_sum", a["P_c_all"], ok)
    for key, col in (("E", "e"), ("R_e", "re")):
        if key in a:
            ok = ~np.isnan(a[key])
            add(f"{col}_n", None, ok)
            add(f"{col}_sum", a[key], ok)
    if "CSC" in a and cleared is not None:
        ok = ~np.isnan(a["CSC"]) & (cleared > 0)
        add("cleared_km2", cleared * np.float32(cell_km2), ok)
        add("sustainable_km2", cleared * np.float32(cell_km2), ok & (a["CSC"] > SUSTAINABLE))
    zones = tasks = None
    if zone_class is not None and "class" in a:
        offset = (block_id[0] * chunk, block_id[1] * chunk)
        mask = zone_mask(a["class"], zone_class, a.get("direct"))
        if tasking is not None and mask.any():  # the zones' cells cut along the tasking grid
            tasks = task_pieces(mask, a["class"], a.get("P_res", a["P_c"]), a.get("n"), codes, n, n_classes,
                                a.get("direct"), offset, tasking)
        zones = _zone_pieces(a["class"], a.get("P_res", a["P_c"]), a.get("n"), codes, n, zone_class, offset,
                             a.get("direct"), n_classes, mask, tasks)
    out = np.empty((1, 1), dtype=object)
    out[0, 0] = {"districts": sums, "zones": zones, "tasks": tasks}
    return out


def _window_of(m: np.ndarray, d: int) -> tuple[int, tuple[slice, slice], np.ndarray] | None:
    """District d's bounding window in a chunk and its mask there (None if absent)."""
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if not len(rows):
        return None
    win = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    return d, win, m[win]


def _zone_pieces(cls: np.ndarray, p_c: np.ndarray, count: np.ndarray | None, code: np.ndarray, n_codes: int,
                 zone_class: int, offset: tuple[int, int], direct: np.ndarray | None = None,
                 n_classes: int = 0, mask: np.ndarray | None = None, tasks: dict | None = None) -> dict | None:
    """Connected cells of class ≥ zone_class, or of direct evidence, in one chunk: outlines (pixel
    coordinates), sums (with the cells of each class, for the zone's class by area), edges.
    With the chunk's `tasks` (the same cells cut along the tasking grid), each zone's outline is
    the union of its tasks' (one polygonisation of the chunk instead of two)."""
    mask = zone_mask(cls, zone_class, direct) if mask is None else mask
    labels, n = ndimage.label(mask)  # 4-connected, as the outlines below
    if n == 0:
        return None
    inside = labels[mask] - 1  # zone cells only: usually a small part of the chunk
    p = p_c[mask].astype(np.float64)
    known = ~np.isnan(p)  # a direct-evidence cell may have no P_c (too little other evidence)
    stats = {
        "cells": np.bincount(inside, minlength=n),
        "pc_n": np.bincount(inside, weights=known, minlength=n),
        "pc_sum": np.bincount(inside, weights=np.where(known, p, 0.0), minlength=n),
        "pc_max": _group_max(inside[known], p[known], n),
        "by_class": np.bincount(inside * (n_classes + 1) + cls[mask].astype(np.intp),
                                minlength=n * (n_classes + 1)).reshape(n, n_classes + 1),
        "districts": np.bincount(inside * n_codes + code[mask].astype(np.intp), minlength=n * n_codes).reshape(n, n_codes),
    }
    if count is not None:
        stats["n_sum"] = np.bincount(inside, weights=count[mask].astype(np.float64), minlength=n)
        stats["n_min"] = -_group_max(inside, -count[mask].astype(np.int64), n).astype(np.int64)
    wkb = _outlines_of(labels, mask, offset, n) if tasks is None else _union_of_tasks(labels, offset, n, tasks)
    edges = {"top": labels[0, :].copy(), "bottom": labels[-1, :].copy(),
             "left": labels[:, 0].copy(), "right": labels[:, -1].copy()}
    return {"n": n, "stats": stats, "wkb": wkb, "edges": edges}


def zone_mask(cls: np.ndarray, zone_class: int, direct: np.ndarray | None) -> np.ndarray:
    """Cells of priority zones: class ≥ zone_class, or of direct evidence."""
    mask = (cls >= zone_class) & (cls != UINT8_NODATA)
    if direct is not None:
        mask |= (direct == 1) & (cls != UINT8_NODATA)
    return mask


def _outlines_of(labels: np.ndarray, mask: np.ndarray, offset: tuple[int, int], n: int) -> list[bytes]:
    """Each label's outline (WKB, pixel coordinates of the grid), polygonised where zones are."""
    outlines: list[list] = [[] for _ in range(n)]
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    win = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    for geom, value in shapes(labels[win].astype(np.int32, copy=False), mask=mask[win], connectivity=4,
                              transform=Affine.translation(offset[1] + cols[0], offset[0] + rows[0])):
        outlines[int(value) - 1].append(ring_polygon(geom["coordinates"]))
    return [shapely.to_wkb(p[0] if len(p) == 1 else shapely.union_all(p)) for p in outlines]


def _union_of_tasks(labels: np.ndarray, offset: tuple[int, int], n: int, tasks: dict) -> list[bytes]:
    """Each zone's outline as the union of its task parts' (a task part lies in one zone: the one
    holding its first cell); vertices left on the tasking lines by the union are dropped."""
    first = tasks["stats"]["first"]
    zone = labels[(first >> 32) - offset[0], (first & 0xFFFFFFFF) - offset[1]] - 1
    parts = shapely.from_wkb(tasks["wkb"])
    order = np.argsort(zone, kind="stable")
    bounds = np.searchsorted(zone[order], np.arange(n + 1))
    wkb = []
    for k in range(n):
        mine = parts[order[bounds[k]:bounds[k + 1]]]
        wkb.append(shapely.to_wkb(mine[0] if len(mine) == 1 else shapely.simplify(shapely.union_all(mine), 0)))
    return wkb


def _group_max(groups: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Maximum of `values` per group 0…n−1 (NaN for empty groups), without sorting."""
    out = np.full(n, -np.inf)
    np.maximum.at(out, groups, values.astype(np.float64))
    out[np.isneginf(out)] = np.nan
    return out


def merge_districts(parts: dict[str, dict], grid: Grid, n_districts: int, n_classes: int) -> np.ndarray:
    """Sum the chunks' district rows (in tile order, so the floats are always the same)."""
    cols = part_columns(n_classes)
    total = np.zeros((n_districts + 1, len(cols)))
    top = np.isin(cols, MAX_COLUMNS)
    total[:, top] = np.nan
    for idx in grid.tile_ids():
        part = parts.get(chunk_key(idx))
        if part is None:
            continue
        d = part["districts"]
        total[:, ~top] += d[:, ~top]
        total[:, top] = np.fmax(total[:, top], d[:, top])
    return total


MOSTLY_NOT_ASSESSED = 0.5  # a district with less of its area assessed is listed apart, never ranked riskiest


def district_table(total: np.ndarray, districts: Districts | None, class_names: list[str], cell_km2: float,
                   have: set[str], priority_from: int | None = None) -> gpd.GeoDataFrame | None:
    """One row per district: area, the share assessed, P_c over assessed cells (and over all),
    km² per risk class, remaining mines, E, R_e, CSC share, and the order to brief them in."""
    if districts is None:
        return None
    cols = part_columns(len(class_names))
    t = pd.DataFrame(total[1:], columns=cols)
    with np.errstate(invalid="ignore", divide="ignore"):
        rows = {"district": districts.names,
                "area_km2": t["cells"] * cell_km2}
        if "class" in have:
            assessed = (t["cells"] - t["insufficient"]) / t["cells"]
            rows["assessed_share"] = assessed
            rows["assessment"] = np.where(assessed >= MOSTLY_NOT_ASSESSED, "assessed", "mostly not assessed")
        rows["mean_pc"] = t["pc_sum"] / t["pc_n"]  # over assessed cells: P_c is nodata elsewhere
        rows["max_pc"] = t["pc_max"]
        if "P_c_all" in have:
            rows["mean_pc_all_cells"] = t["pc_all_sum"] / t["pc_all_n"]
        if "P_res" in have:  # with land release: the residual probability beside P_c
            rows["mean_residual"] = t["res_sum"] / t["pc_n"]
            rows["max_residual"] = t["res_max"]
        for k, name in enumerate(class_names, start=1):
            rows[class_column(name)] = t[f"class_{k}"] * cell_km2
        if "class" in have:
            rows["km2_insufficient_evidence"] = t["insufficient"] * cell_km2
        for o in RELEASE_OUTCOMES:
            if f"rel_{o}" in have:
                rows[f"released_km2_{o}"] = t[f"released_{o}"]
        if "L" in have:
            rows["remaining_mines"] = t["mines"].where(t["l_n"] > 0)  # unknown, not 0, where L is nowhere known
            rows["remaining_mines_lower_bound"] = (t["l_lb"] > 0).astype(int)  # records beyond their extent
        if "E" in have:
            rows["mean_E"] = t["e_sum"] / t["e_n"]
        if "R_e" in have:
            rows["mean_R_e"] = t["re_sum"] / t["re_n"]
        if "CSC" in have and "C" in have:
            rows["cleared_km2"] = t["cleared_km2"]
            rows["csc_sustainable_share"] = t["sustainable_km2"] / t["cleared_km2"]
    frame = pd.DataFrame(rows).replace([np.inf, -np.inf], np.nan)
    if "class" in have:
        frame.insert(frame.columns.get_loc("assessment") + 1, "priority",
                     _priority(frame, t, class_names, cell_km2, priority_from))
    return gpd.GeoDataFrame(frame, geometry=list(districts.geoms), crs=None)


def _priority(frame: pd.DataFrame, t: pd.DataFrame, class_names: list[str], cell_km2: float,
              priority_from: int | None) -> np.ndarray:
    """1 = brief first: assessed districts before mostly-not-assessed ones, then by km² at the
    priority-zone class or above, then by mean residual (or P_c) over assessed cells."""
    start = priority_from or len(class_names)
    risky = sum(t[f"class_{k}"] for k in range(start, len(class_names) + 1)) * cell_km2
    mean = frame["mean_residual"] if "mean_residual" in frame else frame["mean_pc"]
    order = pd.DataFrame({"apart": frame["assessment"] != "assessed", "risky": -risky,
                          "mean": -mean.fillna(-1.0)}).sort_values(["apart", "risky", "mean"], kind="stable").index
    priority = np.empty(len(frame), dtype=int)
    priority[np.asarray(order)] = np.arange(1, len(frame) + 1)
    return priority


def merge_zones(parts: dict[str, dict], grid: Grid, districts: Districts | None, class_names: list[str],
                min_area_km2: float) -> gpd.GeoDataFrame:
    """Join zone pieces across chunk borders; one row per zone, highest class and largest first."""
    pieces = chunk_pieces(parts, grid, "zones")
    roots = piece_groups(pieces)
    total = len(roots)
    class_columns = [class_column(name) for name in class_names]
    columns = ["rank", "risk_class", "area_km2", "district", "mean_pc", "max_pc", *class_columns, "mean_evidence",
               "min_evidence", "cells"]
    if total == 0:
        return gpd.GeoDataFrame({c: [] for c in columns}, geometry=[], crs=None)
    groups, group_of = np.unique(roots, return_inverse=True)
    g = len(groups)

    def gather(key: str, how: str = "sum") -> np.ndarray | None:
        if any(key not in z["stats"] for z in pieces.values()):
            return None
        values = np.concatenate([np.asarray(z["stats"][key]) for z in pieces.values()])
        if values.ndim == 2:
            out = np.zeros((g, values.shape[1]))
            np.add.at(out, group_of, values)
            return out
        if how == "sum":
            return np.bincount(group_of, weights=values.astype(np.float64), minlength=g)
        out = np.full(g, -np.inf if how == "max" else np.inf)
        (np.maximum if how == "max" else np.minimum).at(out, group_of, values)
        return out

    cells = gather("cells")
    pc_n, pc_sum, pc_max, by_class = gather("pc_n"), gather("pc_sum"), gather("pc_max", "max"), gather("by_class")
    # the class of most of the zone's area (ties: the higher class), never the highest class anywhere in it
    zone_code = by_class.shape[1] - 1 - np.argmax(by_class[:, ::-1], axis=1)
    n_sum, n_min = gather("n_sum"), gather("n_min", "min")
    by_district = gather("districts")
    wkb = [w for z in pieces.values() for w in z["wkb"]]
    geoms = shapely.from_wkb(wkb)
    members: list[list[int]] = [[] for _ in range(g)]
    for k, grp in enumerate(group_of):
        members[grp].append(k)
    outlines = [geoms[m[0]] if len(m) == 1 else shapely.simplify(shapely.union_all(geoms[m]), 0) for m in members]
    a = grid.geobox.affine
    outlines = shapely.transform(np.array(outlines, dtype=object),
                                 lambda xy: np.column_stack([a.a * xy[:, 0] + a.b * xy[:, 1] + a.c,
                                                             a.d * xy[:, 0] + a.e * xy[:, 1] + a.f]))
    names = ["", *(districts.names if districts else [])]
    district = [names[int(np.argmax(row))] if districts and row[1:].sum() else "" for row in by_district]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_pc = np.where(pc_n > 0, pc_sum / pc_n, np.nan)
    frame = pd.DataFrame({
        "risk_class": [class_names[int(c) - 1] if c > 0 else "insufficient evidence" for c in zone_code],
        "class_code": zone_code.astype(int),
        "area_km2": cells * grid.cell_area_km2,
        "district": district,
        "mean_pc": mean_pc,
        "max_pc": pc_max,
        **{col: by_class[:, k + 1] * grid.cell_area_km2 for k, col in enumerate(class_columns)},
        "mean_evidence": n_sum / cells if n_sum is not None else np.nan,
        "min_evidence": n_min.astype(int) if n_min is not None else -1,
        "cells": cells.astype(np.int64),
    })
    frame["geometry"] = outlines
    frame = frame[frame["area_km2"] >= min_area_km2 - 1e-12]
    frame = frame.sort_values(["class_code", "area_km2", "mean_pc"], ascending=False, kind="stable")
    frame.insert(0, "rank", np.arange(1, len(frame) + 1))
    return gpd.GeoDataFrame(frame.drop(columns="class_code").reset_index(drop=True), geometry="geometry", crs=None)


def _residual_names(frame: gpd.GeoDataFrame, have: set[str]) -> gpd.GeoDataFrame:
    """With land release the zones' P_c columns hold the residual probability: say so in their names."""
    if "P_res" not in have:
        return frame
    return frame.rename(columns={"mean_pc": "mean_residual", "max_pc": "max_residual"})


def write_vector(frame: gpd.GeoDataFrame, path: Path, layer: str, crs) -> None:
    """A GeoPackage layer in the grid CRS (the caller stages and publishes the file), as
    GeoPackage 1.2: GDAL < 3.7 (QGIS 3.22 on Debian 12) warns on every open of a 1.4 file."""
    frame = frame.set_crs(crs.to_wkt(), allow_override=True)
    frame.to_file(path, layer=layer, driver="GPKG", engine="pyogrio", promote_to_multi=True,
                  geometry_type="MultiPolygon", dataset_options={"VERSION": GPKG_VERSION})


GPKG_VERSION = "1.2"


def zone_class(cfg: LoadedConfig, products: list[str]) -> int | None:
    """The risk class code from which cells form priority zones (None: no zones)."""
    settings = cfg.spec.products
    if "risk_class" not in products or not settings.priority_zones.enabled:
        return None
    return settings.risk_class.names.index(settings.priority_zones.from_class) + 1


def summaries_wanted(cfg: LoadedConfig, products: list[str], districts: Districts | None) -> bool:
    return districts is not None or zone_class(cfg, products) is not None


def build_summary(cfg: LoadedConfig, grid: Grid, layers: dict, products: dict[str, da.Array],
                  districts: Districts | None) -> tuple[da.Array | None, set[str]]:
    """The lazy per-chunk parts behind districts.gpkg and priority_zones.gpkg (None: neither
    wanted), and which of FIELDS they draw on."""
    if not summaries_wanted(cfg, list(products), districts):
        return None, set()
    zones = zone_class(cfg, list(products))
    fields = {short: products[name] for short, name in product_fields().items() if name in products}
    if "L" in layers:
        fields["L"] = layers["L"].array
        if layers["L"].known is not None:  # where L is the records' own density beyond their extent
            fields["L_lb"] = da.map_blocks(_beyond_extent, layers["L"].array, layers["L"].known, dtype="uint8")
    for extra in ("P_c_all", "direct"):
        if extra in products:
            fields[extra] = products[extra]
    for o in RELEASE_OUTCOMES:
        if f"released_{o}" in layers:
            fields[f"rel_{o}"] = layers[f"released_{o}"].array
    if "C" in layers:
        fields["C"] = layers["C"].array
    elif "A_c" in layers and getattr(cfg.spec.inputs["A_c"], "units", None) == "site_km2":
        fields["C"] = (layers["A_c"].array > 0) * np.float32(100.0)  # a site's area: its cells count as cleared
    elif "A_c" in layers:  # cleared share from cleared area
        fields["C"] = layers["A_c"].array * (100.0 / grid.cell_area_km2)
    return summary_array(grid, district_codes(grid, districts), fields, len(districts.names) if districts else 0,
                         len(cfg.spec.products.risk_class.names), zones,
                         tasking_for(cfg, grid) if zones is not None else None), set(fields)


def _beyond_extent(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    return ((known == 0) & ~np.isnan(values)).astype(np.uint8)


def product_fields() -> dict[str, str]:
    """Short summary name → product, from the registry (with land release, classes and zones use P_res)."""
    return {p.summary_field: name for name, p in PRODUCTS.items() if p.summary_field}


def write_summaries(staging: Path, parts: dict[str, dict], cfg: LoadedConfig, grid: Grid,
                    districts: Districts | None, have: set[str]) -> dict[str, object]:
    """districts.gpkg + districts.csv and priority_zones.gpkg into `staging`; returns the tables."""
    names = cfg.spec.products.risk_class.names
    written: dict[str, object] = {}
    if districts is not None:
        total = merge_districts(parts, grid, len(districts.names), len(names))
        table = district_table(total, districts, names, grid.cell_area_km2, have,
                               zone_class(cfg, [product_fields()[f] for f in have if f in product_fields()]))
        write_vector(table, staging / "districts.gpkg", "districts", grid.crs)
        table.drop(columns="geometry").to_csv(staging / "districts.csv", index=False, float_format="%.6g")
        written["districts"] = table
    if zone_class(cfg, [product_fields()[f] for f in have if f in product_fields()]) is not None:
        zones = _residual_names(merge_zones(parts, grid, districts, names,
                                            cfg.spec.products.priority_zones.min_area_km2), have)
        write_vector(zones, staging / "priority_zones.gpkg", "priority_zones", grid.crs)
        written["priority_zones"] = zones
    return written
