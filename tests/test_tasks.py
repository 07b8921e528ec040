"""Field tasks (pipeline/tasks.py, writers/tasks.py): zones cut along the 1 km tasking grid, with
hand-checked IDs, outlines and hazard IDs; the files read back by GDAL and by gpxpy; the sample's
tasks tile its zones; IDs survive an update that does not touch them."""

from __future__ import annotations

import json
import math
from pathlib import Path

import geopandas as gpd
import gpxpy
import mgrs
import numpy as np
import pyogrio
import pytest
import shapely
from odc.geo.geom import Geometry
from pyproj import Transformer
from shapely.geometry import Point, box

from pipeline.grid import make_grid
from pipeline.partsfile import decode_parts, encode_parts
from pipeline.runner import run, update
from pipeline.summaries import chunk_part, merge_zones
from pipeline.tasks import Tasking, merge_tasks, top_tasks
from pipeline.tiles import chunk_key

from conftest import engine_only
from world import CRS, X0, X1, Y0, Y1, cell_box, make_world, write_gpkg

NAMES = ["low", "medium", "high", "very high"]  # zones: class 3 ("high") and above
KM = Tasking(side=1000.0, left=X0, top=Y1, cell=10.0, max_km2=1.0)  # the world at 10 m: 100 × 100 cells a square


def _parts(grid, classes: np.ndarray, p_c: np.ndarray, tasking: Tasking) -> dict:
    parts = {}
    for idx in grid.tile_ids():
        win = grid.tile_window(idx)
        part = chunk_part(np.zeros(classes[win].shape, np.uint8), classes[win], p_c[win], names=["class", "P_c"],
                          n_districts=0, n_classes=4, zone_class=3, cell_km2=grid.cell_area_km2, chunk=grid.chunk,
                          block_id=idx, tasking=tasking)
        parts[chunk_key(idx)] = part[0, 0]
    return parts


def _world_10m():
    """10 m cells over the 10 km world: 2 × 2 chunks of 512 cells (the chunk border at column and
    row 512), 1 km squares of 100 × 100 cells (square lines at multiples of 100)."""
    grid = make_grid("t", CRS, 10.0, Geometry(box(X0, Y0, X1, Y1), crs=CRS), chunk=512)
    classes = np.ones(grid.shape, np.uint8)
    p_c = np.full(grid.shape, 0.1, np.float32)
    # A: rows 10–19, columns 495–524: across the square line x = X0 + 5000 (column 500) and the chunk
    # border x = X0 + 5120 (column 512); P_c 0.5, very high east of column 510
    classes[10:20, 495:525] = 3
    p_c[10:20, 495:525] = 0.5
    classes[10:20, 510:525], p_c[10:20, 510:525] = 4, 0.8
    classes[10, 495], p_c[10, 495] = 4, 0.8  # one very high cell in the west part: high by most of its area
    # B: a U across the square line y = Y1 − 2000 (row 200): two bars north of it (columns 205 and
    # 207, rows 190–199), joined south of it (rows 200–205, and row 205 from column 205 to 207)
    classes[190:206, 205] = classes[190:206, 207] = classes[205, 205:208] = 3
    classes[700, 700] = 3  # C: one cell, a zone below the first test's min_area_km2 (2 cells)
    p_c[(classes == 3) & (p_c == np.float32(0.1))] = 0.5
    return grid, classes, p_c


