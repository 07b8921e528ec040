"""OUT/evidence.gpkg and --bundle-rasters: OUT alone holds the evidence its QGIS project shows."""

import filecmp
import json
import shutil
import sqlite3
import zipfile
from pathlib import Path

import geopandas as gpd
import pyogrio
import pytest
from shapely.geometry import Point, box

from conftest import REPO
from pipeline.runner import run, update
from test_qgis import open_project, qgis_available
from world import CRS, X0, X1, Y0, Y1, write_gpkg


def sources(out: Path) -> set[str]:
    """The data sources the QGIS project names."""
    text = zipfile.ZipFile(out / "minemap.qgz").read("minemap.qgs").decode()
    return {line.split("<datasource>")[1].split("</datasource>")[0] for line in text.splitlines() if "<datasource>" in line}


@pytest.fixture
def world_evidence(world):
    """The tiny world with a soil polygon reaching 2 km west of the region, and the mine records in
    lon/lat: one inside (100 mines), one filtered out by `where`, one east of the region."""
    root = world.parent
    write_gpkg(root / "soil.gpkg", [{"soil_class": "sand", "geometry": box(X0 - 2000, Y0, X0 + 5000, Y1)},
                                    {"soil_class": "rock", "geometry": box(X0 + 5000, Y0, X1, Y1)}])
    points = [Point(X0 + 5050, Y1 - 5050), Point(X0 + 150, Y0 + 150), Point(X1 + 500, Y0 + 500)]
    gpd.GeoDataFrame({"count": [100, 1, 7]}, geometry=points, crs=CRS).to_crs("EPSG:4326").to_file(root / "mines.gpkg")
    world.write_text(world.read_text().replace('path = "mines.gpkg"\n', 'path = "mines.gpkg"\nwhere = "count > 5"\n'))
    return world


def test_evidence_gpkg_holds_the_vectors_as_read_in_the_grid_crs_clipped_to_the_region(world_evidence, tmp_path):
    out = tmp_path / "out"
    run(world_evidence, out, workers=1)
    gpkg = out / "evidence.gpkg"
    assert sorted(name for name, _ in pyogrio.list_layers(gpkg)) == ["cleared", "mines", "soil"]  # no CSV, no raster
    with sqlite3.connect(gpkg) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 10200  # GeoPackage 1.2, read by QGIS 3.22's GDAL
    mines = gpd.read_file(gpkg, layer="mines")
    assert mines.crs.to_epsg() == 32638
    assert list(mines["count"]) == [100]  # `where` applied, the record east of the region clipped away
    assert mines.geometry[0].distance(Point(X0 + 5050, Y1 - 5050)) < 1e-3  # back from lon/lat onto the grid
    soil = gpd.read_file(gpkg, layer="soil").set_index("soil_class")
    assert soil.geometry["sand"].area == pytest.approx(5000 * 10000)  # the 2 km outside the region cut off
    assert soil.geometry["sand"].bounds == pytest.approx((X0, Y0, X0 + 5000, Y1))
    assert soil.geometry["rock"].area == pytest.approx(5000 * 10000)
    assert len(gpd.read_file(gpkg, layer="cleared")) == 2
    # the project reads the vectors from OUT, the drone raster still from the inputs
    assert {s for s in sources(out) if s.startswith(("./evidence.gpkg", "./evidence/")) or "drone" in s} == {
        "./evidence.gpkg|layername=mines", "./evidence.gpkg|layername=soil", "./evidence.gpkg|layername=cleared",
        "../world/drone/a.tif"}
    assert not (out / "evidence").exists()
    assets = json.loads((out / "item.json").read_text())["assets"]
    assert assets["evidence_gpkg"]["href"] == "./evidence.gpkg" and "data" in assets["evidence_gpkg"]["roles"]


def test_update_rewrites_the_evidence(world_evidence, tmp_path):
    out = tmp_path / "out"
    run(world_evidence, out, workers=1)
    root = world_evidence.parent
    write_gpkg(root / "mines.gpkg", [{"count": 100, "geometry": Point(X0 + 5050, Y1 - 5050)},
                                     {"count": 40, "geometry": Point(X0 + 950, Y1 - 950)}])
    assert update(world_evidence, out, workers=1)["status"] == "updated"
    mines = gpd.read_file(out / "evidence.gpkg", layer="mines")
    assert sorted(mines["count"]) == [40, 100]


def test_bundled_rasters_are_copied_as_they_are(world_evidence, tmp_path):
    out = tmp_path / "out"
    run(world_evidence, out, workers=1, bundle_rasters=True)
    assert filecmp.cmp(out / "evidence" / "a.tif", world_evidence.parent / "drone" / "a.tif", shallow=False)
    assert "./evidence/a.tif" in sources(out) and "../world/drone/a.tif" not in sources(out)
    assets = json.loads((out / "item.json").read_text())["assets"]
    assert assets["evidence-a"]["href"] == "./evidence/a.tif"


def test_bundle_rasters_in_the_config(world_evidence, tmp_path):
    world_evidence.write_text(world_evidence.read_text() + "[output]\nbundle_rasters = true\n")
    run(world_evidence, tmp_path / "out", workers=1)
    assert (tmp_path / "out" / "evidence" / "a.tif").exists()


@pytest.mark.slow
@pytest.mark.qgis
@pytest.mark.skipif(not qgis_available(), reason="QGIS not installed: run `make system-deps`")
def test_out_alone_opens_in_qgis_zipped_and_mailed(sample_out, tmp_path):
    # without --bundle-rasters: every vector layer is there, the drone rasters stay with the inputs
    # (deeper than OUT was: the rasters' relative paths must not reach the inputs by chance)
    mailed = tmp_path / "mail" / "box" / "out"
    shutil.copytree(sample_out, mailed)
    report = open_project(mailed / "minemap.qgz", tmp_path / "mailed.png")
    layers = report["layers"]
    assert {e["name"].split(" ")[0] for e in layers if not e["valid"]} == {  # only the rasters are missing
        p.stem for p in (REPO / "sample_data" / "drone").glob("*.tif")}
    vectors = [e for e in layers if e["group"] == "Evidence" and e["valid"]]
    assert {e["source"].split("layername=")[1] for e in vectors} == {
        "mine_records", "minefields", "cleared_areas", "soil", "release", "survey_extent"}
    assert all(e["source"].startswith(str(mailed / "evidence.gpkg")) for e in vectors)
    assert {e["name"]: e["features"] for e in vectors}["mine_records (L)"] > 100
    # with --bundle-rasters: every layer valid
    run(REPO / "sample_data" / "minemap.toml", tmp_path / "a" / "out", workers=2, bundle_rasters=True)
    shutil.copytree(tmp_path / "a" / "out", tmp_path / "mail" / "box" / "out2")
    shutil.rmtree(tmp_path / "a")
    report = open_project(tmp_path / "mail" / "box" / "out2" / "minemap.qgz", tmp_path / "mailed2.png")
    assert report["layers"] and all(e["valid"] for e in report["layers"]), [e for e in report["layers"] if not e["valid"]]
    assert len([e for e in report["layers"] if e["group"] == "Evidence"]) == 9  # 6 vector layers, 3 drone rasters
