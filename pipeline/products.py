"""The product registry: one `ProductDef` per product (file, title, equation, variables, when it is
made, how it is computed, its colours and summary field), and the lazy arrays that compute them.

Binding happens here; arithmetic lives in `formulas`. Cells outside the region are NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable

import dask.array as da
import numpy as np

from . import formulas
from .calibrate.apply import calibrated, distance_h_m
from .assessment import EVIDENCE, evidence_layers, min_evidence, resolved_l_sat, too_little_words
from .config import LoadedConfig, ProductSource
from .errors import ConfigError, Problem
from .grid import Grid
from .sources import Layer
from .sources.direct import DIRECT
from .sources.polygons import BurnJob
from .tiles import tiled_array
from .writers.styles import (BU_PU, EVIDENCE_STOPS, PU_OR, RELEASED_COLOURS, YL_OR_RD, Legend, Stop, csc_legend,
                             ramp_legend, risk_class_legend)


INSUFFICIENT = 0  # risk_class code of cells with fewer than min_evidence of H_m, S_t, V_i
UINT8_NODATA = 255
FLOAT_NODATA = -9999.0  # in the files; NaN in the arrays


def _ramp(p: ProductDef, lo: float, hi: float) -> Legend:
    return ramp_legend(lo, hi, p.palette, p.legend_title, p.natural)


@dataclass(frozen=True)
class ProductDef:
    """Everything about one product: what it is, when it is made, how it is computed and drawn.

    Adding a product is a formula in `formulas` and one entry in `PRODUCTS`: the runner, the
    styles, maps, report, QGIS project and run record all ask this registry.
    """

    name: str
    title: str
    symbol: str
    equation: str
    unit: str
    variables: tuple[str, ...]
    dtype: str = "float32"
    compute: Callable[[Bound], da.Array] | None = None  # lazy array from the bound layers (calls `formulas`)
    enabled: Callable[[LoadedConfig], bool] = lambda cfg: True  # from its config settings
    settings_key: str | None = None  # [products.KEY]: enabled, range
    legend_title: str = ""  # in words with the unit, e.g. "Contamination probability P_c (0–1)"
    default_range: tuple[float, float] = (0.0, 1.0)  # colours; config [products.KEY] range overrides
    natural: tuple[float, float] = (0.0, 1.0)  # the values' own range (ends inside it are labelled ≤ / ≥)
    palette: list[str] = field(default_factory=lambda: YL_OR_RD)
    legend: Callable[[ProductDef, float, float], Legend] = _ramp
    configured_legend: Callable[[LoadedConfig], Legend] | None = None  # a legend from the config instead
    summary_field: str | None = None  # its short name in the district and zone summaries
    show_symbol: bool = True  # map titles read "Title (symbol)"

    @property
    def file(self) -> str:
        return f"{self.name}.tif"

    @property
    def nodata(self) -> float:
        return UINT8_NODATA if self.dtype == "uint8" else FLOAT_NODATA

    @property
    def overview_resampling(self) -> str:
        return "NEAREST" if self.dtype == "uint8" else "AVERAGE"  # codes are never averaged

    def legend_for(self, lo: float | None = None, hi: float | None = None) -> Legend:
        """Colours over the fixed range [lo, hi] (None: the default range), never a run's data."""
        return self.legend(self, self.default_range[0] if lo is None else lo,
                           self.default_range[1] if hi is None else hi)

    def style(self, cfg: LoadedConfig) -> Legend:
        """The legend of a run (its .qml, PNG, PDF and project layer), over the config's range."""
        if self.configured_legend is not None:
            return self.configured_legend(cfg)
        legend = self.legend_for(*(cfg.spec.products.colour_range(self.settings_key or self.name) or (None, None)))
        return replace(legend, marks=class_marks(legend, cfg)) if self.name == classified(cfg) else legend