def test_a_zone_is_cut_along_the_square_lines_and_joined_across_chunk_borders():
    grid, classes, p_c = _world_10m()
    parts = _parts(grid, classes, p_c, KM)
    zones = merge_zones(parts, grid, None, NAMES, 2e-4)
    tasks = merge_tasks(parts, grid, KM, zones, NAMES, None, False).set_index("task_id")
    assert len(zones) == 2  # C is left out, and so is its task
    # A: 50 cells west of x = X0 + 5000 in square (504, 4409) km, 250 east of it in (505, 4409): one
    # polygon across the chunk border at x = X0 + 5120
    west, east = tasks.loc["38SNK0409-1"], tasks.loc["38SNK0509-1"]
    assert west.geometry.equals(box(X0 + 4950, Y1 - 200, X0 + 5000, Y1 - 100))
    assert east.geometry.equals(box(X0 + 5000, Y1 - 200, X0 + 5250, Y1 - 100))
    assert west["area_km2"] == pytest.approx(0.005) and east["area_km2"] == pytest.approx(0.025)
    assert len(getattr(east.geometry, "geoms", [east.geometry])) == 1
    # east: 100 cells high (P 0.5), 150 very high (P 0.8): very high by most of its area
    assert east["risk_class"] == "very high" and east["km2_high"] == pytest.approx(0.01)
    assert east["km2_very_high"] == pytest.approx(0.015)
    assert east["mean_pc"] == pytest.approx((100 * 0.5 + 150 * 0.8) / 250)
    assert west["risk_class"] == "high" and west["km2_very_high"] == pytest.approx(1e-4)
    assert west["mean_pc"] == pytest.approx((49 * 0.5 + 0.8) / 50)
    assert west["zone"] == east["zone"] == 1  # very high: ranked first
    # B: the U's two bars north of y = Y1 − 2000 are two tasks in square (502, 4408), numbered from
    # the west; its bottom, south of the line, one task in (502, 4407)
    assert tasks.loc["38SNK0208-1"].geometry.equals(box(X0 + 2050, Y1 - 2000, X0 + 2060, Y1 - 1900))
    assert tasks.loc["38SNK0208-2"].geometry.equals(box(X0 + 2070, Y1 - 2000, X0 + 2080, Y1 - 1900))
    bottom = tasks.loc["38SNK0207-1"]
    assert bottom["area_km2"] == pytest.approx(13 * 1e-4) and bottom.geometry.bounds == (X0 + 2050, Y1 - 2060,
                                                                                        X0 + 2080, Y1 - 2000)
    # the U's centroid lies in its gap (column 206, north of row 205): its point is one inside it
    assert not bottom.geometry.contains(bottom.geometry.centroid) and bottom["point"] == "inside point"
    assert bottom.geometry.contains(Point(bottom["x"], bottom["y"]))
    assert tasks.loc["38SNK0208-1", "point"] == "centroid"
    assert tasks.loc["38SNK0208-1", ["x", "y"]].tolist() == [X0 + 2055, Y1 - 1950]
    assert set(tasks.index) == {"38SNK0409-1", "38SNK0509-1", "38SNK0208-1", "38SNK0208-2", "38SNK0207-1"}
    assert (tasks.loc[["38SNK0208-1", "38SNK0208-2", "38SNK0207-1"], "zone"] == 2).all()
    # the tasks tile the zones exactly
    assert shapely.union_all(tasks.geometry.values).equals(shapely.union_all(zones.geometry.values))
    assert tasks["area_km2"].sum() == pytest.approx(zones["area_km2"].sum())
    # the parts as an update reads them back from OUT/.minemap give the same tasks
    again = merge_tasks(decode_parts(encode_parts(parts)), grid, KM, zones, NAMES, None, False).set_index("task_id")
    assert again.drop(columns="geometry").equals(tasks.drop(columns="geometry"))
    assert again.geometry.geom_equals(tasks.geometry).all()
    top = top_tasks(tasks.reset_index(), NAMES, 2)
    assert list(top["task_id"]) == ["38SNK0509-1", "38SNK0409-1"]  # very high first, then the highest P


