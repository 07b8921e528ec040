"""Fault matrix, input families (config, grid, rasters, vectors, tables), issue #11.

Refusals: exit 2, the file (or key) and the problem named, a previous output folder
byte-identical, no staging folder, the lock free (`faults.assert_refused`). Accepted inputs:
the values land on the hand-checked cells of the tiny world (tests/world.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS as RasterCRS
from shapely.geometry import Point, Polygon, box

from faults import assert_refused, no_leftovers, run_cli
from world import CRS, X0, X1, Y0, Y1, make_world, write_gpkg, write_raster

NODATA = -9999.0


@pytest.fixture(scope="module")
def first_run(tmp_path_factory) -> Path:
    """One successful run of the tiny world, copied into each test's own OUT."""
    root = tmp_path_factory.mktemp("first")
    config = make_world(root / "world")
    out = root / "out"
    result = run_cli("run", config, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def out(world: Path, first_run: Path) -> Path:
    """A previous run's output folder, to check that a refused run leaves it byte-identical."""
    target = world.parent / "out"
    shutil.copytree(first_run, target)
    return target


def refused(world: Path, out: Path, *needles: str) -> str:
    """`validate` and `run` both refuse (exit 2) with the needles; OUT untouched."""
    assert_refused(["validate", world], None, 2, *needles)
    return assert_refused(["run", world, "--out", out, "--quiet"], out, 2, *needles)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def band(out: Path, product: str) -> np.ndarray:
    with rasterio.open(out / f"{product}.tif") as ds:
        return ds.read(1)


def run_ok(world: Path, out: Path) -> dict:
    result = run_cli("run", world, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    assert no_leftovers(out)
    return json.loads((out / "run.json").read_text())


# --- config ---------------------------------------------------------------------------------

def test_config_not_toml(world, out):
    world.write_text("grid = grid.toml\n[inputs\n")
    refused(world, out, "config.toml", "not a valid TOML file")


def test_variable_bound_twice(world, out):
    world.write_text(world.read_text() + '[inputs.L]\nkind = "constant"\nvalue = 3\n')
    refused(world, out, "config.toml", "Cannot declare ('inputs', 'L') twice")


def test_unknown_source_kind(world, out):
    edit(world, 'kind = "coverage"\npath = "cleared.gpkg"\nunits = "percent"', 'kind = "buffer"\npath = "cleared.gpkg"')
    refused(world, out, "config.toml: inputs.C", "'buffer'")


def test_config_and_input_problems_listed_together(world, out):
    """Item 11: a bad key in [inputs.S_t] does not hide the missing file of [inputs.L]."""
    edit(world, 'class_field = "soil_class"\ntable = "soil.csv"\n[inputs.V_i]',
         'class_field = "soil_class"\ntable = "soil.csv"\ncolour = "red"\n[inputs.V_i]')
    (world.parent / "mines.gpkg").unlink()
    text = refused(world, out, "config.toml: inputs.S_t.polygons.colour", "Extra inputs are not permitted",
                   "mines.gpkg: file not found")
    assert "needs S_t" not in text  # the refused table is reported once, not as a missing binding too


def test_products_typo_and_input_problem_listed_together(world, out):
    """A typo in [products.*] is listed with the inputs' problems; R_e is disabled and T_s left
    unbound, so while [products] is refused nothing may claim that recovery_rate needs T_s."""
    text = world.read_text()
    t_s = text[text.index("[inputs.T_s]"):text.index("[inputs.E_f]")]
    world.write_text(text.replace(t_s, "").replace("L_sat = 50.0", "L_sat = 50.0\nLsat = 40") +
                     "[products.recovery_rate]\nenabled = false\n")
    (world.parent / "soil.csv").unlink()
    text = refused(world, out, "config.toml: products.contamination_probability.Lsat", "soil.csv: table not found")
    assert "needs T_s" not in text


# --- grid -----------------------------------------------------------------------------------

@pytest.mark.parametrize("crs", ["EPSG:999999", "not a crs at all"])
def test_grid_crs_unknown(world, out, crs):
    edit(world.parent / "grid.toml", f'crs = "{CRS}"', f'crs = "{crs}"')
    refused(world, out, "grid.toml: crs", repr(crs), "is not a CRS PROJ knows")


def test_grid_in_degrees(world, out):
    edit(world.parent / "grid.toml", f'crs = "{CRS}"', 'crs = "EPSG:4326"')
    refused(world, out, "grid.toml", "EPSG:4326 is not in metres")


def test_grid_chunk_not_multiple_of_tile(world, out):
    edit(world.parent / "grid.toml", "chunk = 512", "chunk = 500")
    refused(world, out, "grid.toml: chunk", "multiple of 512")


def test_region_file_missing(world, out):
    (world.parent / "region.gpkg").unlink()
    refused(world, out, "region.gpkg", "file not found")


def test_region_of_points(world, out):
    write_gpkg(world.parent / "region.gpkg", [{"name": "p", "geometry": Point(X0 + 50, Y1 - 50)}])
    refused(world, out, "region.gpkg", "has Point geometries; a region boundary needs Polygon/MultiPolygon")


def test_region_without_cell_centre(world, out):
    """Item 14: 40 m square between four cell centres: every product would be empty."""
    write_gpkg(world.parent / "region.gpkg", [{"name": "tiny", "geometry": box(X0 + 80, Y1 - 120, X0 + 120, Y1 - 80)}])
    refused(world, out, "region.gpkg", "the region covers no cell centre at 100 m", "grid.toml")


def test_region_with_unusable_crs(world, out):
    """Item 9: a CRS pyproj cannot transform (a local engineering CRS) names the file and the CRS."""
    d = world.parent
    gpd.GeoDataFrame({"name": ["square"]}, geometry=[box(X0, Y0, X0 + 10000, Y1)]).to_file(d / "region.shp")
    (d / "region.prj").write_text('LOCAL_CS["site plan",UNIT["metre",1]]')
    edit(d / "grid.toml", 'path = "region.gpkg"', 'path = "region.shp"')
    refused(world, out, "region.shp", 'its CRS LOCAL_CS["site plan"', "cannot be transformed to the grid's EPSG:32638")


def test_grid_far_from_true_scale_warns(world, tmp_path):
    """Item 13: Web Mercator at 40° N counts ~1.69 km² per km²: a warning naming the grid file
    and the factor (validate and run, kept in run.json); the run goes on."""
    edit(world.parent / "grid.toml", f'crs = "{CRS}"', 'crs = "EPSG:3857"')
    result = run_cli("validate", world)
    assert result.exit_code == 0, result.output
    warning = [line for line in result.output.splitlines() if line.startswith("warning:") and "grid.toml" in line]
    assert len(warning) == 1 and "grid.toml" in warning[0] and "EPSG:3857 is not true to scale" in warning[0]
    low, high = (float(x) for x in warning[0].split("counts as ")[1].split(" km²")[0].split("–"))
    assert 1.68 < low < high < 1.71  # 1 / cos²(39.7° … 39.8°)
    record = run_ok(world, tmp_path / "out")
    assert any("EPSG:3857 is not true to scale" in w for w in record["warnings"])


def test_grid_true_to_scale_no_warning(world):
    result = run_cli("validate", world)
    assert result.exit_code == 0 and "true to scale" not in result.output, result.output


# --- rasters --------------------------------------------------------------------------------

def test_int16_auto_scale_divides_by_type_maximum(world, out):
    """Item 3: int16 0 → V_i 0, 32767 → V_i 1. West half is sand (S_t 0.8) and H_m is 0 away
    from the mines, so P_c = (0 + 0.8 + V_i) / 3 on those cells."""
    d = world.parent
    (d / "drone" / "a.tif").unlink()
    data = np.zeros((4, 4), np.int16)
    data[:, 2:] = 32767  # cells (rows 0–3) cols 2–3 get 32767, cols 0–1 get 0
    write_raster(d / "drone" / "i16.tif", data, X0, Y1, 100.0, CRS)
    run_ok(world, out)
    pc = band(out, "contamination_probability")
    assert pc[1, 1] == pytest.approx(0.8 / 3, abs=1e-6)  # V_i 0 (was 0.5 before the fix)
    assert pc[1, 2] == pytest.approx(1.8 / 3, abs=1e-6)  # V_i 1
    assert pc[1, 5] == pytest.approx(0.8 / 2, abs=1e-6)  # no drone data: mean of H_m, S_t


def test_int16_negative_values_refused(world, out):
    data = np.array([[-100, 0], [200, 32767]], np.int16)
    write_raster(world.parent / "drone" / "signed.tif", data, X0, Y1, 100.0, CRS)
    refused(world, out, "signed.tif", "outside the valid range of V_i", "after dividing by 32767")


def test_raster_band_missing(world, out):
    edit(world, 'path = "drone/*.tif"', 'path = "drone/*.tif"\nband = 2')
    refused(world, out, "a.tif", "has no band 2 (it has 1)")


def test_raster_all_nodata(world, out):
    write_raster(world.parent / "drone" / "empty.tif", np.full((5, 5), -1.0, np.float32), X0, Y1, 20, CRS,
                 nodata=-1.0)
    refused(world, out, "empty.tif", "has no valid pixels")


def test_raster_glob_matches_nothing(world, out):
    edit(world, 'path = "drone/*.tif"', 'path = "flights/*.tif"')
    refused(world, out, "flights/*.tif", "no file matches", "inputs.V_i.path")


def test_raster_with_unusable_crs(world, out):
    path = write_raster(world.parent / "drone" / "local.tif", np.zeros((5, 5), np.float32), X0, Y1, 20, None)
    with rasterio.open(path, "r+") as ds:
        ds.crs = RasterCRS.from_wkt('LOCAL_CS["site plan",UNIT["metre",1]]')
    refused(world, out, "local.tif", 'its CRS LOCAL_CS["site plan"', "cannot be transformed")


# --- vectors --------------------------------------------------------------------------------

def empty_layer(path: Path, layer: str) -> None:
    gpd.GeoDataFrame({"soil_class": []}, geometry=gpd.GeoSeries([], crs=CRS)).to_file(path, layer=layer)


def test_empty_soil_layer_refused(world, out):
    """Item 2: an empty soil layer would read as "no contamination" (P_c 0.31 → 0.02 on the sample)."""
    (world.parent / "soil.gpkg").unlink()
    empty_layer(world.parent / "soil.gpkg", "soil")
    refused(world, out, "soil.gpkg", "layer 'soil' has 0 features", "allow_empty = true")


def test_empty_after_where_refused(world, out):
    edit(world, 'kind = "coverage"\npath = "cleared.gpkg"\nunits = "percent"',
         'kind = "coverage"\npath = "cleared.gpkg"\nunits = "percent"\nwhere = "method = \'dogs\'"')
    refused(world, out, "cleared.gpkg", "has 0 features where method = 'dogs'")


def test_points_instead_of_polygons_refused(world, out):
    write_gpkg(world.parent / "soil.gpkg", [{"soil_class": "sand", "geometry": Point(X0 + 100, Y1 - 100)}])
    refused(world, out, "soil.gpkg", "has Point geometries; polygons source needs Polygon/MultiPolygon")


def test_lines_as_density_records_refused(world, out):
    from shapely.geometry import LineString
    write_gpkg(world.parent / "mines.gpkg", [{"count": 3, "geometry": LineString([(X0, Y1 - 50), (X0 + 500, Y1 - 50)])}])
    refused(world, out, "mines.gpkg", "has LineString geometries; density source needs Point/MultiPoint/Polygon")


def test_empty_cleared_layer_allowed(world, out):
    """With allow_empty = true an empty cleared-areas layer runs: C = 0, so E = L·D − 0 and CSC
    (defined where C > 0) is nodata everywhere; cell (10, 10) was fully cleared before (E −80)."""
    d = world.parent
    (d / "cleared.gpkg").unlink()
    gpd.GeoDataFrame({"method": []}, geometry=gpd.GeoSeries([], crs=CRS)).to_file(d / "cleared.gpkg",
                                                                                  layer="cleared")
    text = world.read_text()
    for block in ('path = "cleared.gpkg"\nunits = "percent"', 'path = "cleared.gpkg"\nunits = "site_km2"',
                  'path = "cleared.gpkg"\nclass_field = "method"\ntable = "methods.csv"\nall_touched = true'):
        assert block in text
        text = text.replace(block, block + "\nallow_empty = true")
    world.write_text(text)
    assert band(out, "environmental_impact")[10, 10] == pytest.approx(-80.0)  # the previous run
    run_ok(world, out)
    e = band(out, "environmental_impact")
    assert e[10, 10] == 0.0 and e[30, 30] == 0.0
    assert (band(out, "clearance_sustainability") == NODATA).all()
    assert (band(out, "recovery_rate")[e != NODATA] == 0.0).all()  # A_c = 0 → R_e = 0


def test_empty_records_and_polygons_allowed(world, out):
    """allow_empty on density (→ L 0, so H_m 0) and on a polygons field source (→ its fill 0.25):
    P_c = (0 + 0.25 + 0.6) / 3 under the drone square, (0 + 0.25) / 2 elsewhere, the mines' cell too."""
    d = world.parent
    (d / "mines.gpkg").unlink()
    gpd.GeoDataFrame({"count": []}, geometry=gpd.GeoSeries([], crs=CRS)).to_file(d / "mines.gpkg")
    gpd.GeoDataFrame({"st": []}, geometry=gpd.GeoSeries([], crs=CRS)).to_file(d / "st.gpkg")
    edit(world, "bandwidth_m = 50 ", "allow_empty = true\nbandwidth_m = 50 ")
    edit(world, 'kind = "polygons"\npath = "soil.gpkg"\nclass_field = "soil_class"\ntable = "soil.csv"\n[inputs.V_i]',
         'kind = "polygons"\npath = "st.gpkg"\nfield = "st"\nallow_empty = true\nfill = 0.25\n[inputs.V_i]')
    run_ok(world, out)
    pc = band(out, "contamination_probability")
    assert pc[5, 5] == pytest.approx(0.85 / 3, abs=1e-6)
    assert pc[50, 50] == pytest.approx(0.125, abs=1e-6) and pc[60, 80] == pytest.approx(0.125, abs=1e-6)


def test_spike_polygon_keeps_its_polygonal_part(world, out):
    """Item 12: a square over cells (30–31, 30–31) with a zero-area spike running 300 m east is
    repaired into the square (the spike, a line, is dropped): exactly those 4 cells are cleared."""
    x, y = X0 + 3000, Y1 - 3200
    spiked = Polygon([(x, y), (x + 200, y), (x + 200, y + 100), (x + 500, y + 100), (x + 200, y + 100),
                      (x + 200, y + 200), (x, y + 200)])
    assert not spiked.is_valid
    write_gpkg(world.parent / "cleared.gpkg", [{"method": "manual", "geometry": spiked}])
    run_ok(world, out)
    csc = band(out, "clearance_sustainability")
    rows, cols = np.nonzero(csc != NODATA)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(30, 30), (30, 31), (31, 30), (31, 31)]
    e = band(out, "environmental_impact")  # C 100 %, R 0.8 (manual), L 0: E = −80 on them, 0 along the spike
    assert (e[30:32, 30:32] == np.float32(-80.0)).all()
    assert (e[30:32, 32:35] == 0.0).all()


def test_vector_with_unreadable_crs(world, out):
    d = world.parent
    gpd.GeoDataFrame({"count": [5]}, geometry=[Point(X0 + 50, Y1 - 50)]).to_file(d / "mines.shp")
    (d / "mines.prj").write_text("GEOGCS[garbage")
    edit(world, 'path = "mines.gpkg"', 'path = "mines.shp"')
    refused(world, out, "mines.shp", "its CRS (GEOGCS[garbage) cannot be used")


def test_polygon_field_with_nan(world, out):
    write_gpkg(world.parent / "st.gpkg", [{"st": 0.5, "geometry": box(X0, Y0, X0 + 5000, Y1)},
                                          {"st": float("nan"), "geometry": box(X0 + 5000, Y0, X0 + 10000, Y1)}])
    edit(world, 'kind = "polygons"\npath = "soil.gpkg"\nclass_field = "soil_class"\ntable = "soil.csv"\n[inputs.V_i]',
         'kind = "polygons"\npath = "st.gpkg"\nfield = "st"\n[inputs.V_i]')
    refused(world, out, "st.gpkg", "field 'st' is empty in 1 feature(s)")


def test_density_count_negative(world, out):
    write_gpkg(world.parent / "mines.gpkg", [{"count": -5, "geometry": Point(X0 + 50, Y1 - 50)}])
    refused(world, out, "mines.gpkg", "field 'count'", "values -5..-5 outside the valid range of count")


def test_input_file_is_a_folder(world, out):
    (world.parent / "soil.gpkg").unlink()
    (world.parent / "soil.gpkg").mkdir()
    refused(world, out, "soil.gpkg", "cannot read vector data")


def test_districts_of_points_refused(world, out):
    write_gpkg(world.parent / "districts.gpkg", [{"name": "a", "geometry": Point(X0 + 50, Y1 - 50)}])
    world.write_text(world.read_text() + '[districts]\npath = "districts.gpkg"\n')
    refused(world, out, "districts.gpkg", "has Point geometries; the districts layer needs Polygon/MultiPolygon")


def pdf_text(pdf: Path, page: int | None = None) -> str:
    """The briefing's text (pdftotext -layout), one page or all (pages split by form feeds)."""
    import subprocess

    pages = ["-f", str(page), "-l", str(page)] if page else []
    return subprocess.run(["pdftotext", "-layout", *pages, str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_districts_reaching_beyond_the_region_are_listed_not_paged(world, tmp_path):
    """#20 §5: a districts layer wider than the grid's region (the region holds one of two
    districts) was an IndexError in the briefing writer on run and update. Now: exit 0, a page for
    the district in the region, the other listed on the cover as outside it."""
    write_gpkg(world.parent / "districts.gpkg", [
        {"name": "Inside", "geometry": box(X0, Y0, X0 + 10_000, Y1)},  # the whole region
        {"name": "Beyond", "geometry": box(X0 + 20_000, Y0, X0 + 30_000, Y1)},  # 10 km east of it
    ])
    world.write_text(world.read_text() + '[districts]\npath = "districts.gpkg"\nname_field = "name"\n')
    out = tmp_path / "out"
    for command in ("run", "update"):
        if command == "update":  # a new record: the update redoes its chunk and draws the pack again
            write_gpkg(world.parent / "mines.gpkg", [{"count": 100, "geometry": Point(X0 + 5050, Y1 - 5050)},
                                                     {"count": 5, "geometry": Point(X0 + 1050, Y1 - 1050)}])
        result = run_cli(command, world, "--out", out, "--quiet")
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output and no_leftovers(out)
        if command == "update":
            assert json.loads((out / "run.json").read_text())["chunks_recomputed"] >= 1
        text = pdf_text(out / "briefing.pdf")
        pages = text.split("\f")[:-1]
        assert len(pages) == 2 + (command == "update")  # the summary, (the changes page after a run,) Inside
        assert "District: Inside" in pages[1 + (command == "update")] and "District: Beyond" not in text
        cover = " ".join(pages[0].split())
        assert "Districts 2: 1 with a page, 1 outside the region" in cover
        assert "Beyond – outside the region: no page" in cover


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed")
def test_district_name_longer_than_the_page_is_shown_whole(world, tmp_path):
    """#20 §5: a district name longer than the page was cut off in briefing.pdf; it wraps (in
    smaller type) and every word of it is on its page."""
    name = ("Autonomous Administrative District of the Upper and Lower Valleys of the Northern Range, "
            "including the Former Collective Farm Lands East of the River Crossing")  # 157 characters
    write_gpkg(world.parent / "districts.gpkg", [{"name": name, "geometry": box(X0, Y0, X1, Y1)}])
    world.write_text(world.read_text() + '[districts]\npath = "districts.gpkg"\nname_field = "name"\n')
    out = tmp_path / "out"
    run_ok(world, out)
    page = pdf_text(out / "briefing.pdf", 2)
    heading = " ".join(page.split("Residual")[0].split("Contamination probability")[0].split())
    assert heading == f"District: {name}", page


# --- tables ---------------------------------------------------------------------------------

BAD_TABLES = {  # an unquoted comma shifts the row's columns (#14 §4); a class twice; a word for a number
    "extra field": ("methods.csv", "method,E_f,D_i,R\nmanual,0.9,1.0,0.8\nmechanical,0.7,0.5,0.4,flails, tillers\n",
                    "line 3 has 6 fields, the header has 4"),
    "missing field": ("soil.csv", "soil_class,S_t,D,T_s,B_r\nsand,0.8,0.5,1.0\nrock,0.2,0.1,2.0,0.9\n",
                      "line 2 has 4 fields, the header has 5"),
    "duplicate class": ("soil.csv", "soil_class,S_t,D,T_s,B_r\nsand,0.8,0.5,1.0,0.6\nrock,0.2,0.1,2.0,0.9\n"
                                    "sand,0.7,0.5,1.0,0.6\n", "class 'sand' appears twice in column 'soil_class'"),
    "not a number": ("soil.csv", "soil_class,S_t,D,T_s,B_r\nsand,high,0.5,1.0,0.6\nrock,0.2,0.1,2.0,0.9\n",
                     "class 'sand': S_t = 'high' is not a number"),
}


@pytest.mark.parametrize("case", BAD_TABLES)
def test_bad_table_refused(world, out, case):
    name, text, needle = BAD_TABLES[case]
    (world.parent / name).write_text(text)
    refused(world, out, name, needle)


def test_table_quoted_comma_accepted(world, out):
    (world.parent / "methods.csv").write_text('method,E_f,D_i,R,description\nmanual,0.9,1.0,0.8,"detectors, prodders"\n'
                                              "mechanical,0.7,0.5,0.4,flails\n")
    run_ok(world, out)
    assert band(out, "environmental_impact")[10, 10] == pytest.approx(-80.0)  # R of manual still 0.8


def test_sample_tables_read_as_their_header_says():
    """The sample's class tables: descriptions holding commas are quoted, so every row reads
    with the header's fields (read_table refuses any other row)."""
    from pipeline.vector import read_table

    sample = Path(__file__).resolve().parents[1] / "sample_data"
    methods = read_table(sample / "clearance_methods.csv", "method")
    assert methods["mechanical"]["description"] == "armoured flails and tillers: fast, churns the topsoil"
    assert methods["mechanical"]["R"] == "0.45"
    soils = read_table(sample / "soil_classes.csv", "soil_class")
    assert soils["mountain_meadow"]["description"].endswith("(Kalbajar, Lachin highlands)")


def test_output_settings_out_of_bounds(world, out):
    """[output] keep_history 0 would delete the run's own history item; a colour range with
    lo ≥ hi has no scale: both refused before anything is read, naming the key."""
    world.write_text(world.read_text() + "[output]\nkeep_history = 0\n[products.environmental_impact]\n"
                                          "range = [5.0, -5.0]\n")
    text = refused(world, out, "config.toml", "output.keep_history")
    assert "environmental_impact" in text and "range" in text