class Bound:
    """The layers of a run bound to the equations' variables, and the products made from them so
    far (each built once, on demand: a product may draw on another)."""

    def __init__(self, cfg: LoadedConfig, grid: Grid, layers: dict[str, Layer], want: list[str]):
        self.cfg, self.grid, self.want, self.layers = cfg, grid, want, layers
        self.a = {v: layer.array for v, layer in layers.items()}
        self.mask = region_mask(grid)
        self.made: dict[str, da.Array] = {}

    def product(self, name: str) -> da.Array:
        if name not in self.made:
            self.made[name] = PRODUCTS[name].compute(self)
        return self.made[name]

    def apply(self, formula: Callable, *arrays: da.Array, dtype="float32", nodata=np.nan, **kw) -> da.Array:
        """`formula` chunk by chunk, nodata outside the region."""
        return _apply(formula, self.mask, *arrays, dtype=dtype, nodata=nodata, **kw)

    def h_m(self) -> da.Array:
        """H_m as bound, or derived from the mine density L (NaN where L is unknown or unbound)."""
        if "H_m" in self.a:
            return self.a["H_m"]
        if "L" not in self.a:  # weight 0: need not be bound
            return self._unknown()
        model = self.cfg.spec.model
        if model is not None and model.h_m_form == "distance":  # fitted by `minemap calibrate` (#21)
            return distance_h_m(self.layers["L"].records, self.grid, model.decay_m)
        return da.map_blocks(formulas.mine_density_coefficient, self.a["L"],
                             L_sat=resolved_l_sat(self.cfg, self.layers), dtype="float32")

    def layer(self, var: str) -> da.Array:
        """An evidence layer of P_c: H_m, S_t or V_i, all NaN when unbound (its weight is 0)."""
        return self.h_m() if var == "H_m" else self.a.get(var, self._unknown())

    def _unknown(self) -> da.Array:
        return da.full(self.grid.shape, np.nan, chunks=self.grid.chunks, dtype=np.float32)

    def pc_all_layers(self) -> da.Array:
        """Eq. (2) over whatever layers have data, sufficient evidence or not: the district table's
        all-cells figure; the product masks it where evidence is insufficient."""
        if "pc_all_layers" not in self.made:
            pc = self.cfg.spec.products.contamination_probability
            self.made["pc_all_layers"] = self.apply(
                formulas.contamination_probability, *(self.layer(v) for v in EVIDENCE),
                require_all=pc.require_all, weights=None if pc.paper_weights else pc.weights)
        return self.made["pc_all_layers"]

    def direct_cells(self) -> da.Array | None:
        """1 where a cell holds direct evidence and was not wholly released, else 0 (None: no
        source of direct evidence)."""
        if DIRECT not in self.a:
            return None
        if "released_share" not in self.a:
            return self.a[DIRECT]
        return da.map_blocks(_not_wholly_released, self.a[DIRECT], self.a["released_share"], dtype="uint8")


def _pc_on(cfg: LoadedConfig) -> bool:
    return cfg.spec.products.contamination_probability.enabled


def _contamination(b: Bound) -> da.Array:
    """Eq. (2) where evidence suffices, nodata where it does not: unknown land never takes a ramp colour."""
    return da.map_blocks(_assessed_only, b.pc_all_layers(), b.product("evidence_count"),
                         min_evidence=min_evidence(b.cfg), dtype="float32")


def _evidence(b: Bound) -> da.Array:
    layers = [b.layer(v) for v in evidence_layers(b.cfg)] or [b.layer("none")]  # none: 0 everywhere
    return b.apply(formulas.evidence_count, *layers, dtype="uint8", nodata=UINT8_NODATA)


def _risk_class(b: Bound) -> da.Array:
    rc = b.cfg.spec.products.risk_class
    p = b.product("residual_probability" if "residual_probability" in b.want else "contamination_probability")
    if rc.by == "calibrated":  # thresholds on calibrated_probability (issue #21)
        p = b.product("calibrated_probability")
    direct = b.direct_cells()
    extra = () if direct is None else (direct,)
    return da.map_blocks(_classes, p, b.product("evidence_count"), *extra, thresholds=rc.thresholds,
                         min_evidence=min_evidence(b.cfg), direct_class=rc.names.index(rc.direct_evidence_class) + 1,
                         dtype="uint8")


