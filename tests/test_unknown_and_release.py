"""Issue #14 §1–2 on the tiny world: unknown is not safe (extents, insufficient evidence) and
released land (IMAS land release), hand-checked cell by cell.

By hand (see tests/world.py): the 100 mines sit in cell (50, 50) with a 50 m kernel, so L is
10 000 mines/km² there and 0 elsewhere; S_t is 0.8 west of col 50 and 0.2 east; the drone covers
rows 0–9, cols 0–9 (0.6). Evidence: 3 in that NW square, 2 elsewhere. P_c: NW 0.4667, rest of
the west 0.4, east 0.1, cell (50, 50) 0.6. Default classes: low < 0.3 ≤ medium < 0.45 ≤ high
< 0.6 ≤ very high; priority zones (high or above): cell (50, 50) and the NW square (100 cells).
"""

import csv
import json
import xml.etree.ElementTree as ET
import zipfile

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import box

from faults import assert_refused, run_cli
from made import made_products
from world import CRS, X0, X1, Y0, Y1, cell_box, make_world, write_gpkg

DISTRICTS = """
[districts]
path = "districts.gpkg"
name_field = "district"
"""
RELEASE = """
[release]
path = "release.gpkg"
ignore = ["planned"]
"""


def read(out, name):
    with rasterio.open(out / f"{name}.tif") as ds:
        return ds.read(1, masked=True)


def districts_of(out):
    return {r["district"]: r for r in csv.DictReader((out / "districts.csv").open())}


@pytest.fixture
def world2(world):
    """The tiny world with a West and an East district (split at col 50)."""
    write_gpkg(world.parent / "districts.gpkg", [
        {"district": "West", "geometry": box(X0, Y0, X0 + 5000, Y1)},
        {"district": "East", "geometry": box(X0 + 5000, Y0, X1, Y1)},
    ])
    world.write_text(world.read_text() + DISTRICTS)
    return world


def fine_world(root):
    """The tiny world on a 10 m grid: 1000 × 1000 cells, 2 × 2 chunks of 512 (split at x = X0 + 5120,
    y = Y1 − 5120)."""
    config = make_world(root)
    grid = config.parent / "grid.toml"
    grid.write_text(grid.read_text().replace("resolution = 100.0", "resolution = 10.0"))
    return config


# --- §1 unknown is not safe ------------------------------------------------------------------

