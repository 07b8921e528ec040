"""The run's products: which variables each equation takes, and the lazy arrays that compute them.

Binding happens here; arithmetic lives in `formulas`. Cells outside the region are NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import dask.array as da
import numpy as np

from . import formulas
from .config import LoadedConfig, ProductSource
from .errors import ConfigError, Problem
from .grid import Grid
from .sources import Layer
from .sources.polygons import BurnJob
from .tiles import tiled_array


@dataclass(frozen=True)
class ProductDef:
    name: str
    title: str
    symbol: str
    equation: str
    unit: str
    variables: tuple[str, ...]
    dtype: str = "float32"


PRODUCTS: dict[str, ProductDef] = {p.name: p for p in [
    ProductDef("contamination_probability", "Contamination probability", "P_c",
               "Eq. (2) P_c = (H_m + S_t + V_i) / 3", "probability (0–1)", ("H_m", "S_t", "V_i")),
    ProductDef("evidence_count", "Evidence layers behind P_c", "n",
               "number of H_m, S_t, V_i with data (0–3)", "layers", ("H_m", "S_t", "V_i"), "uint8"),
    ProductDef("environmental_impact", "Environmental impact index", "E",
               "Eq. (1) E = L·D − C·R", "mines/km² − % (paper units)", ("L", "D", "C", "R")),
    ProductDef("recovery_rate", "Ecological recovery rate", "R_e",
               "Eq. (4) R_e = (A_c·B_r) / (T_s·P_c)", "km² per unit toxicity·concentration",
               ("A_c", "B_r", "T_s", "P_c")),
    ProductDef("risk_class", "Contamination risk class", "class",
               "class k where thresholds[k-1] ≤ P_c < thresholds[k] (config products.risk_class)", "class code",
               ("H_m", "S_t", "V_i"), "uint8"),
    ProductDef("clearance_sustainability", "Clearance sustainability coefficient", "CSC",
               "Eq. (3) CSC = (E_f + B_r) / 2 · D_i (> 0.7 sustainable)", "coefficient (0–1)",
               ("E_f", "B_r", "D_i", "C")),
    ProductDef("released_share", "Released land (IMAS land release)", "released",
               "share of the cell inside a cancelled, reduced or cleared release polygon (config [release])",
               "share of cell (0–1)", ()),
    ProductDef("residual_probability", "Residual contamination probability", "P_res",
               "P_res = P_c · (1 − released_share) (not a paper equation: P_c after land release)",
               "probability (0–1)", ("H_m", "S_t", "V_i")),
]}
INSUFFICIENT = 0  # risk_class code of cells with fewer than min_evidence of H_m, S_t, V_i
UINT8_NODATA = 255


def product_equation(name: str, cfg: LoadedConfig) -> str:
    """The equation a product's tags, maps and report name: P_c with other weights than 1/3 each
    is the weighted variant of the paper's equation, and says so."""
    pc = cfg.spec.products.contamination_probability
    if name == "contamination_probability" and not pc.paper_weights:
        w_h, w_s, w_v = (f"{w:g}" for w in pc.weights)
        return f"weighted variant of eq. (2): P_c = {w_h}·H_m + {w_s}·S_t + {w_v}·V_i (config weights)"
    return PRODUCTS[name].equation


def enabled_products(cfg: LoadedConfig) -> list[str]:
    settings = cfg.spec.products
    on = {"contamination_probability": settings.contamination_probability.enabled,
          "evidence_count": settings.contamination_probability.enabled,
          "environmental_impact": settings.environmental_impact.enabled,
          "recovery_rate": settings.recovery_rate.enabled,
          "clearance_sustainability": settings.clearance_sustainability.enabled,
          "risk_class": settings.contamination_probability.enabled and settings.risk_class.enabled,
          "released_share": cfg.spec.release is not None,
          "residual_probability": cfg.spec.release is not None and settings.contamination_probability.enabled}
    return [name for name in PRODUCTS if on[name]]


def missing_bindings(cfg: LoadedConfig, refused: set[str] = frozenset()) -> list[Problem]:
    """Enabled products whose variables have no source in the config (`refused`: bound, but
    their table was refused and reported already)."""
    bound = set(cfg.spec.inputs) | set(refused) | {"P_c"}  # P_c defaults to the contamination_probability product
    if "L" in bound:
        bound.add("H_m")  # derived as min(L / L_sat, 1)
    problems = []
    for name in enabled_products(cfg):
        # CSC uses C only to find cleared cells, which A_c > 0 tells as well; E needs C itself
        have = bound | {"C"} if name == "clearance_sustainability" and "A_c" in bound else bound
        lacking = [v for v in PRODUCTS[name].variables if v not in have]
        if lacking:
            problems.append(Problem(f"{cfg.path}: inputs", f"product {name} needs {', '.join(lacking)}: "
                                    f"bind them under [inputs.NAME] or disable it with "
                                    f"[products.{name}] enabled = false"))
    if "recovery_rate" in enabled_products(cfg) and isinstance(cfg.spec.inputs.get("P_c"), ProductSource) \
            and not cfg.spec.products.contamination_probability.enabled:
        problems.append(Problem(f"{cfg.path}: inputs.P_c", "bound to contamination_probability, which is disabled"))
    return problems


