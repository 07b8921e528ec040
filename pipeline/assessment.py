"""What counts as evidence, and how much is enough to assess a cell (issue #20).

The paper's P_c averages H_m, S_t and V_i. minemap assesses a cell only where enough of them are
*evidence*: bound to data (not a filler constant) and given a weight above 0. These rules are
minemap's, not the paper's; the README ("How minemap reads the paper") states each with its reason.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree

from .config import ConstantSource, LoadedConfig

EVIDENCE = ("H_m", "S_t", "V_i")
# the words a field team reads for each layer (legends, pages), symbols stay in technical text
WORDS = {"H_m": "mine records", "S_t": "soil map", "V_i": "drone survey"}
AUTO_PERCENTILE = 90  # L_sat = "auto": this percentile of L at the records' own positions
DEFAULT_L_SAT = 50.0  # mines/km², where there is no record to take "auto" from


def evidence_layers(cfg: LoadedConfig) -> list[str]:
    """The layers of P_c that count as evidence: bound (H_m directly or through L), weighted
    above 0, and not a `constant` unless it says `evidence = true`."""
    inputs = cfg.spec.inputs
    weights = cfg.spec.products.contamination_probability.weights
    out = []
    for var, w in zip(EVIDENCE, weights):
        spec = inputs.get(var) or (inputs.get("L") if var == "H_m" else None)
        if w <= 0 or spec is None or (isinstance(spec, ConstantSource) and not spec.evidence):
            continue
        out.append(var)
    return out


def min_evidence(cfg: LoadedConfig) -> int:
    """`min_evidence` read against the evidence layers there are, so a records-only configuration
    is assessed wherever H_m is known; with no evidence layer at all, nothing is assessed."""
    wanted = cfg.spec.products.risk_class.min_evidence
    if wanted == 0:
        return 0
    return max(1, min(wanted, len(evidence_layers(cfg))))


def too_little_words(cfg: LoadedConfig) -> str:
    """'fewer than 2 of: mine records, soil map, drone survey': what 'not assessed' means, in words."""
    layers = evidence_layers(cfg) or list(EVIDENCE)
    return f"fewer than {min_evidence(cfg)} of: {', '.join(WORDS[v] for v in layers)}"


def density_at_records(xy: np.ndarray, counts: np.ndarray, bandwidth: float,
                       polygon_density: np.ndarray) -> np.ndarray:
    """L (items/km²) at each record's own position: the quartic kernels of the point records
    within `bandwidth` summed at each point, and each minefield polygon's own density."""
    at_points = np.zeros(len(xy))
    if len(xy):
        tree = cKDTree(xy)
        pairs = tree.query_pairs(bandwidth, output_type="ndarray")
        k0 = 3.0 / (math.pi * bandwidth ** 2) * 1e6  # the kernel's peak, per km²
        at_points += counts * k0  # each record on itself
        if len(pairs):
            d2 = np.sum((xy[pairs[:, 0]] - xy[pairs[:, 1]]) ** 2, axis=1) / bandwidth ** 2
            k = k0 * (1 - d2) ** 2
            np.add.at(at_points, pairs[:, 0], counts[pairs[:, 1]] * k)
            np.add.at(at_points, pairs[:, 1], counts[pairs[:, 0]] * k)
    return np.concatenate([at_points, np.asarray(polygon_density, dtype=float)])


def auto_l_sat(at_records: np.ndarray | None) -> float:
    """L_sat = "auto": the 90th percentile of L at the records (> 0): one record in ten, the
    densest, saturates H_m; where there are no records, the documented default."""
    values = np.asarray(at_records if at_records is not None else [], dtype=float)
    values = values[np.isfinite(values) & (values > 0)]
    return float(np.percentile(values, AUTO_PERCENTILE)) if len(values) else DEFAULT_L_SAT


def resolved_l_sat(cfg: LoadedConfig, layers: dict) -> float:
    """The L_sat a run uses: the config's number, or the "auto" rule over the run's records."""
    setting = cfg.spec.products.contamination_probability.L_sat
    if setting != "auto":
        return float(setting)
    layer = layers.get("L")
    return auto_l_sat(getattr(layer, "at_records", None))


def records_alone_warning(cfg: LoadedConfig, layers: dict) -> str | None:
    """Words for a warning when the records can never lift P_c above the first class by
    themselves (their densest H_m, weighted, under the first threshold), else None."""
    if "H_m" in cfg.spec.inputs or "H_m" not in evidence_layers(cfg):
        return None
    at = getattr(layers.get("L"), "at_records", None)
    if at is None or not len(at) or not cfg.spec.products.risk_class.enabled:
        return None
    l_sat = resolved_l_sat(cfg, layers)
    top = min(float(np.max(at)) / l_sat, 1.0)
    weights = dict(zip(EVIDENCE, cfg.spec.products.contamination_probability.weights))
    share = weights["H_m"] / sum(weights[v] for v in evidence_layers(cfg))
    rc = cfg.spec.products.risk_class
    if top * share >= rc.thresholds[0]:
        return None
    return (f"the densest mine records give H_m {top:.2f} (L {float(np.max(at)):.3g} mines/km², L_sat {l_sat:g}): "
            f"records alone can never lift P_c above {rc.names[0]!r} (< {rc.thresholds[0]:g}); "
            f"set [products.contamination_probability] L_sat = \"auto\" or a lower value")


def assessment_record(cfg: LoadedConfig, layers: dict) -> dict:
    """What run.json says of the rules above: which layers counted, how many were needed, the
    L_sat used, where L is a lower bound and what lifts a cell's class."""
    pc, rc = cfg.spec.products.contamination_probability, cfg.spec.products.risk_class
    record = {"evidence_layers": evidence_layers(cfg), "min_evidence": rc.min_evidence,
              "min_evidence_effective": min_evidence(cfg), "not_assessed_means": too_little_words(cfg),
              "products_nodata_where_not_assessed": ["contamination_probability", "residual_probability"],
              "direct_evidence_class": rc.direct_evidence_class,
              "direct_evidence": "cells holding a mine record (count > 0) or touched by a minefield or [hazards] "
                                 "polygon, unless wholly released: class at least direct_evidence_class"}
    if "L" in layers:
        record["L_sat"] = resolved_l_sat(cfg, layers)
        record["L_sat_rule"] = (f"auto: {AUTO_PERCENTILE}th percentile of L at the records' positions"
                                if pc.L_sat == "auto" else "config")
        if getattr(layers["L"], "known", None) is not None:
            record["lower_bounds"] = {"L": "outside the records' extent, L is the records' own density where one "
                                           "reaches (a lower bound) and unknown elsewhere; districts.csv "
                                           "remaining_mines_lower_bound = 1 where this applies"}
    return record
