"""Run history and change (#13 item 5): STAC items in history/ linked from catalog.json, the last
N kept, change_since_previous.tif = new − previous P_c, zones that appeared, grew or vanished.

Hand-checked on the tiny world (tests/world.py): P_c is the mean of the known H_m, S_t, V_i.
Cell (22, 2) is sand (S_t 0.8), no mines (H_m 0), no drone: P_c 0.4; with a drone V_i = 1: 0.6.
Cell (50, 50) holds 100 mines (H_m 1) on rock (S_t 0.2): 0.6; with a drone V_i = 0: 0.4.
Cell (12, 5) is sand: 0.4; with a drone V_i = 0.6: 0.4667. Cell (5, 5) is under drone a.tif
(0.6) in both runs: 0.4667, no change. High risk (priority zones) starts at 0.45.
"""

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pystac
import pytest
import rasterio
from pystac import STACObjectType
from pystac.validation import JsonSchemaSTACValidator

import pipeline
from pipeline.change import write_change
from world import CRS, X0, Y1, make_world, write_raster

OLD = 1577836800  # 2020-01-01: the vectors' and tables' modification time, older than every drone


def drone(root: Path, name: str, row: int, col: int, rows: int, cols: int, value: float, when: str) -> None:
    """A 20 m drone raster over cells rows row..row+rows−1, cols col..col+cols−1, acquired `when`."""
    write_raster(root / "drone" / name, np.full((rows * 5, cols * 5), value, np.float32), X0 + 100 * col,
                 Y1 - 100 * row, 20.0, CRS, nodata=-1.0, tags={"TIFFTAG_DATETIME": when})


@pytest.fixture
def world(tmp_path: Path) -> Path:
    config = make_world(tmp_path / "w")
    for p in config.parent.iterdir():
        if p.is_file():
            os.utime(p, (OLD, OLD))
    return config


def validate_core(path: Path, kind: STACObjectType) -> dict:
    raw = json.loads(path.read_text())
    JsonSchemaSTACValidator().validate_core(raw, kind, raw["stac_version"], None)  # raises if invalid
    return raw


def test_two_runs_keep_history_and_map_the_change(world: Path):
    out = world.parent / "out"
    drone(world.parent, "e.tif", 80, 20, 1, 1, 1.0, "2024:04:01 08:00:00")  # a one-cell zone on sand: 0.6
    os.utime(world.parent / "drone" / "e.tif", (OLD, OLD))
    first = pipeline.run(world, out, workers=1)
    assert not (out / "change_since_previous.tif").exists()  # the first run has nothing to compare
    assert first.record["changes"] == {"note": "first run in this folder: nothing to compare"}
    drone(world.parent, "b.tif", 20, 0, 5, 5, 1.0, "2025:03:01 08:00:00")  # a zone appears
    drone(world.parent, "c.tif", 10, 0, 5, 10, 0.6, "2025:02:01 08:00:00")  # the NW zone grows south
    # P_c of the mines' cell falls to 0.4, but its record keeps it "high": its zone stays (issue #20)
    drone(world.parent, "d.tif", 50, 50, 1, 1, 0.0, "2025:01:01 08:00:00")
    drone(world.parent, "f.tif", 80, 20, 1, 1, 0.0, "2025:01:15 08:00:00")  # the record-free zone vanishes
    second = pipeline.update(world, out, workers=1)
    assert second.status == "updated"

    with rasterio.open(out / "change_since_previous.tif") as ds:
        delta = ds.read(1)
        assert ds.dtypes[0] == "float32" and ds.nodata == -9999.0
        assert ds.tags()["MINEMAP_COMPARED"] == "contamination_probability"
    assert delta[22, 2] == pytest.approx(0.2, abs=1e-6)
    assert delta[50, 50] == pytest.approx(-0.2, abs=1e-6)
    assert delta[12, 5] == pytest.approx(0.4667 - 0.4, abs=1e-4)
    assert delta[5, 5] == 0.0 and delta[90, 90] == 0.0
    assert (out / "change_since_previous.qml").read_text().count("#a6611a") == 1  # the diverging ramp's end

    zones = second.record["changes"]["zones"]
    assert [(z["area_km2"], z["centre"]) for z in zones["appeared"]] == [(0.25, [500250.0, 4407750.0])]
    assert [(z["area_km2"], z["centre"]) for z in zones["vanished"]] == [(0.01, [502050.0, 4401950.0])]
    assert delta[80, 20] == pytest.approx(0.8 / 3 - 0.6, abs=1e-6)
    assert [(z["previous_area_km2"], z["area_km2"]) for z in zones["grew"]] == [(1.0, 1.5)]
    assert zones["shrank"] == []
    with zipfile.ZipFile(out / "minemap.qgz") as z:  # a layer of the QGIS project, styled as its .qml
        project = z.read(next(n for n in z.namelist() if n.endswith(".qgs"))).decode()
    assert "./change_since_previous.tif" in project and "#a6611a" in project
    report = (out / "report.html").read_text()
    assert "Changes since the previous run" in report and "change_since_previous.png" in report
    assert "vanished: 0.01 km²" in report
    if shutil.which("pdftotext"):  # the PDF pack's page (poppler-utils)
        pdf = subprocess.run(["pdftotext", str(out / "briefing.pdf"), "-"], capture_output=True, text=True).stdout
        assert "Changes since the previous run" in pdf and "appeared: 0.25 km²" in pdf

    catalog = validate_core(out / "catalog.json", STACObjectType.CATALOG)
    items = [link["href"] for link in catalog["links"] if link["rel"] == "item"]
    assert len(items) == 2 and all(h.startswith("./history/") for h in items)
    for href in items:
        validate_core(out / href, STACObjectType.ITEM)
    linked = list(pystac.Catalog.from_file(str(out / "catalog.json")).get_items())
    # datetime: the newest input acquisition (the drones' tags; every other file is older)
    assert [i.datetime.isoformat() for i in linked] == ["2024-05-01T10:00:00+00:00", "2025-03-01T08:00:00+00:00"]
    assert [i.properties["minemap:run_utc"] for i in linked] == [first.record["created_utc"],
                                                                second.record["created_utc"]]
    assert linked[1].properties["minemap:newest_input"].endswith("b.tif")
    raw = json.loads((out / items[0]).read_text())  # asset links relative, up from history/ to OUT's files
    assert all(a["href"].startswith("../") and (out / a["href"][3:]).is_file() for a in raw["assets"].values())
    current = pystac.Item.from_file(str(out / "item.json"))
    assert current.datetime == linked[1].datetime and current.id == linked[1].id

    # keep_history = 2: a third run keeps the last two items, the oldest file and its link are gone
    world.write_text(world.read_text() + "\n[output]\nkeep_history = 2\n")
    third = pipeline.run(world, out, workers=1)
    kept = sorted(p.name for p in (out / "history").iterdir())
    assert len(kept) == 2 and items[0].removeprefix("./history/") not in kept
    catalog = json.loads((out / "catalog.json").read_text())
    assert [link["href"] for link in catalog["links"] if link["rel"] == "item"] == [items[1]] + \
        [f"./history/{kept[-1]}"]
    assert third.record["changes"]["zones"]["appeared"] == [] and third.record["changes"]["zones"]["vanished"] == []


