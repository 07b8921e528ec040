"""Fault matrix, families "CLI, signals, disk, outputs" (issue #11): each case ends in a clean
refusal (documented exit code, file and problem named, previous OUT byte-identical, no staging
left, lock free) or, for inputs that are fine but unusual, in right outputs."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
import rasterio

from faults import assert_refused, no_leftovers, run_cli, snapshot
from world import cell_box, make_world, write_gpkg

PRODUCTS = ["contamination_probability", "evidence_count", "risk_class", "environmental_impact", "recovery_rate",
            "clearance_sustainability"]


@pytest.fixture
def published(world: Path) -> Path:
    """The tiny world's outputs after a successful run: what a failing command must leave alone."""
    out = world.parent / "out"
    result = run_cli("run", world, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    return out


def constant_config(root: Path, **values: float) -> Path:
    """The tiny world with every variable a constant (a uniform product everywhere)."""
    config = make_world(root, drone=False)
    values = {"L": 10, "S_t": 0.5, "V_i": 0.5, "D": 0.5, "C": 20, "R": 0.5, "A_c": 0.002, "B_r": 0.5, "T_s": 1,
              "E_f": 0.5, "D_i": 0.8, **values}
    config.write_text('grid = "grid.toml"\n' + "".join(
        f'[inputs.{v}]\nkind = "constant"\nvalue = {x}\n' for v, x in values.items()))
    return config


# ---- outputs -------------------------------------------------------------------------------

def test_valid_percent_is_the_share_of_the_grid_with_a_value(world, published):
    """CSC has values on the two cleared cells only (cell (10, 10) and half of (10, 20)) of the
    100 × 100 grid: 2 / 10 000 = 0.02 %; P_c covers every cell: 100 %."""
    record = json.loads((published / "run.json").read_text())
    assert record["products"]["clearance_sustainability"]["valid_cells"] == 2
    assert record["products"]["clearance_sustainability"]["valid_percent"] == pytest.approx(0.02)
    assert record["products"]["contamination_probability"]["valid_percent"] == pytest.approx(100.0)
    with rasterio.open(published / "clearance_sustainability.tif") as ds:
        assert float(ds.tags(1)["STATISTICS_VALID_PERCENT"]) == pytest.approx(0.02)
    with rasterio.open(published / "contamination_probability.tif") as ds:
        assert float(ds.tags(1)["STATISTICS_VALID_PERCENT"]) == pytest.approx(100.0)
    item = json.loads((published / "item.json").read_text())
    stats = item["assets"]["clearance_sustainability"]["raster:bands"][0]["statistics"]
    assert stats["valid_percent"] == pytest.approx(0.02)


def test_valid_percent_counts_cells_outside_the_region(tmp_path):
    """An L-shaped region fills 3/4 of its box (the grid): P_c has a value on 75 % of the cells."""
    config = constant_config(tmp_path / "w")
    from shapely.geometry import box

    from world import X0, Y0, Y1
    # columns 0–49 everywhere plus columns 50–99 in rows 0–49: 7 500 of 10 000 cells
    write_gpkg(config.parent / "region.gpkg", [{"name": "L", "geometry": box(X0, Y0, X0 + 5000, Y1).union(
        box(X0 + 5000, Y1 - 5000, X0 + 10_000, Y1))}])
    out = tmp_path / "out"
    result = run_cli("run", config, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    with rasterio.open(out / "contamination_probability.tif") as ds:
        assert ds.shape == (100, 100)
        assert float(ds.tags(1)["STATISTICS_VALID_PERCENT"]) == pytest.approx(75.0)


def test_geopackages_are_version_1_2(tmp_path):
    """GDAL < 3.7 (QGIS 3.22 on Debian 12) warns on opening GeoPackage 1.4; 1.2 it reads quietly."""
    config = make_world(tmp_path / "w")
    config.write_text(config.read_text() + '[districts]\npath = "region.gpkg"\nname_field = "name"\n')
    out = tmp_path / "out"
    result = run_cli("run", config, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    for name in ("districts.gpkg", "priority_zones.gpkg"):
        with sqlite3.connect(out / name) as db:
            assert db.execute("PRAGMA application_id").fetchone()[0] == 0x47504B47  # "GPKG"
            assert db.execute("PRAGMA user_version").fetchone()[0] == 10200, name


@pytest.mark.parametrize("one_cell", [False, True])
def test_uniform_products_are_drawn(tmp_path, one_cell):
    """Constant inputs make every product one value (min = max); on a one-cell region too. Each
    is mapped with a one-colour legend naming the value, and every PNG is written."""
    config = constant_config(tmp_path / "w")
    if one_cell:
        write_gpkg(config.parent / "region.gpkg", [{"name": "one", "geometry": cell_box(50, 50).buffer(-10)}])
    out = tmp_path / "out"
    result = run_cli("run", config, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    record = json.loads((out / "run.json").read_text())
    assert record["products"]["recovery_rate"]["min"] == record["products"]["recovery_rate"]["max"]
    assert record["grid"]["shape"] == ([1, 1] if one_cell else [100, 100])
    for name in PRODUCTS:
        assert (out / f"{name}.png").stat().st_size > 0, name
    # R_e = A_c·B_r / (T_s·P_c) = 0.002 · 0.5 / (1 · 0.4) = 0.0025 everywhere: its one legend entry
    assert 'label="0.0025 (every cell with a value)"' in (out / "recovery_rate.qml").read_text()


def test_product_with_no_valid_cell_is_drawn(tmp_path):
    """T_s = 0 leaves R_e no valid cell, C = 0 leaves CSC none: still mapped, exit 0."""
    config = constant_config(tmp_path / "w", T_s=0, C=0, A_c=0)
    out = tmp_path / "out"
    result = run_cli("run", config, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    record = json.loads((out / "run.json").read_text())
    assert record["products"]["recovery_rate"]["valid_cells"] == 0
    assert record["products"]["clearance_sustainability"]["valid_cells"] == 0
    for name in PRODUCTS:
        assert (out / f"{name}.png").stat().st_size > 0, name
