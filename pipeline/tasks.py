"""Field tasks: priority zones cut along a fixed tasking grid, each part with a stable ID.

A zone of 98 km² cannot be handed to a team; a 1 km square of it can. The tasking grid is
fixed (squares of `side` metres aligned to the grid CRS origin), so a task's square never
moves between runs; a cell belongs to the square holding its centre, and a task is a zone's
4-connected cells within one square (on a grid whose cell edges fall on the square lines, as
any grid with origin 0 and a cell dividing the side: exactly zone ∩ square; never a part
smaller than a cell, so nothing is dropped or merged). A task's ID is the MGRS reference of
its square (1 km squares: the MGRS 1 km square itself on a UTM grid) plus a suffix numbering
the zone parts in it from the north-west: it depends on the land in that square only, never
on zone ranks, so the same land keeps its ID across runs and updates.

Cells are read in the same chunk pass as the zones (`task_pieces`, one part per chunk, kept
for updates); `merge_tasks` joins pieces across chunk borders within a square.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import mgrs
import numpy as np
import pandas as pd
import shapely
from affine import Affine
from pyproj import Transformer
from rasterio.features import shapes
from scipy import ndimage

from .grid import Grid
from .joins import chunk_pieces, class_column, piece_groups, ring_polygon

TASK_STATS = ("cells", "pc_n", "pc_sum", "by_class", "districts", "n_sum", "n_min", "direct", "square", "first")
MGRS_DIGITS = {100_000: 0, 10_000: 1, 1000: 2, 100: 3, 10: 4, 1: 5}  # reference precision (m) → digits
POINT_DIGITS = 4  # a task's own point: MGRS to 10 m
LONLAT = "EPSG:4326"


@dataclass(frozen=True)
class Tasking:
    """The tasking grid: squares of `side` metres aligned to the grid CRS origin; the grid's
    left and top edges and its cell size, to put each cell in the square holding its centre."""

    side: float
    left: float
    top: float
    cell: float
    max_km2: float

    def square_cols(self, cols: np.ndarray) -> np.ndarray:
        """The square column (x // side) of grid columns `cols` (by cell centre)."""
        return np.floor((self.left + (cols + 0.5) * self.cell) / self.side).astype(np.int64)

    def square_rows(self, rows: np.ndarray) -> np.ndarray:
        """The square row (y // side, growing northwards) of grid rows `rows` (by cell centre)."""
        return np.floor((self.top - (rows + 0.5) * self.cell) / self.side).astype(np.int64)

    @property
    def reference_m(self) -> int:
        """The MGRS precision naming a square: the largest power of ten dividing its side, so
        each square's south-west corner names it alone (on a UTM grid of that zone)."""
        return next((q for q in MGRS_DIGITS if abs(self.side / q - round(self.side / q)) < 1e-9), 1)

    def describe(self) -> dict:
        return {"max_km2": self.max_km2, "square_m": self.side, "square_km2": round(self.side**2 / 1e6, 6),
                "aligned_to": "grid CRS origin (0, 0)", "id_reference_m": self.reference_m}


def tasking_for(cfg, grid: Grid) -> Tasking | None:
    """The run's tasking grid ([tasks]; None: no tasks): the square's side is √max_km2 km rounded
    down to whole cells (at least one), so a square never holds more than max_km2."""
    spec = cfg.spec.tasks
    if not spec.enabled:
        return None
    cell = grid.resolution
    cells = max(1, math.floor(math.sqrt(spec.max_km2) * 1000 / cell + 1e-9))
    a = grid.geobox.affine
    return Tasking(side=cells * cell, left=a.c, top=a.f, cell=cell, max_km2=spec.max_km2)


def task_pieces(mask: np.ndarray, cls: np.ndarray, p: np.ndarray, count: np.ndarray | None, code: np.ndarray,
                n_codes: int, n_classes: int, direct: np.ndarray | None, offset: tuple[int, int],
                tasking: Tasking) -> dict | None:
    """One chunk's zone cells (`mask`) cut into 4-connected parts within each tasking square:
    sums per part (as the zones'), each part's square and first cell, outlines (pixel coordinates)
    and the parts' labels along the chunk's edges (to join parts across chunk borders)."""

    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    sub = mask[r0:r1, c0:c1]
    sq_r = tasking.square_rows(np.arange(r0, r1) + offset[0])
    sq_c = tasking.square_cols(np.arange(c0, c1) + offset[1])
    # cut the connectivity along the square lines: a blank row/column between two squares
    br, bc = np.flatnonzero(np.diff(sq_r)) + 1, np.flatnonzero(np.diff(sq_c)) + 1
    spaced = np.insert(np.insert(sub, br, False, axis=0), bc, False, axis=1)
    lab, n = ndimage.label(spaced)
    keep_r = np.arange(sub.shape[0]) + np.searchsorted(br, np.arange(sub.shape[0]), side="right")
    keep_c = np.arange(sub.shape[1]) + np.searchsorted(bc, np.arange(sub.shape[1]), side="right")
    labels = lab[np.ix_(keep_r, keep_c)]
    win = (slice(r0, r1), slice(c0, c1))
    inside = labels[sub] - 1
    rr, cc = np.nonzero(sub)
    values = p[win][sub].astype(np.float64)
    known = ~np.isnan(values)
    first = (rr + r0 + offset[0]).astype(np.int64) * 2**32 + (cc + c0 + offset[1])  # row-major: north-west first
    order = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(order, inside, first)
    at = np.full(n, -1, dtype=np.int64)
    at[inside] = np.arange(len(inside))  # any cell of each part: its square
    stats = {
        "cells": np.bincount(inside, minlength=n),
        "pc_n": np.bincount(inside, weights=known, minlength=n),
        "pc_sum": np.bincount(inside, weights=np.where(known, values, 0.0), minlength=n),
        "by_class": np.bincount(inside * (n_classes + 1) + cls[win][sub].astype(np.intp),
                                minlength=n * (n_classes + 1)).reshape(n, n_classes + 1),
        "districts": np.bincount(inside * n_codes + code[win][sub].astype(np.intp),
                                 minlength=n * n_codes).reshape(n, n_codes),
        "direct": np.bincount(inside, weights=direct[win][sub] == 1, minlength=n) if direct is not None
        else np.zeros(n),
        "square": np.column_stack([sq_r[rr[at]], sq_c[cc[at]]]),
        "first": order,
    }
    if count is not None:
        stats["n_sum"] = np.bincount(inside, weights=count[win][sub].astype(np.float64), minlength=n)
        n_min = np.full(n, np.iinfo(np.int64).max)
        np.minimum.at(n_min, inside, count[win][sub].astype(np.int64))
        stats["n_min"] = n_min
    outlines: list[list] = [[] for _ in range(n)]
    for geom, value in shapes(labels.astype(np.int32, copy=False), mask=sub, connectivity=4,
                              transform=Affine.translation(offset[1] + c0, offset[0] + r0)):
        outlines[int(value) - 1].append(ring_polygon(geom["coordinates"]))
    wkb = [shapely.to_wkb(o[0] if len(o) == 1 else shapely.union_all(o)) for o in outlines]
    h, w = mask.shape
    edges = {side: np.zeros(size, dtype=np.int32) for side, size in
             (("top", w), ("bottom", w), ("left", h), ("right", h))}
    if r0 == 0:
        edges["top"][c0:c1] = labels[0]
    if r1 == h:
        edges["bottom"][c0:c1] = labels[-1]
    if c0 == 0:
        edges["left"][r0:r1] = labels[:, 0]
    if c1 == w:
        edges["right"][r0:r1] = labels[:, -1]
    return {"n": n, "stats": stats, "wkb": wkb, "edges": edges}


@dataclass
class Merged:
    """Task parts joined across chunk borders: their sums, squares, first cells and outlines
    (grid CRS)."""

    stats: dict[str, np.ndarray]
    geoms: np.ndarray


def join_pieces(parts: dict[str, dict], grid: Grid) -> Merged | None:
    """Join the chunks' task pieces that touch across a chunk border within one square."""
    pieces = chunk_pieces(parts, grid, "tasks")
    if not pieces:
        return None
    # pieces join across a chunk border only within one square (the border may be a square line)
    roots = piece_groups(pieces, lambda t, la, o, lb: np.array_equal(t["stats"]["square"][la - 1],
                                                                     o["stats"]["square"][lb - 1]))
    groups, group_of = np.unique(roots, return_inverse=True)
    g = len(groups)
    stats: dict[str, np.ndarray] = {}
    for key in TASK_STATS:
        if any(key not in t["stats"] for t in pieces.values()):
            continue
        values = np.concatenate([np.asarray(t["stats"][key]) for t in pieces.values()])
        if key == "square":  # one square per group: pieces join only within one
            out = np.zeros((g, 2), dtype=np.int64)
            out[group_of] = values
        elif key in ("first", "n_min"):
            out = np.full(g, np.iinfo(np.int64).max)
            np.minimum.at(out, group_of, values.astype(np.int64))
        elif values.ndim == 2:
            out = np.zeros((g, values.shape[1]))
            np.add.at(out, group_of, values)
        else:
            out = np.bincount(group_of, weights=values.astype(np.float64), minlength=g)
        stats[key] = out
    wkb = shapely.from_wkb([w for t in pieces.values() for w in t["wkb"]])
    members: list[list[int]] = [[] for _ in range(g)]
    for k, grp in enumerate(group_of):
        members[grp].append(k)
    outlines = [wkb[m[0]] if len(m) == 1 else shapely.simplify(shapely.union_all(wkb[m]), 0) for m in members]
    a = grid.geobox.affine
    geoms = shapely.transform(np.array(outlines, dtype=object),
                              lambda xy: np.column_stack([a.a * xy[:, 0] + a.b * xy[:, 1] + a.c,
                                                          a.d * xy[:, 0] + a.e * xy[:, 1] + a.f]))
    return Merged(stats, geoms)


def task_ids(squares: np.ndarray, first: np.ndarray, tasking: Tasking, crs) -> list[str]:
    """Each part's ID: its square's MGRS reference (the square's south-west cell of the reference
    precision, taken at its middle so no rounding puts it next door) and a suffix numbering the
    parts of that reference from the north-west (squares sharing a reference, as on a grid
    outside its UTM zone, are numbered on: IDs never repeat)."""
    q = tasking.reference_m
    to_lonlat = Transformer.from_crs(crs, LONLAT, always_xy=True)
    unique, inverse = np.unique(squares, axis=0, return_inverse=True)
    inverse = np.asarray(inverse).reshape(-1)
    lon, lat = to_lonlat.transform(unique[:, 1] * tasking.side + q / 2, unique[:, 0] * tasking.side + q / 2)
    m = mgrs.MGRS()
    refs = np.array([m.toMGRS(float(b), float(a), MGRSPrecision=MGRS_DIGITS[q]) for a, b in zip(lon, lat)])
    ref = refs[inverse]
    # within a reference: north first, then west, then the part's first cell
    order = np.lexsort((first, squares[:, 1], -squares[:, 0], ref))
    ids = np.empty(len(ref), dtype=object)
    k, prev = 0, None
    for i in order:
        k = k + 1 if ref[i] == prev else 1
        prev = ref[i]
        ids[i] = f"{ref[i]}-{k}"
    return ids.tolist()


def mgrs_of(lon: np.ndarray, lat: np.ndarray, digits: int = POINT_DIGITS) -> list[str]:
    """MGRS grid references (`digits` per coordinate: 4 = 10 m) of lon/lat points."""
    m = mgrs.MGRS()
    return [m.toMGRS(float(b), float(a), MGRSPrecision=digits) for a, b in zip(lon, lat)]


def merge_tasks(parts: dict[str, dict], grid: Grid, tasking: Tasking, zones: gpd.GeoDataFrame,
                class_names: list[str], district_names: list[str] | None, residual: bool,
                hazards: tuple[np.ndarray, np.ndarray] | None = None) -> gpd.GeoDataFrame:
    """One row per task (grid CRS): ID, zone (its rank at this run), class of most of its area,
    km² per class, mean probability, evidence, district, a point (its centroid, or a point inside
    it when the centroid falls outside) in x/y, lon/lat and MGRS, its bbox, the hazard IDs it
    overlaps; sorted by zone rank, then class, then area. Parts of zones left out of
    priority_zones.gpkg (below min_area_km2) are left out here too."""

    prob = "mean_residual" if residual else "mean_pc"
    class_columns = [class_column(name) for name in class_names]
    columns = ["task_id", "zone", "risk_class", "area_km2", *class_columns, prob, "mean_evidence", "min_evidence",
               "direct_evidence", "district", "x", "y", "lon", "lat", "mgrs", "point", "xmin", "ymin", "xmax",
               "ymax", *(["hazard_ids"] if hazards is not None else [])]
    merged = join_pieces(parts, grid)
    if merged is None or len(zones) == 0:
        return gpd.GeoDataFrame({c: [] for c in columns}, geometry=[], crs=None)
    s, geoms = merged.stats, merged.geoms
    ids = np.array(task_ids(s["square"], s["first"], tasking, grid.crs), dtype=object)
    # each part lies in one zone: the zone holding a point inside it (none: a zone left out)
    inner = shapely.point_on_surface(geoms)
    zone_geoms = np.asarray(zones.geometry.values)
    # the zones query a tree of the points, so each zone is prepared once: points against a tree of
    # large unprepared zones took 1.6 s for 6,359 tasks at 110 km
    hit_zone, hit_part = shapely.STRtree(inner).query(zone_geoms, predicate="intersects")
    zone = np.zeros(len(geoms), dtype=np.int64)
    zone[hit_part] = np.asarray(zones["rank"])[hit_zone]
    keep = zone > 0
    cell_km2 = grid.cell_area_km2
    by_class = s["by_class"][keep]
    code = by_class.shape[1] - 1 - np.argmax(by_class[:, ::-1], axis=1)  # most of its area; ties: the higher
    geoms, inner, cells = geoms[keep], inner[keep], s["cells"][keep]
    centroid = shapely.centroid(geoms)
    inside = shapely.contains_properly(geoms, centroid)
    point = np.where(inside, centroid, inner)
    x, y = shapely.get_x(point), shapely.get_y(point)
    lon, lat = Transformer.from_crs(grid.crs, LONLAT, always_xy=True).transform(x, y)
    bounds = shapely.bounds(geoms)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_p = np.where(s["pc_n"][keep] > 0, s["pc_sum"][keep] / s["pc_n"][keep], np.nan)
    names = ["", *(district_names or [])]
    by_district = s["districts"][keep]
    frame = pd.DataFrame({
        "task_id": ids[keep],
        "zone": zone[keep],
        "risk_class": [class_names[int(c) - 1] if c > 0 else "insufficient evidence" for c in code],
        "area_km2": cells * cell_km2,
        **{col: by_class[:, k + 1] * cell_km2 for k, col in enumerate(class_columns)},
        prob: mean_p,
        "mean_evidence": s["n_sum"][keep] / cells if "n_sum" in s else np.nan,
        "min_evidence": s["n_min"][keep].astype(int) if "n_min" in s else -1,
        "direct_evidence": (s["direct"][keep] > 0).astype(int),
        "district": [names[int(np.argmax(row))] if district_names and row[1:].sum() else "" for row in by_district],
        "x": x, "y": y, "lon": lon, "lat": lat,
        "mgrs": mgrs_of(lon, lat),
        "point": np.where(inside, "centroid", "inside point"),
        "xmin": bounds[:, 0], "ymin": bounds[:, 1], "xmax": bounds[:, 2], "ymax": bounds[:, 3],
    })
    if hazards is not None:
        frame["hazard_ids"] = hazard_ids(geoms, *hazards)
    frame["class_code"] = code
    frame["geometry"] = geoms
    frame = frame.sort_values(["zone", "class_code", "area_km2", "task_id"], ascending=[True, False, False, True],
                              kind="stable")
    return gpd.GeoDataFrame(frame.drop(columns="class_code").reset_index(drop=True), geometry="geometry", crs=None)


def hazard_ids(tasks: np.ndarray, hazard_geoms: np.ndarray, ids: np.ndarray) -> list[str]:
    """The IDs of the hazard polygons each task overlaps (interiors meet; touching along an edge
    is not overlapping), sorted, joined by ';'."""
    found: list[set[str]] = [set() for _ in range(len(tasks))]
    t, h = shapely.STRtree(hazard_geoms).query(tasks, predicate="intersects")
    if len(t):
        ok = ~shapely.touches(tasks[t], hazard_geoms[h])
        for i, j in zip(t[ok], h[ok]):
            if ids[j] is not None and not (isinstance(ids[j], float) and math.isnan(ids[j])):
                found[i].add(str(ids[j]))
    return [";".join(sorted(f)) for f in found]


def top_tasks(tasks: gpd.GeoDataFrame, class_names: list[str], n: int = 10) -> pd.DataFrame:
    """The `n` tasks to send teams to first (for the briefing's summary page and the report):
    the highest class, then the highest mean probability, then the largest; with their ID, MGRS
    reference, km², class, mean probability, zone and district."""
    prob = "mean_residual" if "mean_residual" in tasks else "mean_pc"
    cols = ["task_id", "mgrs", "area_km2", "risk_class", prob, "zone", "district"]
    if len(tasks) == 0:
        return pd.DataFrame(columns=cols)
    code = [class_names.index(c) + 1 if c in class_names else 0 for c in tasks["risk_class"]]
    order = pd.DataFrame({"class": np.negative(code), "p": -tasks[prob].fillna(-1.0), "area": -tasks["area_km2"],
                          "id": tasks["task_id"]}).sort_values(["class", "p", "area", "id"], kind="stable").index[:n]
    return pd.DataFrame(tasks.loc[order, cols]).reset_index(drop=True)