def test_a_chunk_border_on_a_square_line_joins_nothing_across_it():
    """160 m squares (16 cells): x = X0 + 5120 (column 512, the chunk border) is a square line too
    (505 120 = 3 157 × 160), so zone A is cut there, and at columns 496 and 528, not joined."""
    grid, classes, p_c = _world_10m()
    tasking = Tasking(side=160.0, left=X0, top=Y1, cell=10.0, max_km2=0.0256)
    parts = _parts(grid, classes, p_c, tasking)
    zones = merge_zones(parts, grid, None, NAMES, 0.0)
    tasks = merge_tasks(parts, grid, tasking, zones, NAMES, None, False)
    a = tasks[tasks["zone"] == 1].sort_values("xmin")
    assert [g.bounds for g in a.geometry] == [(X0 + 4950, Y1 - 200, X0 + 4960, Y1 - 100),
                                              (X0 + 4960, Y1 - 200, X0 + 5120, Y1 - 100),
                                              (X0 + 5120, Y1 - 200, X0 + 5250, Y1 - 100)]
    assert tasking.reference_m == 10 and (tasks["area_km2"] <= 0.0256 + 1e-12).all()


def test_squares_hold_whole_cells_and_never_more_than_max_km2():
    """30 m cells do not divide 1 km: the square is 33 cells (990 m), so no task exceeds 1 km²,
    and its ID is the 10 m reference of its south-west corner (the largest power of ten dividing 990)."""
    from pipeline.tasks import tasking_for

    class Cfg:
        class spec:
            class tasks:
                enabled, max_km2 = True, 1.0
    grid = make_grid("t", CRS, 30.0, Geometry(box(X0, Y0, X1, Y1), crs=CRS), chunk=512)
    tasking = tasking_for(Cfg, grid)
    assert tasking.side == 990.0 and tasking.reference_m == 10
    classes = np.full(grid.shape, 3, np.uint8)  # everything high: one zone of the whole grid
    parts = _parts(grid, classes, np.full(grid.shape, 0.5, np.float32), tasking)
    zones = merge_zones(parts, grid, None, NAMES, 0.0)
    tasks = merge_tasks(parts, grid, tasking, zones, NAMES, None, False)
    assert tasks["area_km2"].max() == pytest.approx(33 * 33 * 900 / 1e6) and tasks["area_km2"].max() <= 1.0
    assert shapely.union_all(tasks.geometry.values).equals(shapely.union_all(zones.geometry.values))
    assert tasks["task_id"].is_unique


@pytest.fixture
def world_with_hazards(tmp_path: Path) -> Path:
    """The tiny world (100 m cells) with two hazards: CHA-7 over cells rows 30–31, columns 68–72
    (across the square line x = X0 + 7000), CHA-8 on cell (90, 60); and CHA-9 beside CHA-8, sharing
    only its east edge (not overlapping: its own cell is high, but in another square's task)."""
    config = make_world(tmp_path / "w")
    write_gpkg(config.parent / "hazards.gpkg", [
        {"hazard_id": "CHA-7", "geometry": box(X0 + 6800, Y1 - 3200, X0 + 7300, Y1 - 3000)},
        {"hazard_id": "CHA-8", "geometry": cell_box(90, 60)},
        {"hazard_id": "CHA-9", "geometry": cell_box(90, 59)},
    ])
    config.write_text(config.read_text() + '\n[hazards]\npath = "hazards.gpkg"\nid_field = "hazard_id"\n')
    return engine_only(config)


