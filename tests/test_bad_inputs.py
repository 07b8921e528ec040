"""Bad input: one clear message naming the file and the problem, exit 2, outputs untouched."""

from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from shapely.geometry import Polygon, box

from pipeline.cli import main
from world import X0, Y1, write_gpkg, write_raster


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.fixture
def published(world: Path) -> Path:
    """A successful run's output folder, to check that failing runs leave it as it was."""
    out = world.parent / "out"
    result = run_cli("run", str(world), "--out", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    return out


def snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def assert_fails_cleanly(world: Path, out: Path, *needles: str) -> str:
    before = snapshot(out)
    result = run_cli("run", str(world), "--out", str(out), "--quiet")
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output
    assert snapshot(out) == before  # nothing touched, no staging folder left
    return result.output


def test_unknown_soil_class(world, published):
    d = world.parent
    write_gpkg(d / "soil.gpkg", [{"soil_class": "sand", "geometry": box(X0, Y1 - 10000, X0 + 5000, Y1)},
                                 {"soil_class": "peat", "geometry": box(X0 + 5000, Y1 - 10000, X0 + 10000, Y1)}])
    out = assert_fails_cleanly(world, published, "soil.gpkg", "unknown soil_class 'peat' (1 feature)", "soil.csv")
    assert out.count("peat") >= 1


def test_drone_raster_without_crs(world, published):
    write_raster(world.parent / "drone" / "nocrs.tif", np.zeros((5, 5), np.float32), X0, Y1, 20, None)
    assert_fails_cleanly(world, published, "nocrs.tif", "has no CRS")


def test_drone_raster_out_of_range(world, published):
    write_raster(world.parent / "drone" / "hot.tif", np.full((5, 5), 3.5, np.float32), X0, Y1, 20, "EPSG:32638")
    assert_fails_cleanly(world, published, "hot.tif", "outside the valid range of V_i [0, 1]")


def test_drone_raster_elsewhere(world, published):
    write_raster(world.parent / "drone" / "far.tif", np.zeros((5, 5), np.float32), 200_000, 1_000_000, 20,
                 "EPSG:32638")
    assert_fails_cleanly(world, published, "far.tif", "does not overlap the region")


def test_corrupt_drone_file(world, published):
    (world.parent / "drone" / "broken.tif").write_bytes(b"II*\x00 this is not a tiff")
    assert_fails_cleanly(world, published, "broken.tif", "corrupt or unreadable raster")


def test_self_intersecting_polygon_is_repaired(world, published):
    """A bow-tie over cells rows 0–4, cols 0–4 is invalid; make_valid keeps both triangles
    (buffer(0) would keep one: 9 cleared cells, not 17). Their edges run along cell diagonals,
    so C is 100 % on cells inside and 50 % on the diagonal cells (the crossing cell (2, 2) too):
    E = −C·R = −80 and −40 (manual, R 0.8; L 0 there), CSC (defined where cleared) on 17 cells."""
    bowtie = Polygon([(X0, Y1), (X0 + 500, Y1 - 500), (X0 + 500, Y1), (X0, Y1 - 500)])
    write_gpkg(world.parent / "cleared.gpkg", [{"method": "manual", "geometry": bowtie}])
    assert run_cli("run", str(world), "--out", str(published), "--quiet").exit_code == 0
    with rasterio.open(published / "environmental_impact.tif") as e, \
            rasterio.open(published / "clearance_sustainability.tif") as csc:
        impact, sustainability, nodata = e.read(1), csc.read(1), csc.nodata
    expected = -np.array([[40, 0, 0, 0, 40],
                          [80, 40, 0, 40, 80],
                          [80, 80, 40, 80, 80],
                          [80, 40, 0, 40, 80],
                          [40, 0, 0, 0, 40]], np.float32)
    assert np.array_equal(impact[:5, :5], expected)
    assert np.count_nonzero(impact) == 17 + 1  # and L·D on the mines' cell (50, 50)
    cleared = sustainability != nodata
    assert cleared.sum() == 17 and np.array_equal(cleared[:5, :5], expected < 0)
    assert (sustainability[cleared] == np.float32(0.75)).all()  # (E_f 0.9 + B_r 0.6) / 2 · D_i 1.0


def test_table_value_out_of_range_and_missing_file_listed_together(world, published):
    d = world.parent
    (d / "methods.csv").write_text("method,E_f,D_i,R\nmanual,1.4,1.0,0.8\nmechanical,0.7,0.5,0.4\n")
    (d / "mines.gpkg").unlink()
    assert_fails_cleanly(world, published, "methods.csv", "class 'manual': E_f = 1.4 outside the valid range",
                         "mines.gpkg: file not found")


def test_missing_crs_on_vector(world, published):
    import geopandas as gpd
    gpd.GeoDataFrame({"count": [5]}, geometry=[box(X0, Y1 - 100, X0 + 100, Y1)]).to_file(
        world.parent / "mines.gpkg", driver="GPKG")
    assert_fails_cleanly(world, published, "mines.gpkg", "has no CRS")


def test_config_errors_name_the_key(world, published):
    world.write_text(world.read_text().replace("bandwidth_m = 50 ", "bandwidth_m = -5").replace(
        "[inputs.S_t]", "[inputs.S_x]"))
    out = assert_fails_cleanly(world, published, "config.toml")
    assert "bandwidth_m" in out and "S_x" in out


def test_validate_lists_every_problem_and_writes_nothing(world, tmp_path):
    d = world.parent
    write_raster(d / "drone" / "nocrs.tif", np.zeros((5, 5), np.float32), X0, Y1, 20, None)
    (d / "soil.csv").write_text("soil_class,S_t,D,T_s,B_r\nsand,0.8,0.5,1.0,0.6\n")
    result = run_cli("validate", str(world))
    assert result.exit_code == 2
    assert "nocrs.tif: has no CRS" in result.output
    assert "unknown soil_class 'rock'" in result.output
    assert not (d / "out").exists()


def test_validate_ok(world):
    result = run_cli("validate", str(world))
    assert result.exit_code == 0, result.output
    assert "ok:" in result.output


def test_environmental_impact_needs_c_itself(world, published):
    """A_c stands in for C only to find cleared cells (CSC); E = L·D − C·R needs C bound."""
    text = world.read_text()
    start = text.index("[inputs.C]")
    world.write_text(text[:start] + text[text.index("[inputs.R]"):])
    out = assert_fails_cleanly(world, published, "config.toml", "product environmental_impact needs C")
    assert "clearance_sustainability" not in out