def test_density_extent_makes_the_east_unknown(world2, tmp_path):
    write_gpkg(world2.parent / "surveyed.gpkg", [{"name": "west", "geometry": box(X0, Y0, X0 + 5000, Y1)}])
    world2.write_text(world2.read_text().replace('path = "mines.gpkg"\n', 'path = "mines.gpkg"\nextent = "surveyed.gpkg"\n'))
    out = tmp_path / "out"
    result = run_cli("run", world2, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert "absence of records" not in result.output  # the records have an extent: no warning
    # L (through E = L·D − C·R) is nodata east of col 50, known (0) west of it, except where the
    # 100 mines recorded in cell (50, 50) lie: records beyond their extent still count (issue #20)
    e = read(out, "environmental_impact")
    east = np.ones((100, 50), bool)
    east[50, 0] = False
    assert e.mask[:, 50:][east].all() and not e.mask[:, :50].any() and not e.mask[50, 50]
    assert e[50, 40] == 0.0
    # evidence: the east loses H_m (S_t only) but in the records' cell, the west keeps its 3 / 2
    n = read(out, "evidence_count")
    assert (n[:, 50:][east] == 1).all() and n[50, 50] == 2
    assert (n[0:10, 0:10] == 3).all() and n[50, 40] == 2 and n[10, 10] == 2
    # classes: the east is "insufficient evidence" (0) but the mines' own cell, very high (4) from
    # H_m and S_t; the west keeps medium (P_c 0.4) and the NW square high (0.4667)
    rc = read(out, "risk_class")
    assert (rc[:, 50:][east] == 0).all() and rc[50, 50] == 4
    assert (rc[0:10, 0:10] == 3).all() and (rc[10:, :50] == 2).all() and (rc[:10, 10:50] == 2).all()
    pc = read(out, "contamination_probability")
    assert pc.mask[50, 60] and pc[50, 50] == pytest.approx(0.6)  # no P_c where not assessed
    # no priority zone from cells of insufficient evidence: the records' cell and the NW square
    zones = gpd.read_file(out / "priority_zones.gpkg")
    assert list(zones["cells"]) == [1, 100] and list(zones["district"]) == ["East", "West"]
    rows = districts_of(out)
    assert float(rows["East"]["km2_insufficient_evidence"]) == pytest.approx(49.99)
    assert float(rows["West"]["km2_insufficient_evidence"]) == 0.0
    assert float(rows["East"]["km2_very_high"]) == pytest.approx(0.01)
    assert rows["East"]["assessment"] == "mostly not assessed" and rows["East"]["priority"] == "2"
    assert rows["East"]["remaining_mines_lower_bound"] == "1" and rows["West"]["remaining_mines_lower_bound"] == "0"
    # the extent file is an input: hashed in run.json
    assert any(p.endswith("surveyed.gpkg") for p in json.loads((out / "run.json").read_text())["inputs"])
    palette = (out / "risk_class.qml").read_text()
    assert 'value="0" color="#9e9e9e"' in palette and "Not assessed: fewer than 2 of: mine records" in palette


def test_density_without_extent_warns_and_counts_absence(world2, tmp_path):
    out = tmp_path / "out"
    result = run_cli("run", world2, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert "warning" in result.output and "inputs.L" in result.output
    assert "absence of records will be read as absence of mines" in result.output
    warnings = json.loads((out / "run.json").read_text())["warnings"]
    assert len(warnings) == 1 and "inputs.L" in warnings[0] and "absence of mines" in warnings[0]
    validate = run_cli("validate", world2)
    assert validate.exit_code == 0 and "absence of records will be read as absence of mines" in validate.output
    # with L known everywhere, the mines' cell is very high and a priority zone; nothing is insufficient
    rc = read(out, "risk_class")
    assert rc[50, 50] == 4 and rc[50, 60] == 1 and (rc != 0).all()
    zones = gpd.read_file(out / "priority_zones.gpkg")
    assert list(zones["cells"]) == [1, 100] and zones.geometry[0].equals(cell_box(50, 50))
    assert {float(r["km2_insufficient_evidence"]) for r in districts_of(out).values()} == {0.0}


def test_min_evidence_three_marks_cells_without_drone(world2, tmp_path):
    world2.write_text(world2.read_text() + "[products.risk_class]\nmin_evidence = 3\n")
    out = tmp_path / "out"
    assert run_cli("run", world2, "--out", out, "--quiet").exit_code == 0
    rc = read(out, "risk_class")
    assert (rc[0:10, 0:10] == 3).all()
    # the rest has 2 layers, too few, but for the mines' cell: direct evidence, "high" at least
    rest = np.ones((100, 100), bool)
    rest[0:10, 0:10] = rest[50, 50] = False
    assert (rc[rest] == 0).all() and rc[50, 50] == 3
    rows = districts_of(out)
    assert float(rows["West"]["km2_insufficient_evidence"]) == pytest.approx(49.0)


def test_coverage_and_polygons_extent(world, tmp_path):
    """Extent on a coverage (C) and a polygon source (S_t): nodata outside, not 0 / fill."""
    # rows 0–29, and 40 m of row 30 (whose centre, 50 m down, it misses): inside is by cell centre
    write_gpkg(world.parent / "north.gpkg", [{"name": "n", "geometry": box(X0, Y1 - 3040, X1, Y1)}])
    text = world.read_text().replace('path = "cleared.gpkg"\nunits = "percent"\n',
                                     'path = "cleared.gpkg"\nunits = "percent"\nextent = "north.gpkg"\n')
    text = text.replace('[inputs.S_t]\nkind = "polygons"\npath = "soil.gpkg"\n',
                        '[inputs.S_t]\nkind = "polygons"\npath = "soil.gpkg"\nextent = "north.gpkg"\n')
    world.write_text(text)
    out = tmp_path / "out"
    assert run_cli("run", world, "--out", out, "--quiet").exit_code == 0
    e = read(out, "environmental_impact")  # C nodata from row 30 down
    assert not e.mask[:30].any() and e.mask[30:].all()
    assert e[10, 10] == pytest.approx(-80.0)  # cleared manual cell: 0·D − 100·0.8
    n = read(out, "evidence_count")
    assert n[40, 40] == 1 and n[20, 40] == 2  # S_t lost south of row 30


def test_extent_must_be_polygons(world, tmp_path):
    world.write_text(world.read_text().replace('path = "mines.gpkg"\n', 'path = "mines.gpkg"\nextent = "mines.gpkg"\n'))
    assert_refused(["validate", world], None, 2, "mines.gpkg", "has Point geometries; the extent of inputs.L needs Polygon/MultiPolygon")


def test_edited_extent_recomputes_only_the_chunks_it_touches(tmp_path):
    config = fine_world(tmp_path / "w")
    extent = config.parent / "surveyed.gpkg"
    write_gpkg(extent, [{"name": "a", "geometry": box(X0, Y1 - 5000, X0 + 5000, Y1)}])  # chunk (0, 0) exactly
    config.write_text(config.read_text().replace('path = "mines.gpkg"\n', 'path = "mines.gpkg"\nextent = "surveyed.gpkg"\n'))
    out = tmp_path / "out"
    assert run_cli("run", config, "--out", out, "--quiet").exit_code == 0
    write_gpkg(extent, [{"name": "a", "geometry": box(X0, Y1 - 5000, X0 + 5000, Y1)},
                        {"name": "b", "geometry": box(X0 + 6000, Y0 + 1000, X0 + 7000, Y0 + 2000)}])  # in chunk (1, 1)
    result = run_cli("update", config, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["chunks_recomputed"] == 1
    n = read(out, "evidence_count")
    assert n[850, 650] == 2 and n[750, 750] == 1


# --- §2 released land --------------------------------------------------------------------------

def write_release(world, records):
    write_gpkg(world.parent / "release.gpkg", records)


RELEASED = [
    {"status": "cleared", "cleared_on": "2025-06-01", "geometry": cell_box(50, 50)},  # the priority zone's cell
    {"status": "reduced", "cleared_on": "2025-07-01",
     "geometry": box(X0 + 4000, Y1 - 5100, X0 + 4050, Y1 - 5000)},  # west half of cell (50, 40)
    {"status": "cancelled", "cleared_on": "2024-01-01", "geometry": box(X0, Y1 - 100, X0 + 200, Y1)},  # (0, 0), (0, 1)
    {"status": "planned", "cleared_on": "2026-01-01", "geometry": cell_box(20, 20)},  # ignored
]


def test_released_land_by_hand(world2, tmp_path):
    write_release(world2, RELEASED)
    world2.write_text(world2.read_text() + RELEASE)
    out = tmp_path / "out"
    result = run_cli("run", world2, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    share = read(out, "released_share")
    assert (share[50, 50], share[50, 40], share[0, 0], share[0, 1]) == (1.0, 0.5, 1.0, 1.0)
    assert share[20, 20] == 0.0 and share[50, 51] == 0.0 and share[0, 2] == 0.0  # ignored, neighbours
    pc, res = read(out, "contamination_probability"), read(out, "residual_probability")
    assert pc[50, 50] == pytest.approx(0.6) and res[50, 50] == 0.0  # P_c stays eq. (2) of the paper
    assert res[50, 40] == pytest.approx(0.4 * 0.5) and res[0, 0] == 0.0
    assert res[30, 30] == pytest.approx(0.4) and res[60, 60] == pytest.approx(0.1)
    assert np.allclose(res, pc * (1 - share))
    rc = read(out, "risk_class")
    assert (rc[50, 50], rc[50, 40], rc[0, 0], rc[0, 1]) == (1, 1, 1, 1)  # very high, medium, high, high → low
    assert rc[30, 30] == 2 and rc[0, 2] == 3
    # the very-high zone of (50, 50) lay under cleared land: gone; the NW square loses its 2 cancelled cells
    zones = gpd.read_file(out / "priority_zones.gpkg")
    assert list(zones["cells"]) == [98] and list(zones["district"]) == ["West"]
    assert zones.geometry[0].equals(box(X0, Y1 - 1000, X0 + 1000, Y1).difference(box(X0, Y1 - 100, X0 + 200, Y1)))
    rows = districts_of(out)
    west, east = rows["West"], rows["East"]
    assert float(west["released_km2_cancelled"]) == pytest.approx(0.02)
    assert float(west["released_km2_reduced"]) == pytest.approx(0.005)
    assert float(west["released_km2_cleared"]) == 0.0
    assert float(east["released_km2_cleared"]) == pytest.approx(0.01)
    assert float(east["released_km2_cancelled"]) == 0.0 and float(east["released_km2_reduced"]) == 0.0
    # P_c stays in the table; the residual beside it (the cleared cell (50, 50) no longer the maximum)
    assert float(east["max_pc"]) == pytest.approx(0.6) and float(east["max_residual"]) == pytest.approx(0.1)
    assert float(east["mean_residual"]) == pytest.approx(4999 * 0.1 / 5000, rel=1e-5)
    assert float(west["mean_residual"]) == pytest.approx((98 * 1.4 / 3 + 4899 * 0.4 + 0.2) / 5000, rel=1e-5)
    for name in ("released_share", "residual_probability"):
        assert (out / f"{name}.qml").exists() and (out / f"{name}.png").exists()
    assert "Released land" in (out / "report.html").read_text()
    # the QGIS project: the release polygons as their own, shown layer in Evidence; the share among the products
    project = zipfile.ZipFile(out / "minemap.qgz").read("minemap.qgs").decode()
    evidence = ET.fromstring(project.split("\n", 1)[1]).find(".//layer-tree-group[@name='Evidence']")
    released = evidence.find("layer-tree-layer[@name='Released land (release)']")
    assert released is not None and released.get("checked") == "Qt::Checked"
    assert "Released land (IMAS land release)" in project


def test_release_polygon_removes_priority_zone_only_when_cleared(world2, tmp_path):
    """Control for the test above: without [release] the same world has its zone at (50, 50)."""
    out = tmp_path / "out"
    assert run_cli("run", world2, "--out", out, "--quiet").exit_code == 0
    assert list(gpd.read_file(out / "priority_zones.gpkg")["cells"]) == [1, 100]
    assert not (out / "released_share.tif").exists()


def test_unknown_release_status_is_refused(world2, tmp_path):
    write_release(world2, RELEASED + [{"status": "done", "cleared_on": "", "geometry": cell_box(5, 5)}])
    world2.write_text(world2.read_text() + RELEASE)
    out = tmp_path / "out"
    assert_refused(["run", world2, "--out", out], out, 2, "release.gpkg", "'status'", "'done' (1 feature)")


def test_release_values_mapping_and_empty_layer(world2, tmp_path):
    write_release(world2, [{"etat": "nettoyé", "geometry": cell_box(50, 50)}])
    world2.write_text(world2.read_text() + '\n[release]\npath = "release.gpkg"\nstatus_field = "etat"\n'
                      '[release.values]\ncleared = ["nettoyé", "cleared"]\n')
    out = tmp_path / "out"
    assert run_cli("run", world2, "--out", out, "--quiet").exit_code == 0
    assert read(out, "released_share")[50, 50] == 1.0
    # no release polygons yet: fine, nothing released
    gpd.GeoDataFrame({"etat": []}, geometry=[], crs=CRS).to_file(world2.parent / "release.gpkg", driver="GPKG")
    out2 = tmp_path / "out2"
    result = run_cli("run", world2, "--out", out2, "--quiet")
    assert result.exit_code == 0, result.output
    assert float(read(out2, "released_share").max()) == 0.0
    assert np.array_equal(read(out2, "residual_probability"), read(out2, "contamination_probability"))


def test_new_release_polygon_recomputes_one_chunk(tmp_path):
    config = fine_world(tmp_path / "w")
    write_gpkg(config.parent / "release.gpkg", [{"status": "cleared", "geometry": cell_box(10, 10)}])
    config.write_text(config.read_text() + RELEASE)
    out = tmp_path / "out"
    assert run_cli("run", config, "--out", out, "--quiet").exit_code == 0
    write_gpkg(config.parent / "release.gpkg", [{"status": "cleared", "geometry": cell_box(10, 10)},
                                                {"status": "reduced", "geometry": box(X0 + 7000, Y0 + 2000, X0 + 7300,
                                                                                      Y0 + 2100)}])  # chunk (1, 1)
    result = run_cli("update", config, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["chunks_recomputed"] == 1
    fresh = tmp_path / "fresh"
    assert run_cli("run", config, "--out", fresh, "--quiet").exit_code == 0
    names = made_products(fresh)  # every product the run makes, from the registry
    assert names == made_products(out) and "residual_probability" in names
    for name in names:
        a, b = read(out, name), read(fresh, name)
        assert np.array_equal(a.data, b.data) and np.array_equal(a.mask, b.mask), name
    assert read(out, "released_share")[795, 715] == 1.0


def test_release_dates_must_be_dates(world2, tmp_path):
    write_release(world2, [{"status": "cleared", "released_on": "2025-06-01", "geometry": cell_box(50, 50)},
                           {"status": "cleared", "released_on": "last spring", "geometry": cell_box(5, 5)}])
    world2.write_text(world2.read_text() + RELEASE + 'date_field = "released_on"\n')
    assert_refused(["validate", world2], None, 2, "release.gpkg", "'released_on'", "'last spring'")


def test_missing_extent_file_is_refused(world, tmp_path):
    world.write_text(world.read_text().replace('path = "mines.gpkg"\n', 'path = "mines.gpkg"\nextent = "nowhere.gpkg"\n'))
    out = tmp_path / "out"
    assert_refused(["run", world, "--out", out], out, 2, "nowhere.gpkg", "file not found")
