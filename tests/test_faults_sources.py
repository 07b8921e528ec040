"""Fault matrix, issue #20 §5: what a source yields is checked against its variable, and inputs
that used to crash or mislead silently are refused or warned about.

Refusals as in tests/test_faults_inputs.py (`validate` and `run` exit 2, the file or key and the
problem named, a previous OUT byte-identical). The tiny world (tests/world.py): H_m 0 away from
cell (50, 50), S_t 0.8 on the west half, V_i 0.6 on rows 0–9, cols 0–9.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
from shapely.geometry import Point, box

from faults import assert_refused, run_cli
from test_faults_inputs import band, edit, first_run, out, refused, run_ok  # noqa: F401 (fixtures)
from world import CRS, X0, X1, Y0, Y1, cell_box, write_gpkg, write_raster

VI_RASTER = '[inputs.V_i]\nkind = "raster"\npath = "drone/*.tif"'


# --- every source kind's output against its variable's unit and range -------------------------

def test_density_bound_to_a_coefficient_refused(world, out):
    """Mine records bound to V_i gave P_c up to 144.8 with exit 0: a density is items per km²,
    never a coefficient in [0, 1]. Refused naming the key, both units and the fix."""
    edit(world, VI_RASTER, '[inputs.V_i]\nkind = "density"\npath = "mines.gpkg"')
    refused(world, out, "config.toml: inputs.V_i", "a density source yields items per km²",
            "V_i (drone visual-anomaly intensity) is a coefficient in [0, 1]", "bind the records to L")


COVERAGE_CASES = {  # variable, its new source block, what the refusal says
    "C as a fraction": ("C", 'kind = "coverage"\npath = "cleared.gpkg"\nunits = "fraction"',
                        ['units = "fraction" yields a share (0–1)', "C (cleared-land percentage of the cell) is in %",
                         'set units = "percent"']),
    "A_c as a percentage": ("A_c", 'kind = "coverage"\npath = "cleared.gpkg"\nunits = "percent"',
                            ['units = "percent" yields a percentage (0–100)', 'set units = "km2" or units = "site_km2"']),
    "L as km²": ("L", 'kind = "coverage"\npath = "cleared.gpkg"\nunits = "km2"',
                 ["L (mines per km²) is in mines/km²", "a coverage source cannot give L: use a density source"]),
    "B_r as a fraction": ("B_r", 'kind = "coverage"\npath = "cleared.gpkg"\nunits = "fraction"',
                          ['units = "fraction" yields values 0..1 outside the valid range of B_r (0, 1]']),
}


@pytest.mark.parametrize("case", COVERAGE_CASES)
def test_coverage_units_checked_against_the_variable(world, out, case):
    """A coverage's range (fraction [0, 1], percent [0, 100], km2 [0, cell km²], site_km2 [0,
    largest site]) and unit are checked before anything is computed: a share read as C (a
    percentage) would be 100 times too small; B_r must be > 0 and uncovered cells read 0."""
    var, block, needles = COVERAGE_CASES[case]
    text = world.read_text()
    start = text.index(f"[inputs.{var}]\n") + len(f"[inputs.{var}]\n")
    end = text.index("[inputs.", start)
    world.write_text(text[:start] + block + "\n" + text[end:])
    refused(world, out, f"config.toml: inputs.{var}", *needles)


def test_coverage_range_is_known_before_computing(world):
    """0 (uncovered) up to a whole cell, or up to the largest site's km² for site_km2."""
    from pipeline.grid import load_grid
    from pipeline.sources.loaders import coverage_range

    grid = load_grid(world.parent / "grid.toml")  # 100 m cells: 0.01 km²
    assert coverage_range("fraction", grid) == (0.0, 1.0)
    assert coverage_range("percent", grid) == (0.0, 100.0)
    assert coverage_range("km2", grid) == (0.0, pytest.approx(0.01))
    assert coverage_range("site_km2", grid, np.array([0.01, 0.0005])) == (0.0, 0.01)
    assert coverage_range("site_km2", grid, np.zeros(0)) == (0.0, 0.0)  # allow_empty: no site


# --- a raster's zero padding -------------------------------------------------------------------

def padded_drone(world: Path) -> None:
    """The world's drone survey (0.6 over rows 0–9, cols 0–9) as a float file without a nodata
    value, padded with 100 m of zeros on every side: the padding covers row 10 (cols 0–10) and
    col 10 (rows 0–10) inside the region."""
    (world.parent / "drone" / "a.tif").unlink()
    data = np.zeros((60, 60), np.float32)
    data[5:55, 5:55] = 0.6
    write_raster(world.parent / "drone" / "pad.tif", data, X0 - 100, Y1 + 100, 20.0, CRS)


