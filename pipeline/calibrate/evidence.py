"""The layers behind P_c at chosen cells (events, or a lattice sample of the area), for every
candidate form of H_m: L per kernel bandwidth (`evaluate.kernel`, never a window per cell) and
the distance to the nearest mine record; S_t and V_i as the run binds them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely
from scipy.spatial import cKDTree

from ..config import DensitySource, LoadedConfig
from ..grid import Grid
from ..sources import load_layer
from ..evaluate.cv import density_at


@dataclass(frozen=True)
class Records:
    """The mine records of the config's density source L: points and minefield polygons."""

    xy: np.ndarray
    polygons: np.ndarray
    counts: np.ndarray  # of the points
    polygon_density: np.ndarray  # items per km² of the polygons

    def auto_l_sat(self, bandwidth: float) -> float:
        """L_sat = "auto" for this bandwidth: the run's rule (`assessment.auto_l_sat`)."""
        from ..assessment import auto_l_sat, density_at_records

        return auto_l_sat(density_at_records(self.xy, self.counts, bandwidth, self.polygon_density))

    def distance(self, cells_xy: np.ndarray) -> np.ndarray:
        """Metres from each cell centre to the nearest record (0 inside a minefield polygon)."""
        d = np.full(len(cells_xy), np.inf)
        if len(self.xy):
            d = cKDTree(self.xy).query(cells_xy)[0]
        if len(self.polygons):
            tree = shapely.STRtree(self.polygons)
            pts = shapely.points(cells_xy)
            (i, _), dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
            d[i] = np.minimum(d[i], dist)
        return d


def records_of(cfg: LoadedConfig, grid: Grid) -> Records:
    """Every record of inputs.L (a density source) with a count above 0."""
    spec = cfg.spec.inputs["L"]
    b = grid.geobox.boundingbox
    reach = 2 * ((b.right - b.left) + (b.top - b.bottom))  # every record near enough to matter is in every chunk's job
    jobs = load_layer("L", spec.model_copy(update={"bandwidth_m": reach}), cfg, grid).jobs
    first = next(iter(jobs.values()))
    kept = first.counts > 0
    seen, polys, dens = set(), [], []
    for job in jobs.values():
        for g, d in zip(job.polygons, job.polygon_density):
            key = shapely.to_wkb(g)
            if d > 0 and key not in seen:
                seen.add(key)
                polys.append(g)
                dens.append(d)
    return Records(first.xy[kept], np.array(polys, dtype=object), first.counts[kept], np.array(dens, dtype=float))


@dataclass
class Evidence:
    """At n cells: L per bandwidth, distance to the nearest record, H_m if bound, S_t, V_i."""

    L: dict[float, np.ndarray]
    distance: np.ndarray | None
    H_m: np.ndarray | None
    S_t: np.ndarray
    V_i: np.ndarray

    def take(self, idx: np.ndarray) -> Evidence:
        """The same layers at the cells `idx` (e.g. from distinct cells to every event's cells)."""
        pick = (lambda a: None if a is None else a[idx])
        return Evidence({k: v[idx] for k, v in self.L.items()}, pick(self.distance), pick(self.H_m),
                        self.S_t[idx], self.V_i[idx])


def density_config(cfg: LoadedConfig) -> bool:
    """Whether H_m comes from a density source of records (the forms of H_m can then be varied)."""
    return "H_m" not in cfg.spec.inputs and isinstance(cfg.spec.inputs.get("L"), DensitySource)


def evidence_at(cfg: LoadedConfig, grid: Grid, rows: np.ndarray, cols: np.ndarray, bandwidths: list[float],
                records: Records | None) -> Evidence:
    """The layers at the cells (rows, cols)."""
    inputs = cfg.spec.inputs

    def sample(var: str) -> np.ndarray:
        if var not in inputs:
            return np.full(len(rows), np.nan)
        layer = load_layer(var, inputs[var], cfg, grid)
        return np.asarray(layer.array.vindex[rows, cols].compute(), dtype=np.float64)

    h_m = sample("H_m") if "H_m" in inputs else None
    L: dict[float, np.ndarray] = {}
    distance = None
    if density_config(cfg):
        L = density_at(cfg, grid, rows, cols, bandwidths) if bandwidths else {}
        if inputs["L"].extent is not None and L:  # as the run: unknown outside the extent unless a record reaches
            known = load_layer("L", inputs["L"], cfg, grid).known
            outside = np.asarray(known.vindex[rows, cols].compute()) == 0
            L = {b: np.where(outside & (v <= 0), np.nan, v) for b, v in L.items()}
        if records is not None:
            xs, ys = grid.geobox.affine @ (cols + 0.5, rows + 0.5)
            distance = records.distance(np.c_[xs, ys])
    elif h_m is None:
        L = {0.0: sample("L")}
    return Evidence(L, distance, h_m, sample("S_t"), sample("V_i"))


def lattice(grid: Grid, area, max_cells: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Cells of the region (and of `area`, if given) on a lattice of every s-th row and column,
    s the smallest stride giving at most about `max_cells` of the grid's cells: (rows, cols, s)."""
    ny, nx = grid.shape
    s = max(1, int(np.ceil(np.sqrt(ny * nx / max_cells))))
    rr, cc = np.mgrid[s // 2:ny:s, s // 2:nx:s]
    rows, cols = rr.ravel(), cc.ravel()
    xs, ys = grid.geobox.affine @ (cols + 0.5, rows + 0.5)
    inside = shapely.contains_xy(grid.region.geom, xs, ys)
    if area is not None:
        inside &= shapely.contains_xy(area, xs, ys)
    return rows[inside], cols[inside], s