def classified(cfg: LoadedConfig) -> str | None:
    """The product the risk class thresholds cut (None: no classes, or they cut P_cal)."""
    rc = cfg.spec.products.risk_class
    if not rc.enabled or rc.by == "calibrated":
        return None
    return "residual_probability" if cfg.spec.release else "contamination_probability"


def class_marks(legend: Legend, cfg: LoadedConfig) -> tuple[Stop, ...]:
    """The ramp's ends and the class thresholds within it, each with the class starting there
    ("0: low", "0.3: medium", …, "1"): the QGIS legend of the product the classes cut."""
    if legend.kind != "ramp":
        return ()
    rc = cfg.spec.products.risk_class
    first, last = legend.stops[0], legend.stops[-1]
    starts = sum(t <= first.value for t in rc.thresholds)  # the class holding the ramp's low end
    inside = [Stop(t, "", f"{t:g}: {rc.names[k + 1]}") for k, t in enumerate(rc.thresholds)
              if first.value < t < last.value]
    return (Stop(first.value, "", f"{first.label}: {rc.names[starts]}"), *inside, Stop(last.value, "", last.label))


def _risk_legend(cfg: LoadedConfig) -> Legend:
    rc = cfg.spec.products.risk_class
    symbol = {"calibrated": "P_cal"}.get(rc.by, "P_res" if cfg.spec.release else "P_c")
    return risk_class_legend(rc.names, rc.thresholds, too_little_words(cfg) if min_evidence(cfg) else "",
                             symbol, rc.direct_evidence_class)


def _recovery(b: Bound) -> da.Array:
    p_c = b.a["P_c"] if "P_c" in b.a else b.product("contamination_probability")
    return b.apply(formulas.recovery_rate, b.a["A_c"], b.a["B_r"], b.a["T_s"], p_c)


def _sustainability(b: Bound) -> da.Array:
    csc = b.apply(formulas.clearance_sustainability, b.a["E_f"], b.a["B_r"], b.a["D_i"])
    cleared = b.a["C"] if "C" in b.a else b.a["A_c"]
    return da.map_blocks(_cleared_only, cleared, csc, dtype="float32")


