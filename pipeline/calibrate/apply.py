"""What a run does with a config's `[model]` (issue #21): H_m as a distance decay when that
form was fitted, and `calibrated_probability` from P_c through the fitted monotone map."""

from __future__ import annotations

from dataclasses import dataclass

import dask.array as da
import numpy as np
import shapely
from odc.geo.geobox import GeoBox
from scipy.spatial import cKDTree

from ..formulas import distance_decay
from ..grid import Grid
from ..tiles import tiled_array
from . import isotonic


@dataclass(frozen=True)
class DistanceJob:
    """H_m = exp(−d/λ) on one chunk, d the distance from each cell centre to the nearest record."""

    xy: np.ndarray  # point records (grid CRS)
    polygons: np.ndarray  # minefield polygons
    gbox: GeoBox
    decay_m: float

    def __call__(self) -> np.ndarray:
        ny, nx = self.gbox.shape
        a = self.gbox.affine
        cc, rr = np.meshgrid(np.arange(nx) + 0.5, np.arange(ny) + 0.5)
        xs, ys = a * (cc.ravel(), rr.ravel())
        d = np.full(xs.shape, np.inf)
        if len(self.xy):
            d = cKDTree(self.xy).query(np.c_[xs, ys])[0]
        if len(self.polygons):
            (i, _), dist = shapely.STRtree(self.polygons).query_nearest(shapely.points(xs, ys), return_distance=True,
                                                                        all_matches=False)
            d[i] = np.minimum(d[i], dist)
        return distance_decay(d, self.decay_m).reshape(ny, nx)


def distance_h_m(records, grid: Grid, decay_m: float) -> da.Array:
    """H_m of the distance-decay form over the grid from the L source's records (a `Features`)."""
    geoms = records.geoms if records is not None else np.empty(0, object)
    points = np.isin(shapely.get_type_id(geoms), (0, 4))
    xy = shapely.get_coordinates(geoms[points]) if points.any() else np.zeros((0, 2))
    jobs = {idx: DistanceJob(xy, geoms[~points], grid.tile_geobox(idx), decay_m) for idx in grid.tile_ids()}
    token = f"{decay_m}-{records.digest() if records is not None else ''}-{grid.fingerprint()}"
    return tiled_array("distance-H_m", grid, jobs, token=token)


def calibrated(p_c: np.ndarray, knots_x: list[float], knots_p: list[float]) -> np.ndarray:
    """The calibrated probability of each cell from its P_c (NaN stays NaN: not assessed)."""
    return isotonic.apply(np.asarray(knots_x), np.asarray(knots_p), p_c).astype(np.float32)


def model_section(cfg) -> list[tuple[str, str]]:
    """The report's "Fitted model" section (heading, escaped HTML): what was applied, held-out
    skill beside the baseline, the reliability diagram (inline) and ECE; none without [model]."""
    import base64
    from html import escape

    from ..model import banner
    from ..writers.curves import reliability_png

    m = cfg.spec.model
    if m is None:
        return []
    cv = m.cv
    f = (lambda x, d=3: "–" if x is None else f"{x:.{d}f}")
    parts = []
    if text := banner(m):
        parts.append(f"<p class='banner'>{escape(text)}</p>")
    parts.append(f"<p>{escape(m.describe())}. Fitted {escape(m.fitted_utc)} by minemap {escape(m.minemap_version)} "
                 f"on {', '.join(escape(e.path) for e in m.events)}; spatial block cross-validation, "
                 f"{cv.folds} folds of {cv.blocks} blocks of {cv.block_km:g} km.</p>")
    rows = [("Fitted model (nested: picked on other folds)", cv.heldout_auc, cv.heldout_auc_fold_mean, cv.capture_10),
            ("Baseline: nearest record", cv.baseline_auc, cv.baseline_auc_fold_mean, cv.baseline_capture_10)]
    parts.append("<div class='wide'><table><thead><tr><th>ranking</th><th>held-out AUC (pooled)</th>"
                 "<th>held-out AUC (fold mean)</th><th>capture at 10 % of the area</th></tr></thead><tbody>"
                 + "".join(f"<tr><td>{escape(r[0])}</td><td class='num'>{f(r[1])}</td><td class='num'>{f(r[2])}</td>"
                           f"<td class='num'>{f(r[3])}</td></tr>" for r in rows) + "</tbody></table></div>")
    png = base64.b64encode(reliability_png([b.model_dump() for b in m.reliability],
                                           f"Reliability on held-out folds (ECE {cv.ece:.3f})")).decode()
    parts.append(f'<figure><img src="data:image/png;base64,{png}" alt="Reliability diagram"><figcaption><strong>'
                 "Reliability diagram</strong> — calibrated_probability against the share of held-out events with "
                 f"a device, 10 bins; expected calibration error (ECE) {cv.ece:.3f}. Each fold was calibrated by a "
                 "map fitted on the other folds only.</figcaption></figure>")
    if m.capture_classes:
        shares = [c.riskiest_share for c in m.capture_classes[1:]]
        names = ["the rest"] + [f"riskiest {100 * a:g}–{100 * b:g} %" for a, b in zip(shares, shares[1:])] \
            + [f"riskiest {100 * shares[-1]:g} %"]
        parts.append("<h3>Classes by capture</h3><div class='wide'><table><thead><tr><th>P_c class</th>"
                     "<th>from P_c</th><th>share of the assessed area</th><th>share of positive events (held out)"
                     "</th><th>share of negative events</th></tr></thead><tbody>" + "".join(
                         f"<tr><td>{escape(n)}</td><td class='num'>{f(c.threshold)}</td><td class='num'>"
                         f"{c.area_share:.1%}</td><td class='num'>{c.positives_share:.1%}</td><td class='num'>"
                         f"{c.negatives_share:.1%}</td></tr>" for n, c in zip(names, m.capture_classes))
                     + "</tbody></table></div><p class='note'>Each class is cut where P_c starts the riskiest share "
                     "of the region's assessed area. Events are counted by their out-of-fold scores. <code>[products.risk_class] by = "
                     "\"capture\"</code> classes the map this way.</p>")
    parts.append("<p class='note'>calibrated_probability: the probability that land like the events' (searched "
                 "land, as the team chose it) holds at least one device, given the cell's P_c; P_c itself is the "
                 "paper's eq. (2) with the fitted settings.</p>")
    return [("Fitted model: skill beside the nearest-record baseline", "\n".join(parts))]
