"""`minemap init` (#22) on the tiny world's files: the UTM zone, each recipe (records; + soil;
+ drones) validated and run, and refusals that leave the folder as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from pyproj import Transformer
from shapely.geometry import box

from pipeline.cli import main
from pipeline.config import load_config
from pipeline.region_init import utm_epsg
from world import X0, Y1, make_world, write_gpkg

LONLAT = Transformer.from_crs("EPSG:32638", "EPSG:4326", always_xy=True)


def cli(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """The tiny world's region, soil and drone raster, and a lon/lat CSV of two records (no count
    field: one item each) in cells (50, 50) and (5, 5) (the drone raster's corner)."""
    root = make_world(tmp_path / "data").parent
    rows = [LONLAT.transform(X0 + 5050, Y1 - 5050), LONLAT.transform(X0 + 550, Y1 - 550)]
    (root / "records.csv").write_text("id,LAT,LON,found\n" + "".join(
        f"{i},{lat:.9f},{lon:.9f},2023-0{i + 1}-01\n" for i, (lon, lat) in enumerate(rows)))
    return root


@pytest.mark.parametrize("lon, lat, epsg, zone", [
    (46.63, 39.23, 32638, "38N"),    # Zangilan and Qubadli
    (-75.2, 6.1, 32618, "18N"),      # eastern Antioquia (grids/antioquia-100m.toml)
    (33.4, -19.0, 32736, "36S"),     # central Mozambique: south of the equator, 327zz
    (-180.0, 10.0, 32601, "1N"),     # the antimeridian: zone 1 starts there
    (180.0, 10.0, 32660, "60N"),     # and zone 60 ends there
    (48.0, 40.0, 32639, "39N"),      # a zone's edge belongs to the zone east of it
])
def test_utm_zone_of_a_point(lon, lat, epsg, zone):
    assert utm_epsg(lon, lat) == (epsg, zone)


def test_records_soil_and_drones_validate_and_run(files, tmp_path):
    out = tmp_path / "cfg"
    result = cli("init", files / "region.gpkg", "--name", "Tiny square", "--records", files / "records.csv",
                 "--soil", files / "soil.gpkg", "--drones", f"{files}/drone/*.tif", "--out", out)
    assert result.exit_code == 0, result.output
    assert "UTM zone 38N (EPSG:32638), 100 × 100 cells of 100 m" in result.output
    # the soil layer's actual classes, each with a placeholder S_t said to be one
    assert (out / "soil_classes.csv").read_text().splitlines() == [
        "soil_class,S_t,note",
        "rock,0.5,PLACEHOLDER: replace with this class's susceptibility (0-1)",
        "sand,0.5,PLACEHOLDER: replace with this class's susceptibility (0-1)"]
    cfg = load_config(out / "minemap.toml")
    assert sorted(cfg.spec.inputs) == ["L", "S_t", "V_i"]
    assert tuple(cfg.spec.products.contamination_probability.weights) == (0.5, 0, 0.5)  # placeholders weigh 0
    assert cfg.spec.inputs["L"].count == 1 and cfg.spec.inputs["S_t"].class_field == "soil_class"
    assert "weights = [0.5, 0, 0.5]   # once soil_classes.csv holds your values: weights = [0.34, 0.33, 0.33]" \
        in cfg.text
    assert cfg.spec.districts.name_field == "name"
    assert cli("validate", out / "minemap.toml").exit_code == 0
    run = cli("run", out / "minemap.toml", "--out", out / "out", "--quiet")
    assert run.exit_code == 0, run.output
    record = json.loads((out / "out" / "run.json").read_text())
    assert record["assessment"]["evidence_layers"] == ["H_m", "V_i"]  # S_t (weight 0) is not evidence


def test_records_and_soil_binds_soil_at_weight_zero(files, tmp_path):
    out = tmp_path / "cfg"
    assert cli("init", files / "region.gpkg", "--name", "x", "--records", files / "records.csv",
               "--soil", files / "soil.gpkg", "--out", out).exit_code == 0
    cfg = load_config(out / "minemap.toml")
    assert tuple(cfg.spec.products.contamination_probability.weights) == (1, 0, 0)
    assert "weights = [0.5, 0.5, 0]" in cfg.text
    result = cli("validate", "--json", out / "minemap.toml")
    assert result.exit_code == 0 and json.loads(result.output[result.output.index("{"):])["ok"] is True


def test_existing_files_refused_without_force_and_nothing_written(files, tmp_path):
    out = tmp_path / "cfg"
    out.mkdir()
    (out / "minemap.toml").write_text("# mine\n")
    result = cli("init", files / "region.gpkg", "--name", "x", "--records", files / "records.csv", "--out", out)
    assert result.exit_code == 2
    assert f"{out / 'minemap.toml'}: exists: give --force to replace it" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["minemap.toml"]  # grid.toml not written either
    assert (out / "minemap.toml").read_text() == "# mine\n"
    forced = cli("init", files / "region.gpkg", "--name", "x", "--records", files / "records.csv", "--out", out,
                 "--force")
    assert forced.exit_code == 0 and "[inputs.L]" in (out / "minemap.toml").read_text()


def test_bad_inputs_refused_before_anything_is_written(files, tmp_path):
    out = tmp_path / "cfg"
    write_gpkg(files / "soil2.gpkg", [{"code": "a", "remark": "x", "geometry": box(X0, Y1 - 100, X0 + 100, Y1)},
                                      {"code": "b", "remark": "y", "geometry": box(X0, Y1 - 200, X0 + 100, Y1 - 100)}])
    (files / "bad.csv").write_text("x,y,count\n1,2,3\n")  # x/y without a crs
    result = cli("init", files / "region.gpkg", "--name", "x", "--records", files / "bad.csv",
                 "--soil", files / "mines.gpkg", "--drones", f"{files}/nowhere/*.tif", "--out", out)
    assert result.exit_code == 2
    assert "bad.csv: its coordinates (x, y) have no CRS" in result.output
    assert "mines.gpkg: has Point geometries; a soil map needs Polygon/MultiPolygon" in result.output
    assert "nowhere/*.tif: no file matches --drones" in result.output
    assert not out.exists()
    asked = cli("init", files / "region.gpkg", "--name", "x", "--records", files / "records.csv",
                "--soil", files / "soil2.gpkg", "--out", out)
    assert asked.exit_code == 2 and "soil2.gpkg: which field holds the soil class? give --soil-field (fields: " \
                                   "code, remark)" in asked.output
    none = cli("init", files / "region.gpkg", "--name", "x", "--out", out)
    assert none.exit_code == 2 and "a map needs evidence: give --records" in none.output
    assert not out.exists()


def test_utm_csv_records_with_their_crs(files, tmp_path):
    (files / "utm.csv").write_text(f"Easting,Northing,mines\n{X0 + 5050},{Y1 - 5050},7\n")
    out = tmp_path / "cfg"
    result = cli("init", files / "region.gpkg", "--name", "x", "--records", files / "utm.csv",
                 "--records-crs", "EPSG:32638", "--out", out)
    assert result.exit_code == 0, result.output
    spec = load_config(out / "minemap.toml").spec.inputs["L"]
    assert (spec.crs, spec.count_field) == ("EPSG:32638", "mines")
    assert cli("validate", out / "minemap.toml").exit_code == 0


def test_districts_named_by_a_field_naming_each_once(files, tmp_path):
    halves = [box(X0, Y1 - 10000, X0 + 5000, Y1), box(X0 + 5000, Y1 - 10000, X0 + 10000, Y1)]
    write_gpkg(files / "twice.gpkg", [{"name": "Shusha", "code": "S-1", "geometry": halves[0]},
                                      {"name": "Shusha", "code": "S-2", "geometry": halves[1]}])
    result = cli("init", files / "twice.gpkg", "--name", "x", "--records", files / "records.csv", "--out",
                 tmp_path / "a")
    assert result.exit_code == 0 and "districts named by 'code' ('name' repeats 'Shusha')" in result.output
    assert load_config(tmp_path / "a" / "minemap.toml").spec.districts.name_field == "code"
    write_gpkg(files / "none.gpkg", [{"name": "Shusha", "geometry": halves[0]},
                                     {"name": "Shusha", "geometry": halves[1]}])
    result = cli("init", files / "none.gpkg", "--name", "x", "--records", files / "records.csv", "--out",
                 tmp_path / "b")
    assert result.exit_code == 0 and "no field names each feature once: [districts] left out" in result.output
    assert load_config(tmp_path / "b" / "minemap.toml").spec.districts is None
    assert cli("validate", tmp_path / "b" / "minemap.toml").exit_code == 0


@pytest.mark.parametrize("cell, chunk, shape", [(100, 512, "100 × 100"), (20, 2048, "500 × 500")])
def test_chunks_as_the_grids_folder_has_them(files, tmp_path, cell, chunk, shape):
    """512 cells at 100 m (grids/karabakh-100m.toml), 2048 at 10 m (karabakh-10m.toml): below 50 m, 2048."""
    result = cli("init", files / "region.gpkg", "--name", "x", "--cell", cell, "--records", files / "records.csv",
                 "--out", tmp_path)
    assert result.exit_code == 0 and f"{shape} cells of {cell} m" in result.output
    text = (tmp_path / "grid.toml").read_text()
    assert f"\nchunk = {chunk} " in text and f"\nresolution = {cell}\n" in text and "\norigin = [0, 0]\n" in text