# the registry, in the order of the files, the project's layers, the report and run.json
PRODUCTS: dict[str, ProductDef] = {p.name: p for p in [
    ProductDef("contamination_probability", "Contamination probability", "P_c",
               "Eq. (2) P_c = (H_m + S_t + V_i) / 3", "probability (0–1)", ("H_m", "S_t", "V_i"),
               compute=_contamination, enabled=_pc_on, settings_key="contamination_probability",
               legend_title="Contamination probability P_c (0–1)", summary_field="P_c"),
    ProductDef("calibrated_probability", "Calibrated probability of a device", "P_cal",
               "P_cal = g(P_c), g monotone (isotonic), fitted by `minemap calibrate` on held-out events ([model])",
               "probability (0–1)", ("H_m", "S_t", "V_i"),
               compute=lambda b: b.apply(calibrated, b.product("contamination_probability"),
                                         knots_x=b.cfg.spec.model.calibration_scores,
                                         knots_p=b.cfg.spec.model.calibration_probability),
               enabled=lambda cfg: _pc_on(cfg) and cfg.spec.model is not None,
               legend_title="Calibrated probability that the cell's land holds a device (0–1)"),
    ProductDef("evidence_count", "Evidence layers behind P_c", "n",
               "number of H_m, S_t, V_i with data (0–3)", "layers", ("H_m", "S_t", "V_i"), "uint8",
               compute=_evidence,
               enabled=_pc_on, legend_title="Evidence layers behind P_c (of H_m, S_t, V_i)",
               legend=lambda p, lo, hi: Legend("palette", EVIDENCE_STOPS, p.legend_title), summary_field="n",
               show_symbol=False),
    ProductDef("risk_class", "Contamination risk class", "class",
               "class k where thresholds[k-1] ≤ P_c < thresholds[k] (config products.risk_class)", "class code",
               ("H_m", "S_t", "V_i"), "uint8", compute=_risk_class,
               enabled=lambda cfg: _pc_on(cfg) and cfg.spec.products.risk_class.enabled, settings_key="risk_class",
               legend_title="Risk class", configured_legend=_risk_legend, summary_field="class", show_symbol=False),
    ProductDef("environmental_impact", "Environmental impact index", "E",
               "Eq. (1) E = L·D − C·R", "mines/km² − % (paper units)", ("L", "D", "C", "R"),
               compute=lambda b: b.apply(formulas.environmental_impact, b.a["L"], b.a["D"], b.a["C"], b.a["R"]),
               enabled=lambda cfg: cfg.spec.products.environmental_impact.enabled,
               settings_key="environmental_impact", legend_title="Environmental impact E (mines/km² − %)",
               # E's 2nd/98th percentiles in the sample are 0 and 9.1 over all cells, 0 and 18.3 over cells
               # with E ≠ 0 (97 % within ±20)
               default_range=(-20.0, 20.0), natural=(-math.inf, math.inf), palette=PU_OR, summary_field="E"),
    ProductDef("recovery_rate", "Ecological recovery rate", "R_e",
               "Eq. (4) R_e = (A_c·B_r) / (T_s·P_c)", "km² per unit toxicity·concentration",
               ("A_c", "B_r", "T_s", "P_c"), compute=_recovery,
               enabled=lambda cfg: cfg.spec.products.recovery_rate.enabled, settings_key="recovery_rate",
               legend_title="Ecological recovery rate R_e (km² per unit toxicity·concentration)",
               # R_e > 0 cells in the sample: 2nd/50th/75th/98th percentiles 0.08, 1.7, 2.7, 22.5 (86 % below 5)
               default_range=(0.0, 5.0), natural=(0.0, math.inf), palette=BU_PU, summary_field="R_e"),
    ProductDef("clearance_sustainability", "Clearance sustainability coefficient", "CSC",
               f"Eq. (3) CSC = (E_f + B_r) / 2 · D_i (> {formulas.SUSTAINABLE:g} sustainable)", "coefficient (0–1)",
               ("E_f", "B_r", "D_i", "C"), compute=_sustainability,
               enabled=lambda cfg: cfg.spec.products.clearance_sustainability.enabled,
               settings_key="clearance_sustainability",
               legend_title=f"Clearance sustainability CSC (0–1, > {formulas.SUSTAINABLE:g} sustainable)",
               legend=lambda p, lo, hi: csc_legend(lo, hi, p.legend_title), summary_field="CSC"),
    ProductDef("released_share", "Released land (IMAS land release)", "released",
               "share of the cell inside a cancelled, reduced or cleared release polygon (config [release])",
               "share of cell (0–1)", (), compute=lambda b: b.apply(np.asarray, b.a["released_share"]),
               enabled=lambda cfg: cfg.spec.release is not None,
               legend_title="Released share of the cell (0–1)", palette=RELEASED_COLOURS, show_symbol=False),
    ProductDef("residual_probability", "Residual contamination probability", "P_res",
               "P_res = P_c · (1 − released_share) (not a paper equation: P_c after land release)",
               "probability (0–1)", ("H_m", "S_t", "V_i"),
               compute=lambda b: b.apply(formulas.residual_probability, b.product("contamination_probability"),
                                         b.a["released_share"]),
               enabled=lambda cfg: cfg.spec.release is not None and _pc_on(cfg), settings_key="residual_probability",
               legend_title="Residual contamination probability P_res (0–1)", summary_field="P_res"),
]}


def product_equation(name: str, cfg: LoadedConfig) -> str:
    """The equation a product's tags, maps and report name: P_c with other weights than 1/3 each
    is the weighted variant of the paper's equation, and says so."""
    pc = cfg.spec.products.contamination_probability
    if name == "contamination_probability" and not pc.paper_weights:
        w_h, w_s, w_v = (f"{w:g}" for w in pc.weights)
        return f"weighted variant of eq. (2): P_c = {w_h}·H_m + {w_s}·S_t + {w_v}·V_i (config weights)"
    return PRODUCTS[name].equation


def product_title(name: str, cfg: LoadedConfig) -> str:
    """A product's title on maps, in the QGIS project and the report."""
    p = PRODUCTS[name]
    title = f"{p.title} ({p.symbol})" if p.show_symbol else p.title
    if name == "contamination_probability" and not cfg.spec.products.contamination_probability.paper_weights:
        title += ", weighted variant of eq. (2)"
    return title


