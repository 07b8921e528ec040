"""District summaries and priority zones: hand-checked figures on the tiny world, chunk joins on the sample."""

import csv

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from scipy import ndimage
from shapely.geometry import box

from pipeline.cli import main
from pipeline.runner import run

from world import X0, Y0, X1, Y1, write_gpkg

SETTINGS = """
[products.risk_class]
thresholds = [0.42, 0.55]
names = ["low", "high", "very high"]
[products.priority_zones]
from_class = "high"
min_area_km2 = {min_area}
[districts]
path = "districts.gpkg"
name_field = "district"
"""


@pytest.fixture
def summarised(world, tmp_path):
    """The tiny world split into a West and an East district at x = X0 + 5 km (the soil boundary)."""
    write_gpkg(world.parent / "districts.gpkg", [
        {"district": "West", "geometry": box(X0, Y0, X0 + 5000, Y1)},
        {"district": "East", "geometry": box(X0 + 5000, Y0, X1, Y1)},
    ])

    def go(min_area: float = 0.0):
        world.write_text(world.read_text().split("\n[products.risk_class]")[0] + SETTINGS.format(min_area=min_area))
        out = tmp_path / f"out-{min_area}"
        run(world, out, workers=1)
        return out
    return go


def test_district_table_by_hand(summarised):
    out = summarised()
    rows = {r["district"]: r for r in csv.DictReader((out / "districts.csv").open())}
    west, east = rows["West"], rows["East"]
    f = {k: float(v or "nan") for k, v in west.items() if k not in ("district", "assessment")}
    g = {k: float(v or "nan") for k, v in east.items() if k not in ("district", "assessment")}
    assert west["assessment"] == east["assessment"] == "assessed" and f["assessed_share"] == 1.0
    # P_c: NW 10×10 cells (0+0.8+0.6)/3 = 0.4667, rest of the west (0+0.8)/2 = 0.4;
    # east (0+0.2)/2 = 0.1, except the cell of the 100 mines, (1+0.2)/2 = 0.6
    assert f["area_km2"] == pytest.approx(50.0) and g["area_km2"] == pytest.approx(50.0)
    assert f["mean_pc"] == pytest.approx((100 * 1.4 / 3 + 4900 * 0.4) / 5000, rel=1e-5)
    assert f["max_pc"] == pytest.approx(1.4 / 3, rel=1e-5)
    assert g["mean_pc"] == pytest.approx((4999 * 0.1 + 0.6) / 5000, rel=1e-5)
    assert g["max_pc"] == pytest.approx(0.6, rel=1e-5)
    # classes: high = the NW square (1 km²), very high = one cell (0.01 km²)
    assert (f["km2_low"], f["km2_high"], f["km2_very_high"]) == pytest.approx((49.0, 1.0, 0.0))
    assert (g["km2_low"], g["km2_high"], g["km2_very_high"]) == pytest.approx((49.99, 0.0, 0.01))
    # remaining mines: all 100 in the east, none of that cell cleared; none in the west
    assert g["remaining_mines"] == pytest.approx(100.0, rel=1e-3) and f["remaining_mines"] == pytest.approx(0.0, abs=1e-6)
    # E: west −80 (manual, cleared) and −20 (mechanical, half) over 5000 cells; east 10,000·0.1 in one cell
    assert f["mean_E"] == pytest.approx(-100 / 5000, rel=1e-4)
    assert g["mean_E"] == pytest.approx(1000 / 5000, rel=1e-3)
    # cleared land: 0.01 km² at CSC 0.75 (sustainable) + 0.005 km² at CSC 0.325 → 2/3 sustainable
    assert f["cleared_km2"] == pytest.approx(0.015) and f["csc_sustainable_share"] == pytest.approx(2 / 3)
    assert g["cleared_km2"] == 0.0 and east["csc_sustainable_share"] == ""  # no cleared land: no share
    layer = gpd.read_file(out / "districts.gpkg", layer="districts")
    assert layer.crs.to_epsg() == 32638 and list(layer["district"]) == ["West", "East"]
    assert layer.loc[0, "km2_high"] == pytest.approx(1.0)
    # brief the west first: 1 km² at "high" or above against the east's 0.01 km²
    assert (f["priority"], g["priority"]) == (1, 2)
    assert f["mean_pc_all_cells"] == pytest.approx(f["mean_pc"])  # every cell assessed: the same mean