def test_hazard_ids_land_on_the_tasks_they_overlap(world_with_hazards, tmp_path):
    out = tmp_path / "out"
    record = run(world_with_hazards, out)
    tasks = gpd.read_file(out / "tasks.gpkg", layer="tasks").set_index("task_id")
    # CHA-7's 10 cells: 4 west of x = X0 + 7000 (square 506 E), 6 east (507 E), both in 4406 N
    assert tasks.loc["38SNK0606-1", "hazard_ids"] == "CHA-7"
    assert tasks.loc["38SNK0606-1", "area_km2"] == pytest.approx(0.04)
    assert tasks.loc["38SNK0706-1", "hazard_ids"] == "CHA-7"
    assert tasks.loc["38SNK0706-1", "area_km2"] == pytest.approx(0.06)
    # cells (90, 59) and (90, 60) are one zone, but column 60 starts square 506 E: two tasks, one hazard each
    # (CHA-8 and CHA-9 share an edge, the square line: neither overlaps the other's task)
    assert tasks.loc["38SNK0600-1", "hazard_ids"] == "CHA-8" and tasks.loc["38SNK0500-1", "hazard_ids"] == "CHA-9"
    assert tasks.loc["38SNK0600-1", "zone"] == tasks.loc["38SNK0500-1", "zone"]
    # the records' cell (50, 50): no hazard there
    assert tasks.loc["38SNK0504-1", "hazard_ids"] == "" and tasks.loc["38SNK0504-1", "direct_evidence"] == 1
    # the drone's north-west square (P_c (0 + 0.8 + 0.6) / 3, three layers, "high"): one whole square, one task
    nw = tasks.loc["38SNK0009-1"]
    assert nw.geometry.equals(box(X0, Y1 - 1000, X0 + 1000, Y1)) and nw["area_km2"] == pytest.approx(1.0)
    assert nw["risk_class"] == "high" and nw["mean_pc"] == pytest.approx(1.4 / 3) and nw["min_evidence"] == 3
    assert nw["hazard_ids"] == "" and nw["direct_evidence"] == 0
    assert (tasks.drop(index="38SNK0009-1")["direct_evidence"] == 1).all()
    assert record["tasking"] == {"max_km2": 1.0, "square_m": 1000.0, "square_km2": 1.0,
                                 "aligned_to": "grid CRS origin (0, 0)", "id_reference_m": 1000, "tasks": 6,
                                 "squares": 6, "zones_tasked": 4, "zones": 4, "largest_task_km2": 1.0}
    assert {f"tasks.{e}" for e in ("gpkg", "csv", "geojson", "kml", "gpx")} <= set(record["files"])
    item = json.loads((out / "item.json").read_text())
    gpx = item["assets"]["tasks_gpx"]
    assert gpx["type"] == "application/gpx+xml" and gpx["href"] == "./tasks.gpx"


def test_kml_and_gpx_points_are_the_geopackages_by_gdal_and_by_gpxpy(world_with_hazards, tmp_path):
    out = tmp_path / "out"
    run(world_with_hazards, out)
    tasks = gpd.read_file(out / "tasks.gpkg", layer="tasks").set_index("task_id")
    lonlat = tasks[["lon", "lat"]]
    # GDAL (pyogrio): the KML placemarks and the GPX waypoints, named by task ID
    for path, layer in ((out / "tasks.kml", "tasks"), (out / "tasks.gpx", "waypoints")):
        got = pyogrio.read_dataframe(path, layer=layer)
        got = got.set_index("name" if "name" in got else "Name")  # GDAL's LIBKML driver reads KML as "Name"
        assert sorted(got.index) == sorted(tasks.index), path.name
        assert np.abs(got.geometry.x - lonlat["lon"].reindex(got.index)).max() < 1e-6
        assert np.abs(got.geometry.y - lonlat["lat"].reindex(got.index)).max() < 1e-6
    # gpxpy: an independent GPX parser, as a GPS unit's import reads the file
    gpx = gpxpy.parse((out / "tasks.gpx").read_text())
    assert sorted(w.name for w in gpx.waypoints) == sorted(tasks.index)
    for w in gpx.waypoints:
        assert abs(w.longitude - lonlat.loc[w.name, "lon"]) < 1e-6
        assert abs(w.latitude - lonlat.loc[w.name, "lat"]) < 1e-6
        assert tasks.loc[w.name, "mgrs"] in w.description and "high" in w.description
    # the point is in the task, and its lon/lat is its x/y
    x, y = Transformer.from_crs("EPSG:4326", CRS, always_xy=True).transform(lonlat["lon"], lonlat["lat"])
    assert np.allclose(x, tasks["x"], atol=1e-3) and np.allclose(y, tasks["y"], atol=1e-3)
    assert shapely.contains(tasks.geometry.values, shapely.points(tasks["x"], tasks["y"])).all()
    # the record's cell (50, 50): its task's point is the cell's centre, 10 m MGRS 38SNK 0505 0495
    assert tasks.loc["38SNK0504-1", ["x", "y"]].tolist() == [X0 + 5050, Y1 - 5050]
    assert tasks.loc["38SNK0504-1", "mgrs"] == "38SNK05050495"
    # GeoJSON: RFC 7946 lon/lat, the same IDs; CSV: the same rows without geometry
    geojson = json.loads((out / "tasks.geojson").read_text())
    assert "crs" not in geojson
    assert sorted(f["properties"]["task_id"] for f in geojson["features"]) == sorted(tasks.index)
    bounds = gpd.read_file(out / "tasks.geojson").total_bounds
    assert bounds == pytest.approx(tasks.geometry.to_crs("EPSG:4326").total_bounds, abs=1e-6)
    csv = pyogrio.read_dataframe(out / "tasks.csv")
    assert list(csv["task_id"]) == list(tasks.index) and list(csv.columns[:4]) == ["task_id", "zone", "risk_class",
                                                                                    "area_km2"]


