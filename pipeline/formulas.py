"""The source paper's equations, each written once: pure NumPy in, NumPy out, no I/O.

NaN means "no data" in and out. Equation numbers are the paper's: (1) environmental impact,
(2) contamination probability, (3) clearance sustainability coefficient, (4) ecological
recovery rate. Where the paper is ambiguous,
the resolution (see README, "How minemap reads the paper") is stated in the docstring.
"""

from __future__ import annotations

import numpy as np

SUSTAINABLE = 0.7  # CSC above this is "sustainable" (paper, with eq. 3)


def mine_density_coefficient(L: np.ndarray, L_sat: float) -> np.ndarray:
    """H_m = min(L / L_sat, 1): historical mine-laying density as a coefficient in [0, 1].

    The paper gives H_m as a coefficient without its scaling; we saturate the mine density L
    (mines/km²) at L_sat, a config setting.
    """
    return np.minimum(L / np.float32(L_sat), np.float32(1.0)).astype(np.float32, copy=False)


def distance_decay(d: np.ndarray, decay_m: float) -> np.ndarray:
    """H_m = exp(−d / λ), d the distance (m) to the nearest mine record: 1 on a record, 1/e at λ.
    Not the paper's: a form of H_m `minemap calibrate` may fit instead of min(L / L_sat, 1) (#21)."""
    return np.exp(-np.asarray(d, np.float64) / decay_m).astype(np.float32)


def evidence_count(*layers: np.ndarray) -> np.ndarray:
    """How many of the evidence layers (those of H_m, S_t, V_i that count, see README) have data
    in each cell, as uint8."""
    count = np.isfinite(layers[0]).astype(np.uint8)
    for x in layers[1:]:
        count += np.isfinite(x)
    return count


def contamination_probability(H_m: np.ndarray, S_t: np.ndarray, V_i: np.ndarray,
                              require_all: bool = False, weights: tuple[float, float, float] | None = None
                              ) -> np.ndarray:
    """Eq. (2): P_c = (H_m + S_t + V_i) / 3.

    Drone coverage is partial, so where a layer has no data P_c is the mean of those that do
    (all three present gives the paper's equation exactly); no layer at all gives NaN.
    With `require_all`, any missing layer gives NaN. `weights` (w_H, w_S, w_V), summing to 1,
    give the weighted variant Σ wᵢxᵢ / Σ wᵢ over the layers with data (1/3 each is the paper's).
    """
    layers = [np.asarray(x, dtype=np.float32) for x in (H_m, S_t, V_i)]
    if weights is not None and len(set(weights)) > 1:
        return _weighted_mean(layers, weights, require_all)
    if require_all:
        return ((layers[0] + layers[1] + layers[2]) / np.float32(3)).astype(np.float32, copy=False)
    total = np.zeros(layers[0].shape, dtype=np.float32)
    n = np.zeros(layers[0].shape, dtype=np.float32)
    for x in layers:  # in place, layer by layer: a third of the memory traffic of stacking them
        have = np.isfinite(x)
        np.add(total, x, out=total, where=have)
        n += have
    with np.errstate(invalid="ignore", divide="ignore"):
        total /= n  # 0 / 0: NaN where no layer has data
    return total


def _weighted_mean(layers: list[np.ndarray], weights: tuple[float, float, float], require_all: bool) -> np.ndarray:
    """Σ wᵢxᵢ / Σ wᵢ over the layers with data; NaN where no layer of positive weight has data."""
    total = np.zeros(layers[0].shape, dtype=np.float32)
    weight = np.zeros(layers[0].shape, dtype=np.float32)
    for x, w in zip(layers, weights):
        have = np.isfinite(x)
        if require_all:
            total = np.where(have, total, np.float32(np.nan))
        np.add(total, np.float32(w) * x, out=total, where=have)
        weight += np.float32(w) * have
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(weight > 0, total / weight, np.float32(np.nan)).astype(np.float32, copy=False)


def environmental_impact(L: np.ndarray, D: np.ndarray, C: np.ndarray, R: np.ndarray) -> np.ndarray:
    """Eq. (1): E = L·D − C·R.

    L mines/km², D degradation coefficient, C cleared-land percentage of the cell (0–100),
    R restoration effectiveness. E is in the paper's units (mines/km² less percentage points).
    """
    return (L * D - C * R).astype(np.float32, copy=False)


def recovery_rate(A_c: np.ndarray, B_r: np.ndarray, T_s: np.ndarray, P_c: np.ndarray) -> np.ndarray:
    """Eq. (4): R_e = (A_c·B_r) / (T_s·P_c).

    A_c km² cleared in the cell, B_r biodiversity restoration coefficient, T_s soil toxicity
    index, P_c pollution concentration factor. A zero denominator, or one so small that the
    quotient overflows float32 (found by tests/test_properties.py), gives NaN, never inf.
    """
    denominator = T_s * P_c
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        out = (A_c * B_r) / denominator
    return np.where(np.isfinite(out), out, np.float32(np.nan)).astype(np.float32, copy=False)


def clearance_sustainability(E_f: np.ndarray, B_r: np.ndarray, D_i: np.ndarray) -> np.ndarray:
    """Eq. (3): CSC = (E_f + B_r) / 2 · D_i; above SUSTAINABLE (0.7) the clearance is sustainable.

    E_f efficiency of the clearance method, B_r biodiversity restoration, D_i the paper's
    disturbance intensity (from mechanical impact) of the method. As printed, more disturbance
    raises CSC; minemap keeps the formula as published. Only meaningful where land was cleared:
    the caller masks the rest.
    """
    return ((E_f + B_r) / np.float32(2) * D_i).astype(np.float32, copy=False)


def residual_probability(P_c: np.ndarray, released_share: np.ndarray) -> np.ndarray:
    """P_res = P_c · (1 − released_share): contamination probability left after land release.

    Not one of the paper's equations (the paper has no land release): minemap's addition, so
    that land cancelled, reduced or cleared under IMAS stops showing as contaminated. P_c
    itself stays the paper's equation; released_share is the share of the cell released (0–1).
    """
    return (P_c * (np.float32(1) - released_share)).astype(np.float32, copy=False)
