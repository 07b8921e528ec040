"""Table columns in words, with units and one rounding per column, for people (report, PDF).

The files for re-use (districts.csv, the GeoPackages) keep the raw names and full precision;
only what is read on a page goes through here. A column not listed here (a new risk class,
a new figure) still gets a readable header and a rounding decided from its name.
"""

from __future__ import annotations

import math
import numbers
import re

import pandas

from ..formulas import SUSTAINABLE

KM2, PROB, COUNT, TEXT = 2, 3, 0, None  # decimals; TEXT: not a number

# raw name → (header, decimals)
COLUMNS: dict[str, tuple[str, int | None]] = {
    "district": ("District", TEXT),
    "task_id": ("Task", TEXT),
    "mgrs": ("MGRS (10 m)", TEXT),
    "zone": ("Zone (rank)", COUNT),
    "area_km2": ("Area (km²)", KM2),
    "mean_pc": ("Mean P_c", PROB),
    "max_pc": ("Max P_c", PROB),
    "mean_residual": ("Mean residual P_res", PROB),
    "max_residual": ("Max residual P_res", PROB),
    "remaining_mines": ("Remaining mines (est.)", COUNT),
    "mean_E": ("Mean E", PROB),
    "mean_R_e": ("Mean R_e", PROB),
    "cleared_km2": ("Cleared (km²)", KM2),
    "csc_sustainable_share": (f"Cleared land with CSC > {SUSTAINABLE:g} (share)", PROB),
    "rank": ("Rank", COUNT),
    "risk_class": ("Risk class", TEXT),
    "mean_evidence": ("Mean evidence layers", 1),
    "min_evidence": ("Min evidence layers", COUNT),
    "cells": ("Cells", COUNT),
    "roc_auc": ("ROC AUC", PROB),
    # issue #20: what the figures rest on (district table)
    "priority": ("Priority (1 = brief first)", COUNT),
    "assessment": ("Assessment", TEXT),
    "assessed_share": ("Assessed (share of area)", KM2),
    "mean_pc_all_cells": ("Mean P_c, all cells (not assessed too)", PROB),
    "remaining_mines_lower_bound": ("Remaining mines a lower bound (1 = yes)", COUNT),
    "km2_insufficient_evidence": ("Not assessed (km²)", KM2),
}


def column(name: str) -> tuple[str, int | None]:
    """(header, decimals) for a raw column name; unknown names are read from their pattern:
    `km2_<class>`, `<x>_km2_<y>` → "<Class>", "<X y> (km²)", `mean_<x>` → "Mean <x>",
    `<x>_share` → "<X> (share)", anything else with underscores as spaces."""
    if name in COLUMNS:
        return COLUMNS[name]
    words = lambda s: re.sub(r"_+", " ", s).strip()  # noqa: E731
    tokens = name.split("_")
    if len(tokens) > 2 and tokens[-2:] == ["per", "km2"]:
        return f"{words(name[:-len('_per_km2')]).capitalize()} per km²", KM2
    if "km2" in tokens and len(tokens) > 1:
        return f"{' '.join(t for t in tokens if t and t != 'km2').capitalize()} (km²)", KM2
    if m := re.fullmatch(r"(mean|max|min)_(.+)", name):
        return f"{m[1].capitalize()} {words(m[2])}", PROB
    if m := re.fullmatch(r"(.+)_share", name):
        return f"{words(m[1]).capitalize()} (share)", PROB
    if re.search(r"(^|_)(count|mines|cells|n)$", name):
        return words(name).capitalize(), COUNT
    return (words(name)[:1].upper() + words(name)[1:]) or name, PROB


def decimals_for(name: str, values: pandas.Series) -> int | None:
    """The column's decimals: as listed, else text for text columns, 0 for integers."""
    decimals = column(name)[1]
    if not pandas.api.types.is_numeric_dtype(values) or pandas.api.types.is_bool_dtype(values):
        return TEXT
    if name not in COLUMNS and pandas.api.types.is_integer_dtype(values):
        return COUNT
    return decimals


def fmt(value: object, decimals: int | None) -> str:
    """One cell as text: fixed `decimals` with thousands separators; missing as a dash."""
    if value is None or (pandas.api.types.is_scalar(value) and pandas.isna(value)):
        return "–"
    if decimals is None or isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    v = float(value)
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    text = f"{v:,.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text[1:].replace(",", "")) == 0 else text  # no "-0.00"


def readable(frame: pandas.DataFrame) -> tuple[list[str], list[list[str]], list[bool]]:
    """Headers, rows of text and which columns are numbers (right-aligned) for `frame`."""
    cols = [c for c in frame.columns if c != "geometry"]
    decimals = [decimals_for(c, frame[c]) for c in cols]
    rows = [[fmt(v, d) for v, d in zip(row, decimals)] for row in frame[cols].itertuples(index=False, name=None)]
    # a district table with an assessed share: its means are over assessed cells (issue #20)
    over = " (assessed cells)" if "assessed_share" in frame else ""
    return [column(c)[0] + (over if c in ASSESSED_MEANS else "") for c in cols], rows, [d is not None for d in decimals]


ASSESSED_MEANS = ("mean_pc", "mean_residual")