def test_sample_tasks_tile_the_zones_within_max_km2_and_mgrs_round_trips(sample_out):
    tasks = gpd.read_file(sample_out / "tasks.gpkg", layer="tasks")
    zones = gpd.read_file(sample_out / "priority_zones.gpkg")
    record = json.loads((sample_out / "run.json").read_text())
    assert record["tasking"]["max_km2"] == 1.0 and record["tasking"]["square_m"] == 1000.0
    assert len(tasks) == record["tasking"]["tasks"] > len(zones) and tasks["task_id"].is_unique
    assert (tasks["area_km2"] <= 1.0 + 1e-9).all() and (tasks.geometry.area <= 1e6 + 1e-3).all()
    assert shapely.union_all(tasks.geometry.values).equals(shapely.union_all(zones.geometry.values))
    assert tasks["area_km2"].sum() == pytest.approx(zones["area_km2"].sum(), rel=1e-9)
    assert set(tasks["zone"]) == set(zones["rank"])
    # each zone's tasks add up to it, per class too
    by_zone = tasks.groupby("zone")[["area_km2", "km2_high", "km2_very_high"]].sum()
    z = zones.set_index("rank")
    assert np.allclose(by_zone.loc[z.index], z[["area_km2", "km2_high", "km2_very_high"]])
    # the grid is UTM 38N with 1 km squares: an ID is its square's MGRS 1 km reference, whose digits
    # are the square's kilometres east and north (modulo 100)
    square = tasks["task_id"].str.rsplit("-", n=1).str[0]
    assert (square.str[:3] == "38T").sum() + (square.str[:3] == "38S").sum() == len(tasks)
    digits = (np.floor(tasks["xmin"] / 1000) % 100).astype(int).map("{:02d}".format) + \
        (np.floor(tasks["ymin"] / 1000) % 100).astype(int).map("{:02d}".format)
    assert (square.str[-4:] == digits).all()
    assert ((tasks["xmax"] - np.floor(tasks["xmin"] / 1000) * 1000) <= 1000).all()  # within its square
    # MGRS references (10 m) come back to within one cell (100 m) of the task's point: within 10 √2 m
    to_grid = Transformer.from_crs("EPSG:4326", "EPSG:32638", always_xy=True)
    m = mgrs.MGRS()
    back = np.array([m.toLatLon(ref) for ref in tasks["mgrs"]])
    x, y = to_grid.transform(back[:, 1], back[:, 0])
    assert np.hypot(x - tasks["x"], y - tasks["y"]).max() <= 10 * math.sqrt(2) + 0.01
    # hand-checked: the record cluster north-east of Aghdam is zone 1, very high: its square at
    # 666–667 km E, 4447–4448 km N is wholly a task, 38TPK 66 47
    first = tasks.set_index("task_id").loc["38TPK6647-1"]
    assert first["zone"] == 1 and first["district"] == "Aghdam" and first["area_km2"] == pytest.approx(1.0)
    assert first[["xmin", "ymin", "xmax", "ymax"]].tolist() == [666000, 4447000, 667000, 4448000]
    assert first["mgrs"] == "38TPK66504750"
    item = json.loads((sample_out / "item.json").read_text())
    assert {"tasks_gpkg", "tasks_csv", "tasks_geojson", "tasks_kml", "tasks_gpx"} <= set(item["assets"])