def test_zero_padded_raster_warns_and_nodata_option_masks_it(world, out):
    """The padding read as V_i = 0 is one more evidence layer (P_c 0.8/3 instead of 0.8/2 on
    cell (10, 10)): a warning names the file and both fixes; `nodata = 0` makes it nodata."""
    padded_drone(world)
    result = run_cli("validate", world)
    assert result.exit_code == 0, result.output
    warning = [line for line in result.output.splitlines() if line.startswith("warning:") and "pad.tif" in line]
    assert len(warning) == 1, result.output
    for needle in ("has no nodata value", "border is exactly 0", "read as V_i = 0", "nodata = 0 in [inputs.V_i]",
                   "gdal_edit.py -a_nodata 0 pad.tif"):
        assert needle in warning[0]
    record = run_ok(world, out)
    assert any("pad.tif" in w and "gdal_edit.py" in w for w in record["warnings"])
    pc = band(out, "contamination_probability")
    assert pc[5, 5] == pytest.approx(1.4 / 3, abs=1e-6)  # surveyed: (0 + 0.8 + 0.6) / 3
    assert pc[10, 10] == pytest.approx(0.8 / 3, abs=1e-6)  # padding read as V_i 0
    state = json.loads((out / ".minemap" / "state.json").read_text())
    assert state["raster_checks"][str(world.parent / "drone" / "pad.tif")]["zero_border"] is True
    result = run_cli("update", world, "--out", out, "--quiet")  # the remembered check warns again
    assert result.exit_code == 0 and "pad.tif: has no nodata value" in result.output, result.output

    edit(world, 'path = "drone/*.tif"', 'path = "drone/*.tif"\nnodata = 0')
    result = run_cli("run", world, "--out", out, "--quiet")
    assert result.exit_code == 0 and "pad.tif" not in result.output, result.output
    pc = band(out, "contamination_probability")
    assert pc[5, 5] == pytest.approx(1.4 / 3, abs=1e-6)
    assert pc[10, 10] == pytest.approx(0.8 / 2, abs=1e-6) and pc[0, 10] == pytest.approx(0.8 / 2, abs=1e-6)
    assert not any("pad.tif" in w for w in json.loads((out / "run.json").read_text())["warnings"])


def test_unpadded_raster_and_raster_with_nodata_do_not_warn(world):
    """The world's drone file (0.6 to its edges, nodata −1) warns of nothing."""
    result = run_cli("validate", world)
    assert result.exit_code == 0 and "a.tif" not in result.output, result.output


# --- NULL classes ------------------------------------------------------------------------------

def test_null_in_class_field_refused(world, out):
    """A NULL soil_class crashed in np.unique (TypeError): now "N features have no soil_class"."""
    write_gpkg(world.parent / "soil.gpkg", [
        {"soil_class": "sand", "geometry": box(X0, Y0, X0 + 5000, Y1)},
        {"soil_class": None, "geometry": box(X0 + 5000, Y0, X1, Y0 + 5000)},
        {"soil_class": None, "geometry": box(X0 + 5000, Y0 + 5000, X1, Y1)},
    ])
    refused(world, out, "soil.gpkg", "2 features have no soil_class (NULL or blank)", "soil.csv",
            'where = "soil_class IS NOT NULL"')


def test_blank_class_refused(world, out):
    write_gpkg(world.parent / "soil.gpkg", [{"soil_class": "sand", "geometry": box(X0, Y0, X0 + 5000, Y1)},
                                            {"soil_class": "  ", "geometry": box(X0 + 5000, Y0, X1, Y1)}])
    refused(world, out, "soil.gpkg", "1 feature has no soil_class")


def test_null_release_status_refused(world, out):
    """A release polygon without a status was silently left out of the released land."""
    write_gpkg(world.parent / "release.gpkg", [{"status": "cancelled", "geometry": cell_box(20, 20)},
                                               {"status": None, "geometry": cell_box(30, 30)}])
    world.write_text(world.read_text() + '[release]\npath = "release.gpkg"\n')
    refused(world, out, "release.gpkg", "1 feature has no status (NULL or blank)", "cancelled, reduced, cleared")


# --- evaluate ----------------------------------------------------------------------------------

def test_evaluate_with_no_events_refused(world, out):
    """An events layer of 0 features crashed (np.concatenate of nothing): now refused naming it."""
    events = world.parent / "events.gpkg"
    gpd.GeoDataFrame({"outcome": []}, geometry=gpd.GeoSeries([], crs=CRS)).to_file(events, layer="found")
    assert_refused(["evaluate", world, "--events", events, "--out", out], out, 2, "events.gpkg",
                   "layer 'found' has 0 features", "evaluate needs known events")
    one = write_gpkg(world.parent / "one.gpkg", [{"outcome": 1, "geometry": Point(X0 + 50, Y1 - 50)}])
    assert_refused(["evaluate", world, "--events", one, "--out", out], out, 2, "one.gpkg", "no negative")
