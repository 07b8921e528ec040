"""The formula variables: meaning, unit and valid range, so inputs can be checked before a run."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Variable:
    name: str
    meaning: str
    unit: str
    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False  # True when lo itself is not allowed

    def out_of_range(self, vmin: float, vmax: float) -> str | None:
        """A message when [vmin, vmax] leaves the valid range, else None."""
        low_bad = vmin <= self.lo if self.lo_open else vmin < self.lo
        if low_bad or vmax > self.hi:
            return f"values {vmin:g}..{vmax:g} outside the valid range of {self.name} {self.range_text}"
        return None

    @property
    def range_text(self) -> str:
        left = "(" if self.lo_open else "["
        return f"{left}{self.lo:g}, {self.hi:g}]"


VARIABLES: dict[str, Variable] = {
    v.name: v
    for v in [
        Variable("H_m", "historical mine-laying density coefficient", "1", 0, 1),
        Variable("S_t", "soil-type susceptibility", "1", 0, 1),
        Variable("V_i", "drone visual-anomaly intensity", "1", 0, 1),
        Variable("L", "mines per km²", "mines/km²", 0),
        Variable("D", "degradation coefficient", "1", 0, 1),
        Variable("C", "cleared-land percentage of the cell", "%", 0, 100),
        Variable("R", "restoration effectiveness", "1", 0, 1),
        Variable("A_c", "area cleared: of the cleared site holding the cell, or inside the cell", "km²", 0),
        Variable("B_r", "biodiversity restoration coefficient", "1", 0, 1, lo_open=True),
        Variable("T_s", "soil toxicity index", "1", 0),
        Variable("P_c", "pollution concentration factor (default: the contamination probability)", "1", 0),
        Variable("E_f", "clearance efficiency factor of the clearance method", "1", 0, 1),
        Variable("D_i", "disturbance intensity (from mechanical impact) of the clearance method", "1", 0, 1),
    ]
}
