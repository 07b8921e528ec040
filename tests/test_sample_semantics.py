"""Issue #20 on the bundled sample: unknown land is not painted, known mines are never "low",
and a district nobody assessed is never briefed first."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from rasterio.features import rasterize

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data"


def read(out: Path, name: str) -> tuple[np.ndarray, rasterio.Affine, object]:
    with rasterio.open(out / f"{name}.tif") as ds:
        return ds.read(1), ds.transform, ds.crs


def test_every_record_and_minefield_cell_is_high_or_above(sample_out: Path) -> None:
    """Rasterised here, independently of minemap: the cell holding each record (count > 0) and
    every cell a minefield touches. Only cells released whole (IMAS land release) follow P_res."""
    cls, transform, crs = read(sample_out, "risk_class")
    released = read(sample_out, "released_share")[0]
    records = gpd.read_file(SAMPLE / "mine_records.gpkg").to_crs(crs)
    fields = gpd.read_file(SAMPLE / "minefields.gpkg").to_crs(crs)
    shapes = [(g, 1) for g in records[records["count"] > 0].geometry] + [(g, 1) for g in fields.geometry]
    direct = rasterize(shapes, out_shape=cls.shape, transform=transform, all_touched=True, dtype="uint8") == 1
    inside = direct & (cls != 255)
    whole = inside & (released >= 1 - 1e-6)
    assert inside.sum() == 1895 and whole.sum() == 30
    assert (cls[inside & ~whole] >= 3).all()
    assert (cls[whole] == 1).all()  # cleared whole: P_res 0, "low"


def test_no_probability_where_evidence_is_insufficient(sample_out: Path) -> None:
    cls = read(sample_out, "risk_class")[0]
    for name in ("contamination_probability", "residual_probability"):
        values = read(sample_out, name)[0]
        assert (values[cls == 0] == -9999).all()
        assert (values[(cls != 0) & (cls != 255)] >= 0).all()


def test_districts_nobody_assessed_are_briefed_last(sample_out: Path) -> None:
    table = pd.read_csv(sample_out / "districts.csv").set_index("district")
    apart = table[table["assessment"] == "mostly not assessed"]
    assert sorted(apart.index) == ["Kalbajar", "Lachin"]
    assert (apart["assessed_share"] < 0.12).all()
    assert sorted(apart["priority"]) == [8, 9]  # after all 7 assessed districts
    assessed = table[table["assessment"] == "assessed"]
    assert sorted(assessed["priority"]) == list(range(1, 8)) and (assessed["assessed_share"] == 1).all()
    # the mean over assessed cells only; the soil-only figure is kept apart, clearly named
    assert table.loc["Lachin", "mean_pc_all_cells"] > 0.5 > table.loc["Lachin", "mean_pc"]
    # their records lie beyond the survey extent: counted, as a lower bound
    assert (apart["remaining_mines_lower_bound"] == 1).all() and (apart["remaining_mines"] > 0).all()


def test_records_beyond_the_survey_extent_count(sample_out: Path) -> None:
    """41 records (336 mines) lie outside survey_extent.gpkg; each lifts its own cell to "high"
    or above and makes H_m known there (so H_m and the soil: 2 evidence layers)."""
    cls, transform, crs = read(sample_out, "risk_class")
    count = read(sample_out, "evidence_count")[0]
    records = gpd.read_file(SAMPLE / "mine_records.gpkg").to_crs(crs)
    extent = gpd.read_file(SAMPLE / "survey_extent.gpkg").to_crs(crs).union_all()
    beyond = records[~records.within(extent)]
    assert len(beyond) == 41 and beyond["count"].sum() == 336
    rows, cols = rasterio.transform.rowcol(transform, beyond.geometry.x, beyond.geometry.y)
    assert (cls[rows, cols] >= 3).all() and (count[rows, cols] >= 2).all()
    record = json.loads((sample_out / "run.json").read_text())
    assert record["assessment"]["L_sat_rule"].startswith("auto") and round(record["assessment"]["L_sat"], 1) == 29.6