def test_change_is_nodata_where_either_run_is(tmp_path: Path):
    new = write_raster(tmp_path / "new.tif", np.array([[0.5, -9999.0], [0.25, 1.0]], np.float32), X0, Y1, 100.0,
                       CRS, nodata=-9999.0)
    old = write_raster(tmp_path / "old.tif", np.array([[0.25, 0.5], [-9999.0, 1.0]], np.float32), X0, Y1, 100.0,
                       CRS, nodata=-9999.0)
    assert write_change(new, old, tmp_path / "d.tif") == ""
    with rasterio.open(tmp_path / "d.tif") as ds:
        assert ds.read(1).tolist() == [[0.25, -9999.0], [-9999.0, 0.0]]
    other = write_raster(tmp_path / "other.tif", np.zeros((2, 2), np.float32), X0 + 100, Y1, 100.0, CRS,
                         nodata=-9999.0)
    assert "another grid" in write_change(new, other, tmp_path / "e.tif")
    assert not (tmp_path / "e.tif").exists()


def test_change_of_chunks_left_alone_is_read_from_no_file(tmp_path: Path):
    """An update names the chunks it left alone and their valid cells: ΔP there is 0 (valid) or
    nodata without reading either file, cell for cell and level for level what a full comparison
    writes. Chunks of 512: (0, 0) wholly valid, (0, 1) half nodata, (1, 0) all nodata, (1, 1) redone."""
    rng = np.random.default_rng(3)
    new = rng.random((1024, 1024)).astype(np.float32)
    new[:256, 512:] = -9999.0
    new[512:, :512] = -9999.0
    old = new.copy()
    old[512:, 512:] += 0.25  # the redone chunk: ΔP −0.25
    a = write_raster(tmp_path / "new.tif", new, X0, Y1, 10.0, CRS, nodata=-9999.0)
    b = write_raster(tmp_path / "old.tif", old, X0, Y1, 10.0, CRS, nodata=-9999.0)
    assert write_change(a, b, tmp_path / "full.tif", chunk=512) == ""
    with rasterio.open(b, "r+") as ds:  # what the update says is the same is never read from `old`
        ds.write(np.full((1, 512, 1024), 0.5, np.float32), window=((0, 512), (0, 1024)))
    same = {(0, 0): 512 * 512, (0, 1): 256 * 512, (1, 0): 0}
    assert write_change(a, b, tmp_path / "update.tif", chunk=512, same=same) == ""
    for level in (None, 0):  # full resolution, then the one overview level (1024 → 512)
        kw = {} if level is None else {"overview_level": level}
        with rasterio.open(tmp_path / "full.tif", **kw) as f, rasterio.open(tmp_path / "update.tif", **kw) as u:
            assert np.array_equal(f.read(1), u.read(1))
    with rasterio.open(tmp_path / "update.tif") as ds:
        d = ds.read(1)
        assert ds.overviews(1) == [2]
    assert d[0, 0] == 0.0 and d[300, 600] == 0.0 and d[100, 600] == -9999.0 and d[600, 100] == -9999.0
    assert d[600, 600] == pytest.approx(-0.25)
    assert (d == 0.0).sum() == 512 * 512 + 256 * 512