def test_priority_zones_by_hand(summarised):
    zones = gpd.read_file(summarised() / "priority_zones.gpkg")
    assert list(zones["rank"]) == [1, 2]
    first, second = zones.iloc[0], zones.iloc[1]
    # riskiest first: the single very-high cell (50, 50) in the east, then the 1 km² high square in the NW
    assert (first["risk_class"], first["district"], first["cells"]) == ("very high", "East", 1)
    assert first["area_km2"] == pytest.approx(0.01) and first["mean_pc"] == pytest.approx(0.6, rel=1e-5)
    assert first.geometry.equals(box(X0 + 5000, Y1 - 5100, X0 + 5100, Y1 - 5000))
    assert (second["risk_class"], second["district"], second["cells"]) == ("high", "West", 100)
    assert second.geometry.equals(box(X0, Y1 - 1000, X0 + 1000, Y1))
    assert second["max_pc"] == pytest.approx(1.4 / 3, rel=1e-5)
    assert (second["mean_evidence"], second["min_evidence"]) == (3.0, 3)  # H_m, S_t and the drone layer
    assert zones.crs.to_epsg() == 32638


def test_small_zones_left_out(summarised):
    zones = gpd.read_file(summarised(min_area=0.05) / "priority_zones.gpkg")
    assert list(zones["cells"]) == [100]


def test_zones_join_across_chunks_like_the_whole_raster(sample_out):
    """The sample has 3 × 3 chunks: zones cut by chunk edges must come out whole, as labelling
    the full risk raster at once gives them (same count, same sizes, same outlines' areas)."""
    with rasterio.open(sample_out / "risk_class.tif") as ds:
        classes = ds.read(1)
    labels, n = ndimage.label((classes >= 3) & (classes != 255))
    sizes = np.bincount(labels.ravel())[1:]
    expected = np.sort(sizes[sizes * 0.01 >= 0.05])[::-1]
    zones = gpd.read_file(sample_out / "priority_zones.gpkg")
    assert len(zones) == len(expected) and (np.sort(zones["cells"].to_numpy())[::-1] == expected).all()
    assert zones.geometry.is_valid.all() and (zones.geometry.geom_type == "MultiPolygon").all()
    assert np.allclose(zones.area / 1e6, zones["area_km2"])
    # zones that span a chunk border (every 512 cells = 51.2 km) are one feature each
    x_edges = [ds.transform.c + k * 51_200 for k in (1, 2)]
    y_edges = [ds.transform.f - k * 51_200 for k in (1, 2)]
    crossing = [g for g in zones.geometry if any(g.bounds[0] < x < g.bounds[2] for x in x_edges)
                or any(g.bounds[1] < y < g.bounds[3] for y in y_edges)]
    assert len(crossing) >= 1
    order = list(zip(-zones["risk_class"].map({"high": 3, "very high": 4}), -zones["area_km2"]))
    assert order == sorted(order)


def test_bad_district_settings(summarised, world):
    summarised()
    world.write_text(world.read_text().replace('name_field = "district"', 'name_field = "nom"'))
    result = CliRunner().invoke(main, ["validate", str(world)])
    assert result.exit_code == 2
    assert "districts.gpkg" in result.output and "no field 'nom'" in result.output
    world.write_text(world.read_text().replace('from_class = "high"', 'from_class = "severe"'))
    result = CliRunner().invoke(main, ["validate", str(world)])
    assert result.exit_code == 2 and "'severe' is not one of" in result.output


def test_cleared_land_from_sites_when_c_is_not_bound(world, summarised):
    """With only A_c bound, as the cleared site's area (site_km2), a cell counts as cleared when
    its centre lies in a site: cleared_km2 is whole cells, not the sites' km² painted on them."""
    write_gpkg(world.parent / "cleared.gpkg", [
        {"method": "manual", "geometry": box(X0 + 1000, Y1 - 1100, X0 + 1300, Y1 - 1000)},    # cells (10, 10–12)
        {"method": "mechanical", "geometry": box(X0 + 2000, Y1 - 1030, X0 + 2030, Y1 - 1000)},  # holds no centre
    ])
    text = world.read_text().replace('[inputs.C]\nkind = "coverage"\npath = "cleared.gpkg"\nunits = "percent"\n', "")
    world.write_text(text + "[products.environmental_impact]\nenabled = false\n")
    out = summarised()
    west = {r["district"]: r for r in csv.DictReader((out / "districts.csv").open())}["West"]
    # 3 manual cells at CSC (0.9 + 0.6) / 2 · 1.0 = 0.75; the small mechanical site holds no centre
    assert float(west["cleared_km2"]) == pytest.approx(0.03)
    assert float(west["csc_sustainable_share"]) == pytest.approx(1.0)