def enabled_products(cfg: LoadedConfig) -> list[str]:
    return [name for name, p in PRODUCTS.items() if p.enabled(cfg)]


def missing_bindings(cfg: LoadedConfig, refused: set[str] = frozenset()) -> list[Problem]:
    """Enabled products whose variables have no source in the config (`refused`: bound, but
    their table was refused and reported already)."""
    bound = set(cfg.spec.inputs) | set(refused) | {"P_c"}  # P_c defaults to the contamination_probability product
    weights = cfg.spec.products.contamination_probability.weights
    bound |= {v for v, w in zip(EVIDENCE, weights) if w == 0}  # a layer of weight 0 need not be bound
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
                 min_evidence: int = 0, direct: np.ndarray | None = None, direct_class: int = 0) -> np.ndarray:
    """Class codes 1…n+1 for n thresholds (P_c equal to a threshold goes to the upper class); 255 nodata;
    0 (INSUFFICIENT) where fewer than `min_evidence` layers of `evidence` (inside the region) had data;
    cells of `direct` evidence (1) at least `direct_class`, evidence or not (minemap's rule: issue #20)."""
    codes = np.ones(p_c.shape, dtype=np.uint8)
    for t in np.asarray(thresholds, dtype=p_c.dtype):  # one comparison per threshold: 5× faster than digitize
        codes += p_c >= t
    codes[np.isnan(p_c)] = UINT8_NODATA
    if evidence is not None:
        inside = evidence != UINT8_NODATA
        codes[(evidence < min_evidence) & inside] = INSUFFICIENT
        if direct is not None:
            raise_ = (direct == 1) & inside & ((codes < direct_class) | (codes == UINT8_NODATA))
            codes[raise_] = direct_class
    return codes


def _classes(p: np.ndarray, evidence: np.ndarray, direct: np.ndarray | None = None, *, thresholds: list[float],
             min_evidence: int, direct_class: int) -> np.ndarray:
    return risk_classes(p, thresholds, evidence, min_evidence, direct, direct_class)


def _assessed_only(p: np.ndarray, evidence: np.ndarray, min_evidence: int) -> np.ndarray:
    """P where at least `min_evidence` evidence layers had data, NaN elsewhere."""
    return np.where(evidence >= min_evidence, p, np.float32(np.nan)).astype(np.float32, copy=False)


def _not_wholly_released(direct: np.ndarray, released: np.ndarray) -> np.ndarray:
    """Direct evidence, less cells released whole (cleared or cancelled under IMAS land release)."""
    return ((direct == 1) & ~(released >= np.float32(1 - 1e-6))).astype(np.uint8)


def _cleared_only(C: np.ndarray, csc: np.ndarray) -> np.ndarray:
    return np.where(C > 0, csc, np.float32(np.nan))


def build_products(cfg: LoadedConfig, grid: Grid, layers: dict[str, Layer],
                   extras: dict[str, da.Array] | None = None) -> dict[str, da.Array]:
    """Lazy arrays of every enabled product (float32 NaN nodata; uint8 products 255). `extras`, if
    given, receives what the summaries need beside them: "P_c_all" (eq. 2 on every cell with a
    layer, assessed or not) and "direct" (cells of direct evidence, not wholly released)."""
    problems = missing_bindings(cfg)
    if problems:
        raise ConfigError(problems)
    want = enabled_products(cfg)
    bound = Bound(cfg, grid, layers, want)
    made = {name: bound.product(name) for name in want}
    if extras is not None and "contamination_probability" in made:
        extras["P_c_all"] = bound.pc_all_layers()
        if (direct := bound.direct_cells()) is not None:
            extras["direct"] = direct
    return made


def product_legend(name: str, lo: float | None = None, hi: float | None = None) -> Legend:
    """A product's colours over the fixed range [lo, hi] (None: the product's default range),
    never over a run's data, so maps of two runs compare."""
    return PRODUCTS[name].legend_for(lo, hi)