def test_a_release_layer_is_dated_by_its_date_field(tmp_path: Path):
    from shapely.geometry import box

    from pipeline.history import newest_date
    from world import write_gpkg

    path = write_gpkg(tmp_path / "release.gpkg", [
        {"status": "cleared", "released_on": d, "geometry": box(X0, Y1 - 100, X0 + 100, Y1)}
        for d in ("2024-03-02", "2025-06-30T12:00:00", "", None)])
    assert newest_date(path, None, "released_on") == 1751284800.0  # 2025-06-30 12:00 UTC
    none = write_gpkg(tmp_path / "none.gpkg", [{"status": "x", "released_on": "", "geometry": box(0, 0, 1, 1)}])
    assert newest_date(none, None, "released_on") is None  # then the file's modification time


def test_an_edited_previous_product_is_not_compared(world: Path):
    out = world.parent / "out"
    pipeline.run(world, out, workers=1)
    with rasterio.open(out / "contamination_probability.tif", "r+", IGNORE_COG_LAYOUT_BREAK="YES") as ds:  # edited
        ds.write(np.full((1, 1), 0.9, np.float32), 1, window=((0, 1), (0, 1)))
    second = pipeline.run(world, out, workers=1)
    assert "not the file the last run wrote" in second.record["changes"]["note"]
    assert not (out / "change_since_previous.tif").exists()
    assert len(list((out / "history").iterdir())) == 2  # the history is kept all the same


def test_a_hand_edited_catalog_links_nothing_outside_history(tmp_path: Path):
    from pipeline.history import kept_items, prune_history

    (tmp_path / "history").mkdir()
    for name in ("a.json", "b.json"):
        (tmp_path / "history" / name).write_text("{}")
    (tmp_path / "run.json").write_text("{}")
    (tmp_path / "catalog.json").write_text(json.dumps({"links": [
        {"rel": "item", "href": "./history/../run.json"}, {"rel": "item", "href": "./history/b.json"},
        {"rel": "item", "href": "/etc/passwd"}, {"rel": "item", "href": "./history/gone.json"}]}))
    assert kept_items(tmp_path) == ["history/b.json"]
    assert prune_history(tmp_path) == ["history/a.json"]  # not linked: removed; run.json untouched
    assert (tmp_path / "run.json").exists() and (tmp_path / "history" / "b.json").exists()


def test_zones_compared_when_either_run_has_none(tmp_path: Path):
    from shapely.geometry import box

    from pipeline.change import zone_changes
    from world import cell_box, write_gpkg

    def zones(path, boxes):
        return write_gpkg(path, [{"rank": k + 1, "area_km2": b.area / 1e6, "district": "", "geometry": b}
                                 for k, b in enumerate(boxes)]) if boxes else \
            gpd.GeoDataFrame({"rank": [], "area_km2": [], "district": []},
                             geometry=gpd.GeoSeries([], crs=CRS)).to_file(path) or path

    none, one = zones(tmp_path / "none.gpkg", []), zones(tmp_path / "one.gpkg", [cell_box(5, 5)])
    assert [z["area_km2"] for z in zone_changes(none, one, 0.01)["appeared"]] == [0.01]
    assert [z["centre"] for z in zone_changes(one, none, 0.01)["vanished"]] == [[500550.0, 4409450.0]]
    # a zone only touching the old one along an edge did not grow from it: it appeared, the old one vanished
    beside = zones(tmp_path / "beside.gpkg", [box(X0 + 600, Y1 - 600, X0 + 900, Y1 - 500)])
    changed = zone_changes(one, beside, 0.01)
    assert len(changed["appeared"]) == 1 and len(changed["vanished"]) == 1 and changed["grew"] == []
    # found on the cells of the world's chunks (as runs do): the same answers
    from odc.geo.geobox import GeoBox

    halves = [GeoBox.from_bbox((X0, y0, X0 + 10_000, y0 + 5_000), CRS, resolution=100)
              for y0 in (Y1 - 5_000, Y1 - 10_000)]
    assert zone_changes(one, beside, 0.01, halves) == changed
    assert zone_changes(none, one, 0.01, halves) == zone_changes(none, one, 0.01)
    grown = zones(tmp_path / "grown.gpkg", [box(X0 + 500, Y1 - 800, X0 + 600, Y1 - 500), cell_box(80, 80)])
    assert zone_changes(one, grown, 0.01, halves) == zone_changes(one, grown, 0.01)
    assert [z["previous_area_km2"] for z in zone_changes(one, grown, 0.01, halves)["grew"]] == [0.01]
