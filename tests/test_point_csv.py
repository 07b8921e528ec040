"""Point records from CSV files (issue #22): lon/lat or x/y columns, found by name or named in the
config, with a CRS; bad coordinates and wrong field names refused with the file's real fields."""

from pathlib import Path

import pytest
from click.testing import CliRunner
from pyproj import Transformer

from pipeline.cli import main
from pipeline.engine.plan import load_inputs
from world import X0, Y1

# the tiny world's 100 mines lie at the middle of cell (50, 50): 100 per 0.01 km² with bandwidth 50 m
MINE_XY = (X0 + 5050, Y1 - 5050)
MINE_LONLAT = Transformer.from_crs("EPSG:32638", "EPSG:4326", always_xy=True).transform(*MINE_XY)


def with_records(world: Path, name: str, text: str, extra: str = "") -> Path:
    """The world's config with inputs.L read from the CSV `name` holding `text`."""
    (world.parent / name).write_text(text)
    config = world.read_text().replace('path = "mines.gpkg"', f'path = "{name}"{extra}')
    world.write_text(config)
    return world


def density_at_mine(world: Path) -> float:
    inputs = load_inputs(world)
    return float(inputs.layers["L"].array[50, 50].compute())


def validate(world: Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["validate", str(world)])
    return result.exit_code, result.output


def test_gpkg_records_give_10000_per_km2(world):
    assert density_at_mine(world) == pytest.approx(10_000, rel=1e-6)  # the reference the CSVs must match


def test_imsma_style_lonlat_csv_gives_the_same_density(world):
    lon, lat = MINE_LONLAT
    with_records(world, "records.csv", f"ID,Longitude,Latitude,count,Date\nR-1,{lon:.9f},{lat:.9f},100,2021-03-04\n")
    assert density_at_mine(world) == pytest.approx(10_000, rel=1e-6)


def test_semicolon_csv_with_lowercase_lon_lat_and_one_item_per_row(world):
    lon, lat = MINE_LONLAT
    rows = "".join(f"{i};{lon:.9f};{lat:.9f}\n" for i in range(4))  # four records at one spot, no count field
    with_records(world, "items.csv", "id;lon;lat\n" + rows, "\ncount = 2.5")
    assert density_at_mine(world) == pytest.approx(1000, rel=1e-6)  # 4 × 2.5 items / 0.01 km²


def test_xy_csv_needs_a_crs_then_reads(world):
    x, y = MINE_XY
    with_records(world, "utm.csv", f"Easting,Northing,count\n{x},{y},100\n")
    code, out = validate(world)
    assert code == 2 and "utm.csv" in out and "have no CRS: set crs" in out, out
    world.write_text(world.read_text().replace('path = "utm.csv"', 'path = "utm.csv"\ncrs = "EPSG:32638"'))
    assert density_at_mine(world) == pytest.approx(10_000, rel=1e-6)


def test_named_columns_and_their_crs(world):
    x, y = MINE_XY
    with_records(world, "gps.csv", f"E_utm,N_utm,count\n{x},{y},100\n",
                 '\nx_field = "E_utm"\ny_field = "N_utm"\ncrs = "EPSG:32638"')
    assert density_at_mine(world) == pytest.approx(10_000, rel=1e-6)


def test_bad_coordinates_refused_with_their_count_and_first_line(world):
    lon, lat = MINE_LONLAT
    with_records(world, "records.csv",
                 f"lon,lat,count\n{lon},{lat},1\n{lon},,2\n46;5,{lat},1\n{lon},{lat},1\n{lon},95.5,1\n")
    code, out = validate(world)
    assert code == 2, out
    assert "records.csv: 3 of 5 rows have no usable coordinates in columns lon, lat (first: line 3, lon = " in out
    assert "lat = empty; EPSG:4326 values expected)" in out
    assert "Traceback" not in out


def test_csv_without_coordinate_columns_lists_its_columns(world):
    with_records(world, "records.csv", "site,mines\nA,3\n")
    code, out = validate(world)
    assert code == 2 and "records.csv: a CSV of points needs coordinate columns" in out
    assert "its columns: site, mines" in out


def test_wrong_field_lists_the_files_real_fields(world):
    world.write_text(world.read_text().replace('path = "mines.gpkg"', 'path = "mines.gpkg"\ncount_field = "mines"'))
    code, out = validate(world)
    assert code == 2
    assert "mines.gpkg: has no field 'mines' (fields: count)" in out  # was "(fields: )"


def test_wrong_field_case_is_named(world):
    lon, lat = MINE_LONLAT
    with_records(world, "records.csv", f"lon,lat,Count,Found_By\n{lon},{lat},1,team 4\n")
    code, out = validate(world)
    assert code == 2
    assert "records.csv: has no field 'count' (fields: lon, lat, Count, Found_By); did you mean 'Count'?" in out


def test_count_and_count_field_together_refused(world):
    world.write_text(world.read_text().replace('path = "mines.gpkg"', 'path = "mines.gpkg"\ncount = 1\n'
                                                                      'count_field = "count"'))
    code, out = validate(world)
    assert code == 2 and "inputs.L" in out and "not both" in out


def test_csv_records_kept_in_evidence_gpkg_and_the_project(world, tmp_path):
    """A run with records from a CSV: they are points in OUT/evidence.gpkg (grid CRS) and a shown
    layer of the QGIS project, as records from a GeoPackage are."""
    import zipfile

    import pyogrio

    lon, lat = MINE_LONLAT
    with_records(world, "records.csv", f"ID,Longitude,Latitude,count\nR-1,{lon:.9f},{lat:.9f},100\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(world), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    frame = pyogrio.read_dataframe(out / "evidence.gpkg", layer="records")
    assert list(frame["ID"]) == ["R-1"] and list(frame["count"]) == [100]
    assert frame.geometry.iloc[0].x == pytest.approx(MINE_XY[0], abs=1e-3)
    assert frame.geometry.iloc[0].y == pytest.approx(MINE_XY[1], abs=1e-3)
    with zipfile.ZipFile(out / "minemap.qgz") as z:
        project = z.read(next(n for n in z.namelist() if n.endswith(".qgs"))).decode()
    assert "evidence.gpkg|layername=records" in project


def test_csv_options_on_a_geopackage_refused(world):
    world.write_text(world.read_text().replace('path = "mines.gpkg"', 'path = "mines.gpkg"\ncrs = "EPSG:4326"'))
    code, out = validate(world)
    assert code == 2 and "mines.gpkg: x_field, y_field and crs (inputs.L) are for CSV files" in out