def region_mask(grid: Grid) -> da.Array:
    """1 for cells whose centre lies in the region, else 0 (uint8)."""
    geom = np.array([grid.region.geom])

    jobs = {idx: BurnJob(geom, np.array([1]), grid.tile_geobox(idx), False, 0, "uint8") for idx in grid.tile_ids()}
    return tiled_array("region", grid, jobs, dtype=np.uint8, token=grid.fingerprint())


def _in_region(mask: np.ndarray, *arrays: np.ndarray, formula: Callable, nodata, **kw) -> np.ndarray:
    out = formula(*arrays, **kw)
    inside = mask == 1
    if inside.all():  # most chunks
        return out
    return np.where(inside, out, nodata).astype(out.dtype, copy=False)


def _apply(formula: Callable, mask: da.Array, *arrays: da.Array, dtype="float32", nodata=np.nan, **kw) -> da.Array:
    return da.map_blocks(_in_region, mask, *arrays, formula=formula, nodata=nodata, dtype=dtype,
                         meta=np.empty((0, 0), dtype=dtype), **kw)


def risk_classes(p_c: np.ndarray, thresholds: list[float], evidence: np.ndarray | None = None,
                 min_evidence: int = 0) -> np.ndarray:
    """Class codes 1…n+1 for n thresholds (P_c equal to a threshold goes to the upper class); 255 nodata;
    0 (INSUFFICIENT) where fewer than `min_evidence` layers of `evidence` (inside the region) had data."""
    codes = np.ones(p_c.shape, dtype=np.uint8)
    for t in np.asarray(thresholds, dtype=p_c.dtype):  # one comparison per threshold: 5× faster than digitize
        codes += p_c >= t
    codes[np.isnan(p_c)] = UINT8_NODATA
    if evidence is not None:
        codes[(evidence < min_evidence) & (evidence != UINT8_NODATA)] = INSUFFICIENT
    return codes


def _classes(p: np.ndarray, evidence: np.ndarray, thresholds: list[float], min_evidence: int) -> np.ndarray:
    return risk_classes(p, thresholds, evidence, min_evidence)


def _cleared_only(C: np.ndarray, csc: np.ndarray) -> np.ndarray:
    return np.where(C > 0, csc, np.float32(np.nan))


def build_products(cfg: LoadedConfig, grid: Grid, layers: dict[str, Layer]) -> dict[str, da.Array]:
    """Lazy arrays of every enabled product (float32 NaN nodata; evidence_count uint8 255)."""
    problems = missing_bindings(cfg)
    if problems:
        raise ConfigError(problems)
    a = {v: layer.array for v, layer in layers.items()}
    mask = region_mask(grid)
    want = enabled_products(cfg)
    out: dict[str, da.Array] = {}
    pc_settings = cfg.spec.products.contamination_probability
    if "contamination_probability" in want:
        h_m = a.get("H_m")
        if h_m is None:
            h_m = da.map_blocks(formulas.mine_density_coefficient, a["L"], L_sat=pc_settings.L_sat,
                                dtype="float32")
        out["contamination_probability"] = _apply(formulas.contamination_probability, mask, h_m, a["S_t"],
                                                  a["V_i"], require_all=pc_settings.require_all,
                                                  weights=None if pc_settings.paper_weights else pc_settings.weights)
        out["evidence_count"] = _apply(formulas.evidence_count, mask, h_m, a["S_t"], a["V_i"], dtype="uint8",
                                       nodata=UINT8_NODATA)
        if "residual_probability" in want:  # land release: risk classes, zones and districts use the residual
            out["residual_probability"] = _apply(formulas.residual_probability, mask,
                                                 out["contamination_probability"], a["released_share"])
        if "risk_class" in want:
            rc = cfg.spec.products.risk_class
            out["risk_class"] = da.map_blocks(
                _classes, out.get("residual_probability", out["contamination_probability"]), out["evidence_count"],
                thresholds=rc.thresholds, min_evidence=rc.min_evidence, dtype="uint8")
    if "released_share" in want:
        out["released_share"] = _apply(np.asarray, mask, a["released_share"])
    if "environmental_impact" in want:
        out["environmental_impact"] = _apply(formulas.environmental_impact, mask, a["L"], a["D"], a["C"], a["R"])
    if "recovery_rate" in want:
        p_c = a.get("P_c", out.get("contamination_probability"))
        out["recovery_rate"] = _apply(formulas.recovery_rate, mask, a["A_c"], a["B_r"], a["T_s"], p_c)
    if "clearance_sustainability" in want:
        csc = _apply(formulas.clearance_sustainability, mask, a["E_f"], a["B_r"], a["D_i"])
        cleared = a.get("C", a.get("A_c"))
        out["clearance_sustainability"] = da.map_blocks(_cleared_only, cleared, csc, dtype="float32")
    for name in ("released_share", "residual_probability"):  # last, as in PRODUCTS (files, project, report)
        if name in out:
            out[name] = out.pop(name)
    return out