def test_task_ids_are_unchanged_by_an_update_that_does_not_touch_them(engine_sample, tmp_path):
    """A drone tile over 2 × 2 km near Khojavend (value 0.9) is added: the tasks of every square it
    does not reach keep their IDs and outlines; the updated tasks are a fresh run's."""
    from test_update import drone_near

    out, fresh = tmp_path / "out", tmp_path / "fresh"
    run(engine_sample, out, workers=2)
    before = gpd.read_file(out / "tasks.gpkg", layer="tasks")
    tile = drone_near(engine_sample, "2026-01-01_khojavend.tif", 46.95, 39.70, 0.9)
    s = update(engine_sample, out, workers=2)
    assert s["status"] == "updated" and 1 <= s["chunks_recomputed"] < s["chunks_total"]
    after = gpd.read_file(out / "tasks.gpkg", layer="tasks")
    import rasterio

    with rasterio.open(tile) as ds:
        reach = box(*ds.bounds).buffer(1000)  # the squares the tile's cells can lie in
    far_before = before[~before.intersects(reach)].set_index("task_id")
    far_after = after[~after.intersects(reach)].set_index("task_id")
    assert len(far_before) > 700 and sorted(far_before.index) == sorted(far_after.index)
    assert far_after.geometry.geom_equals(far_before.geometry.reindex(far_after.index)).all()
    assert set(after["task_id"]) != set(before["task_id"])  # the tile made new tasks near it
    run(engine_sample, fresh, workers=2)
    again = gpd.read_file(fresh / "tasks.gpkg", layer="tasks")
    assert after.drop(columns="geometry").equals(again.drop(columns="geometry"))
    assert after.geometry.geom_equals(again.geometry).all()


def test_no_zones_write_empty_task_files_gdal_opens(tmp_path):
    """A run whose zones are none (nothing high) still publishes the five files, with no rows."""
    from pipeline.writers.tasks import TASK_FILES, write_tasks

    grid = make_grid("t", CRS, 100.0, Geometry(box(X0, Y0, X1, Y1), crs=CRS), chunk=512)
    zones = gpd.GeoDataFrame({"rank": []}, geometry=[])
    tasks = merge_tasks({}, grid, KM, zones, NAMES, None, True)
    assert len(tasks) == 0 and "mean_residual" in tasks and "hazard_ids" not in tasks
    write_tasks(tmp_path, tasks, grid.crs)
    for name in TASK_FILES:
        layers = pyogrio.list_layers(tmp_path / name)
        counts = [pyogrio.read_info(tmp_path / name, layer=layer, force_feature_count=True)["features"]
                  for layer, _ in layers]
        assert sum(counts) == 0, name
    assert len(gpxpy.parse((tmp_path / "tasks.gpx").read_text()).waypoints) == 0


def test_a_part_of_a_zone_left_out_keeps_its_number():
    """Square 503 E 4406 N holds a one-cell zone (cell 305, 305: below min_area_km2, left out) north-west
    of a 10 × 10-cell zone: the kept part is -2, whether or not the small zone makes the cut."""
    grid = make_grid("t", CRS, 10.0, Geometry(box(X0, Y0, X1, Y1), crs=CRS), chunk=512)
    classes = np.ones(grid.shape, np.uint8)
    classes[305, 305] = 3
    classes[350:360, 350:360] = 3
    p_c = np.where(classes == 3, 0.5, 0.1).astype(np.float32)
    parts = _parts(grid, classes, p_c, KM)
    for min_area, ids in ((2e-4, ["38SNK0306-2"]), (0.0, ["38SNK0306-2", "38SNK0306-1"])):
        zones = merge_zones(parts, grid, None, NAMES, min_area)
        assert list(merge_tasks(parts, grid, KM, zones, NAMES, None, False)["task_id"]) == ids
