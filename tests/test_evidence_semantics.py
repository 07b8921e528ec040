"""Issue #20, "say only what the evidence says", on the tiny world's hand-checked cells.

The world (tests/world.py): 100 × 100 cells of 100 m; west half sand (S_t 0.8), east half rock
(S_t 0.2); 100 mines recorded at the middle of cell (50, 50); a drone raster (V_i 0.6) over rows
and columns 0–9. Cell (r, c) has its centre at (500 050 + 100 c, 4 409 950 − 100 r).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import rasterio
from shapely.geometry import Point, box

from faults import run_cli
from world import X0, Y0, Y1, cell_box, make_world, write_gpkg

from pipeline.assessment import auto_l_sat, density_at_records
from pipeline.grid import load_grid
from pipeline.summaries import chunk_part, merge_zones

NAMES = ["low", "medium", "high", "very high"]


def run(config: Path, out: Path) -> dict:
    result = run_cli("run", config, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    return json.loads((out / "run.json").read_text())


def band(out: Path, product: str) -> np.ndarray:
    with rasterio.open(out / f"{product}.tif") as ds:
        return ds.read(1)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_records_beyond_their_extent_still_count_as_a_lower_bound(tmp_path: Path) -> None:
    config = make_world(tmp_path / "w")
    write_gpkg(config.parent / "extent.gpkg", [{"geometry": box(X0, Y0, X0 + 5000, Y1)}])  # columns 0–49
    edit(config, 'bandwidth_m = 50', 'bandwidth_m = 50\nextent = "extent.gpkg"')
    record = run(config, tmp_path / "out")
    n, p_c = band(tmp_path / "out", "evidence_count"), band(tmp_path / "out", "contamination_probability")
    cls = band(tmp_path / "out", "risk_class")
    # the record's cell (50, 50) lies outside the extent: L = 100 mines / 0.01 km², H_m = 1, so
    # H_m and S_t (rock 0.2) are known there: P_c = (1 + 0.2) / 2
    assert n[50, 50] == 2 and p_c[50, 50] == pytest.approx(0.6)
    assert cls[50, 50] == 4
    # a cell east of the extent that no record reaches: only the soil is known → not assessed,
    # and P_c is nodata there (no ramp colour can show)
    assert n[50, 60] == 1 and cls[50, 60] == 0 and p_c[50, 60] == -9999
    # inside the extent no record means L = 0, known: H_m 0 and sand 0.8 → (0 + 0.8) / 2
    assert n[50, 10] == 2 and p_c[50, 10] == pytest.approx(0.4) and cls[50, 10] == 2
    assert "L" in record["assessment"]["lower_bounds"]


def test_direct_evidence_is_never_low_whatever_soil_says(tmp_path: Path) -> None:
    """A 12-mine record spread over 1.5 km gives H_m ≈ 0.10 (L_sat 50) and P_c 0.15 on rock: low
    by P_c, but its own cell, a minefield's cells and a hazard's cells are at least "high"."""
    config = make_world(tmp_path / "w")
    write_gpkg(config.parent / "mines.gpkg", [{"count": 12, "geometry": Point(X0 + 7050, Y1 - 3050)},  # cell (30, 70)
                                              {"count": 1, "geometry": box(X0 + 8010, Y1 - 8090, X0 + 8050,
                                                                           Y1 - 8010)}])  # inside cell (80, 80)
    write_gpkg(config.parent / "hazards.gpkg", [{"hazard_id": "CHA-1", "geometry": cell_box(90, 60)}])
    edit(config, 'bandwidth_m = 50', 'bandwidth_m = 1500')
    config.write_text(config.read_text() + '\n[hazards]\npath = "hazards.gpkg"\nid_field = "hazard_id"\n')
    record = run(config, tmp_path / "out")
    p_c, cls = band(tmp_path / "out", "contamination_probability"), band(tmp_path / "out", "risk_class")
    peak = 12 * 3 / (math.pi * 1.5 ** 2)  # the kernel's height at the record, mines/km² (5.09)
    assert p_c[30, 70] == pytest.approx((peak / 50 + 0.2) / 2, rel=0.02)  # eq. (2) unchanged: 0.15
    assert p_c[30, 70] < 0.3 and cls[30, 70] == 3  # low by P_c, high by its record
    assert cls[30, 72] == 1  # 200 m away: the kernel reaches, but no record lies there
    # the minefield's cell (1 mine in 0.01 km²: L 100, H_m 1, so very high by P_c anyway), the hazard's cell
    assert cls[80, 80] == 4 and cls[90, 60] == 3
    assert cls[90, 61] == 1 and cls[79, 80] == 1  # their neighbours: P_c alone
    assert record["assessment"]["direct_evidence_class"] == "high"


def test_a_warning_when_records_alone_can_never_lift_a_cell_above_low(tmp_path: Path) -> None:
    config = make_world(tmp_path / "w")
    write_gpkg(config.parent / "mines.gpkg", [{"count": 12, "geometry": Point(X0 + 7050, Y1 - 3050)}])
    edit(config, 'bandwidth_m = 50', 'bandwidth_m = 1500')
    result = run_cli("validate", config)
    assert result.exit_code == 0, result.output
    # H_m at most 0.10 of a weight share 1/3: P_c rises by 0.03 at most, under "low"'s 0.3
    assert "the densest mine records give H_m 0.10" in result.output
    assert "records alone can never lift P_c above 'low'" in result.output
    edit(config, 'L_sat = 50.0', 'L_sat = "auto"')
    assert "records alone" not in run_cli("validate", config).output


def test_wholly_released_land_follows_the_release(tmp_path: Path) -> None:
    """A record in land cleared whole (IMAS land release) is not lifted: its P_res is 0."""
    config = make_world(tmp_path / "w")
    write_gpkg(config.parent / "release.gpkg", [{"status": "cleared", "geometry": cell_box(50, 50)}])
    config.write_text(config.read_text() + '\n[release]\npath = "release.gpkg"\n')
    run(config, tmp_path / "out")
    assert band(tmp_path / "out", "residual_probability")[50, 50] == 0
    assert band(tmp_path / "out", "risk_class")[50, 50] == 1


RECORDS_ONLY = """grid = "grid.toml"
label = "records only"
[products.contamination_probability]
weights = [1, 0, 0]   # mine records only: S_t and V_i have weight 0 and need not be bound
[products.environmental_impact]
enabled = false
[products.recovery_rate]
enabled = false
[products.clearance_sustainability]
enabled = false
[inputs.L]
kind = "density"
path = "mines.gpkg"
bandwidth_m = 1500
"""


def test_records_only_recipe_is_assessed_and_not_low_at_its_records(tmp_path: Path) -> None:
    config = make_world(tmp_path / "w", drone=False)
    write_gpkg(config.parent / "mines.gpkg", [{"count": 12, "geometry": Point(X0 + 2050, Y1 - 2050)},  # (20, 20)
                                              {"count": 3, "geometry": Point(X0 + 8050, Y1 - 8050)}])  # (80, 80)
    config.write_text(RECORDS_ONLY)
    record = run(config, tmp_path / "out")
    out = tmp_path / "out"
    n, p_c, cls = band(out, "evidence_count"), band(out, "contamination_probability"), band(out, "risk_class")
    assert record["assessment"]["evidence_layers"] == ["H_m"]
    assert record["assessment"]["min_evidence_effective"] == 1
    assert (n == 1).all() and (cls != 0).all()  # assessed wherever H_m is known: everywhere
    # L_sat "auto": the 90th percentile of L at the two records (5.09 and 1.27 mines/km²)
    k0 = 3 / (math.pi * 1.5 ** 2)
    assert record["assessment"]["L_sat"] == pytest.approx(np.percentile([12 * k0, 3 * k0], 90), rel=1e-6)
    assert p_c[20, 20] == pytest.approx(1.0, abs=0.02)  # at the denser record H_m saturates
    assert cls[20, 20] == 4 and cls[80, 80] >= 3  # never "low" where records are
    assert cls[50, 50] == 1 and p_c[50, 50] == 0  # far from both: L = 0 (no extent), low


def test_a_constant_is_not_evidence_unless_it_says_so(tmp_path: Path) -> None:
    config = make_world(tmp_path / "w")
    edit(config, '[inputs.V_i]\nkind = "raster"\npath = "drone/*.tif"', '[inputs.V_i]\nkind = "constant"\nvalue = 0.5')
    run(config, tmp_path / "a")
    assert band(tmp_path / "a", "evidence_count").max() == 2  # H_m and S_t; the filler is not counted
    # ...but P_c is still the paper's mean of all three: (0 + 0.8 + 0.5) / 3 on sand
    assert band(tmp_path / "a", "contamination_probability")[50, 10] == pytest.approx(1.3 / 3)
    edit(config, 'value = 0.5', 'value = 0.5\nevidence = true')
    run(config, tmp_path / "b")
    assert (band(tmp_path / "b", "evidence_count") == 3).all()


def test_density_at_records_and_auto_l_sat_by_hand() -> None:
    xy = np.array([[0.0, 0.0], [1000.0, 0.0], [5000.0, 0.0]])
    counts = np.array([2.0, 1.0, 4.0])
    k0 = 3 / (math.pi * 1.5 ** 2)  # per km², h = 1.5 km
    k1000 = k0 * (1 - (1000 / 1500) ** 2) ** 2
    got = density_at_records(xy, counts, 1500.0, np.array([30.0]))
    assert got == pytest.approx([2 * k0 + 1 * k1000, 1 * k0 + 2 * k1000, 4 * k0, 30.0])
    assert auto_l_sat(got) == pytest.approx(np.percentile(got, 90))
    assert auto_l_sat(np.array([])) == 50.0  # no records: the documented default


def test_a_zone_takes_the_class_of_most_of_its_area(tmp_path: Path) -> None:
    """Ten connected cells: eight "high", two "very high" → a "high" zone listing both areas."""
    config = make_world(tmp_path / "w")
    grid = load_grid(config.parent / "grid.toml")
    cls = np.ones((100, 100), np.uint8)
    cls[40, 40:48] = 3
    cls[40, 48:50] = 4
    p_c = np.where(cls == 4, 0.7, np.where(cls == 3, 0.5, 0.2)).astype(np.float32)
    part = chunk_part(np.zeros((100, 100), np.int16), p_c, np.full((100, 100), 2, np.uint8), cls,
                      names=["P_c", "n", "class"], n_districts=0, n_classes=4, zone_class=3,
                      cell_km2=grid.cell_area_km2, chunk=grid.chunk)[0, 0]
    zones = merge_zones({"0,0": part}, grid, None, NAMES, 0.0)
    assert len(zones) == 1
    z = zones.iloc[0]
    assert z["risk_class"] == "high" and z["area_km2"] == pytest.approx(0.10)
    assert z["km2_high"] == pytest.approx(0.08) and z["km2_very_high"] == pytest.approx(0.02)
    assert z["mean_pc"] == pytest.approx((8 * 0.5 + 2 * 0.7) / 10)
    assert z.geometry.bounds == pytest.approx((X0 + 4000, Y1 - 4100, X0 + 5000, Y1 - 4000))
