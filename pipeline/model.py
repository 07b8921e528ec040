"""The `[model]` section `minemap calibrate` appends to a config (issue #21): what was fitted,
on which events, and how well it did on held-out folds. `run` and `update` apply it.

`fitted_spec` turns a config with a model into the settings the run uses (bandwidth, L_sat,
weights); `changed_events` says which label files differ from the ones fitted on.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .errors import Problem


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelEvents(_Strict):
    """One label file the model was fitted on."""

    path: str = Field(description="relative to the config's folder")
    role: Literal["events", "release", "accidents"]
    sha256: str
    count: int = Field(ge=0)
    positives: int = Field(ge=0)
    negatives: int = Field(ge=0)


class ModelCV(_Strict):
    """Held-out figures (spatial block cross-validation)."""

    block_km: float
    blocks: int
    folds: int
    heldout_auc: float = Field(description="nested: each event scored with the setting picked on the other folds, "
                               "AUC over all events pooled")
    heldout_auc_fold_mean: float = Field(description="the same, mean of the per-fold AUCs")
    heldout_auc_calibrated: float | None = Field(None, description="AUC of the cross-fitted calibrated probabilities "
                                                 "pooled (each fold's own isotonic map: ties and scales differ)")
    chosen_cv_auc: float = Field(description="the chosen setting's own mean fold AUC (used to choose: optimistic)")
    baseline_auc: float | None = Field(description="minus the distance to the nearest record, pooled AUC")
    baseline_auc_fold_mean: float | None = None
    capture_10: float | None = Field(None, description="share of positives in the riskiest 10 % of the area, nested")
    baseline_capture_10: float | None = None
    ece: float = Field(description="expected calibration error of calibrated_probability, cross-fitted")
    beats_baseline: bool


class ReliabilityBin(_Strict):
    """One bin of the reliability diagram (held-out, cross-fitted probabilities)."""

    bin: str
    events: int
    mean_predicted: float
    share_positive: float


class CaptureClass(_Strict):
    """One class by capture: the riskiest share of the assessed area it starts at, and the share
    of the events (out-of-fold scores) it held."""

    riskiest_share: float | None = Field(None, description="the class is P_c ≥ the threshold of this riskiest share "
                                                           "of the assessed area (absent: the rest)")
    threshold: float | None = None
    area_share: float
    positives_share: float
    negatives_share: float


class ModelSettings(_Strict):
    """`[model]`: the fitted settings of P_c and the calibration of `calibrated_probability`."""

    fitted_utc: str
    minemap_version: str
    h_m_form: Literal["kernel", "distance", "layer"]
    bandwidth_m: float | None = Field(None, gt=0)
    decay_m: float | None = Field(None, gt=0)
    L_sat: float | None = Field(None, gt=0)
    weights: tuple[float, float, float]
    calibration_scores: list[float] = Field(description="P_c at the knots of the monotone calibration")
    calibration_probability: list[float] = Field(description="the probability at each knot")
    cv: ModelCV
    events: list[ModelEvents] = Field(min_length=1)
    reliability: list[ReliabilityBin] = []
    capture_shares: list[float] = Field([], description="riskiest shares of the assessed area, widest first")
    capture_thresholds: list[float] = Field([], description="P_c at which each share starts (increasing)")
    capture_classes: list[CaptureClass] = []

    @model_validator(mode="after")
    def _consistent(self):
        if self.h_m_form == "kernel" and (self.bandwidth_m is None or self.L_sat is None):
            raise ValueError("h_m_form \"kernel\" needs bandwidth_m and L_sat")
        if self.h_m_form == "distance" and self.decay_m is None:
            raise ValueError("h_m_form \"distance\" needs decay_m")
        x, p = self.calibration_scores, self.calibration_probability
        if len(x) != len(p) or not x or any(b < a for a, b in zip(x, x[1:])) or any(b < a for a, b in zip(p, p[1:])):
            raise ValueError("calibration_scores and calibration_probability must be equally long and non-decreasing")
        if any(w < 0 for w in self.weights) or abs(sum(self.weights) - 1) > 1e-6:
            raise ValueError("weights must be 3 non-negative numbers summing to 1")
        return self

    def cells_key(self) -> dict:
        """What of the model decides the products' cells (not its date, figures or events): an
        update after a new fit recomputes every chunk when any of it changed."""
        return self.model_dump(mode="json", include={"h_m_form", "bandwidth_m", "decay_m", "L_sat", "weights",
                                                     "calibration_scores", "calibration_probability",
                                                     "capture_thresholds"})

    def short(self) -> str:
        """A few words for a cover's table: the form and the held-out AUC beside the baseline's."""
        form = {"kernel": "kernel", "distance": "distance decay", "layer": "H_m as bound"}[self.h_m_form]
        scale = self.bandwidth_m if self.h_m_form == "kernel" else self.decay_m
        base = f" (baseline {self.cv.baseline_auc:.3f})" if self.cv.baseline_auc is not None else ""
        return (f"{form}{f' {scale / 1000:g} km' if scale else ''}; held-out AUC {self.cv.heldout_auc:.3f}{base}")

    def describe(self) -> str:
        """One line for logs and covers: what the run applies."""
        if self.h_m_form == "kernel":
            form = f"H_m kernel {self.bandwidth_m / 1000:g} km, L_sat {self.L_sat:g}"
        elif self.h_m_form == "distance":
            form = f"H_m = exp(−d/{self.decay_m / 1000:g} km) of the nearest record"
        else:
            form = "H_m as bound" + (f", L_sat {self.L_sat:g}" if self.L_sat else "")
        w = ", ".join(f"{x:g}" for x in self.weights)
        return (f"fitted model ({self.fitted_utc[:10]}, {sum(e.count for e in self.events)} events): {form}, "
                f"weights [{w}]; held-out AUC {self.cv.heldout_auc:.3f}"
                + (f" vs nearest-record baseline {self.cv.baseline_auc:.3f}" if self.cv.baseline_auc is not None
                   else ""))


def apply_model(spec):
    """The run's settings with the model's fitted values in place of the config's: L's kernel
    bandwidth (a kernel model), L_sat and the weights. (`spec` is a `config.RunConfig`.)"""
    m = spec.model
    pc_update = {"weights": tuple(m.weights)}
    if m.L_sat is not None:
        pc_update["L_sat"] = m.L_sat
    products = spec.products.model_copy(update={
        "contamination_probability": spec.products.contamination_probability.model_copy(update=pc_update)})
    rc = spec.products.risk_class
    if rc.by == "capture":
        if not m.capture_thresholds:
            raise ValueError("products.risk_class.by = \"capture\": the [model] has no capture_thresholds")
        if len(rc.names) != len(m.capture_thresholds) + 1:
            raise ValueError(f"products.risk_class.by = \"capture\" makes {len(m.capture_thresholds) + 1} classes: "
                             f"give as many names, not {len(rc.names)}")
        products = products.model_copy(update={"risk_class": rc.model_copy(update={
            "thresholds": [float(t) for t in m.capture_thresholds]})})
    inputs = dict(spec.inputs)
    if m.h_m_form == "kernel" and getattr(inputs.get("L"), "kind", None) == "density":
        inputs["L"] = inputs["L"].model_copy(update={"bandwidth_m": m.bandwidth_m})
    return spec.model_copy(update={"inputs": inputs, "products": products})


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def changed_events(model: ModelSettings, base: Path) -> list[Problem]:
    """A warning per label file that is missing or no longer the one fitted on."""
    out = []
    for e in model.events:
        path = (base / e.path).resolve()
        if not path.is_file():
            out.append(Problem(str(path), "the events file the [model] was fitted on is missing: run `minemap "
                                          "calibrate` again"))
        elif sha256_of(path) != e.sha256:
            out.append(Problem(str(path), f"changed since the [model] was fitted ({model.fitted_utc}): its "
                                          "figures describe the old events; run `minemap calibrate` again"))
    return out


# --- TOML: the section as text (tomllib reads but does not write) -------------------------

def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError("TOML [model] values must be finite")
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(type(v))


def to_toml(model: ModelSettings) -> str:
    """`[model]` with `[model.cv]` and `[[model.events]]`, None values left out."""
    data = model.model_dump()
    tables = ("cv", "events", "reliability", "capture_classes")
    lines = ["[model]"]
    lines += [f"{k} = {_value(v)}" for k, v in data.items() if k not in tables and v is not None]
    lines += ["", "[model.cv]"] + [f"{k} = {_value(v)}" for k, v in data["cv"].items() if v is not None]
    for name in ("events", "reliability", "capture_classes"):
        for e in data[name]:
            lines += ["", f"[[model.{name}]]"] + [f"{k} = {_value(v)}" for k, v in e.items() if v is not None]
    return "\n".join(lines) + "\n"


def banner(model: ModelSettings) -> str | None:
    """The words a cover and a report show when the fitted model does not beat the baseline."""
    cv = model.cv
    if cv.beats_baseline or cv.baseline_auc is None:
        return None
    return (f"The fitted model does not beat the nearest-record baseline: held-out AUC {cv.heldout_auc:.3f} against "
            f"{cv.baseline_auc:.3f} for ranking land by its distance to the nearest known record (it should add at "
            "least 0.03). Searching near known records first ranks these events as well.")


def record(model: ModelSettings) -> dict:
    """run.json's "model": what was applied and its held-out figures."""
    return {"applied": model.describe(), "banner": banner(model), **model.model_dump(mode="json")}


_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\- ]+?)\s*\]\]?\s*(#.*)?$")


def without_model(text: str) -> str:
    """The config text with any `[model]` tables (and their sub-tables) removed."""
    out, skipping = [], False
    for line in text.splitlines(keepends=True):
        head = _HEADER.match(line)
        if head:
            name = head.group(1).replace(" ", "")
            skipping = name == "model" or name.startswith("model.")
        if not skipping:
            out.append(line)
    return "".join(out).rstrip("\n") + "\n"
