"""End to end on the bundled synthetic sample: every output re-opened and checked as a GIS user would."""

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import rasterio

from conftest import REPO, run_sample
from made import made_products

CONFIG = REPO / "sample_data" / "minemap.toml"
PRODUCTS = {  # name: (dtype, nodata, renderer, valid range)
    "contamination_probability": ("float32", -9999.0, "singlebandpseudocolor", (0.0, 1.0)),
    "evidence_count": ("uint8", 255.0, "paletted", (0, 3)),
    "risk_class": ("uint8", 255.0, "paletted", (0, 4)),  # 0: insufficient evidence (Kalbajar, Lachin)
    "environmental_impact": ("float32", -9999.0, "singlebandpseudocolor", (-100.0, 1e5)),
    "recovery_rate": ("float32", -9999.0, "singlebandpseudocolor", (0.0, 1e3)),
    "clearance_sustainability": ("float32", -9999.0, "singlebandpseudocolor", (0.0, 1.0)),
    "released_share": ("float32", -9999.0, "singlebandpseudocolor", (0.0, 1.0)),
    "residual_probability": ("float32", -9999.0, "singlebandpseudocolor", (0.0, 1.0)),
}


@pytest.mark.parametrize("name", PRODUCTS)
def test_product_file_is_what_qgis_users_need(sample_out, name, by_hand):
    dtype, nodata, renderer, (lo, hi) = PRODUCTS[name]
    with rasterio.open(sample_out / f"{name}.tif") as ds:
        assert ds.crs.to_epsg() == 32638
        assert ds.res == (100.0, 100.0)
        assert ds.transform.c % 100 == 0 and ds.transform.f % 100 == 0  # snapped to the grid origin
        assert ds.dtypes[0] == dtype and ds.nodata == nodata
        assert ds.block_shapes[0] == (512, 512)
        assert ds.compression.name.lower() == "zstd"
        assert ds.overviews(1), "internal overviews"
        assert ds.descriptions[0]
        tags = ds.tags()
        assert tags["MINEMAP_PRODUCT"] == name
        assert "MINEMAP_EQUATION" in tags and "MINEMAP_CONFIG_SHA256" in tags and "MINEMAP_VERSION" in tags
        assert json.loads(tags["MINEMAP_INPUTS"])
        stats = ds.tags(1)
        data = ds.read(1, masked=True)
    assert float(stats["STATISTICS_MINIMUM"]) == pytest.approx(float(data.min()))
    assert float(stats["STATISTICS_MAXIMUM"]) == pytest.approx(float(data.max()))
    assert lo <= data.min() and data.max() <= hi
    assert data.count() > 0
    assert data.mask[0, 0] and data.mask[-1, -1]  # bounding-box corners lie outside the region
    if name in ("contamination_probability", "residual_probability"):  # the values are eq. (2)'s, by hand
        expected = by_hand["P_c"][~data.mask]
        if name == "residual_probability":
            with rasterio.open(sample_out / "released_share.tif") as ds:
                expected = expected * (1 - ds.read(1, masked=True)[~data.mask])
        np.testing.assert_allclose(data.compressed(), expected, atol=1e-6)
        assert float(stats["STATISTICS_MEAN"]) == pytest.approx(float(expected.mean()), rel=1e-5)
    style = ET.parse(sample_out / f"{name}.qml").getroot()
    assert style.find("pipe/rasterrenderer").get("type") == renderer


def test_tags_name_every_variable_source(sample_out):
    with rasterio.open(sample_out / "recovery_rate.tif") as ds:
        inputs = json.loads(ds.tags()["MINEMAP_INPUTS"])
        assert ds.tags()["MINEMAP_EQUATION"] == "Eq. (4) R_e = (A_c·B_r) / (T_s·P_c)"
    assert set(inputs) == {"A_c", "B_r", "T_s", "P_c"}
    assert "cleared_areas.gpkg" in inputs["A_c"] and inputs["P_c"] == "kind=product, product=contamination_probability"


@pytest.fixture(scope="module")
def by_hand(sample_out) -> dict[str, np.ndarray]:
    """H_m, S_t, V_i on every cell as the sources give them (the loaders, not the products), and
    eq. (2) worked by hand from them: the mean of the layers with data (weights 1/3 each)."""
    from pipeline.engine.plan import load_inputs

    record = json.loads((sample_out / "run.json").read_text())
    pc = record["config"]["settings"]["products"]["contamination_probability"]
    assert pc["weights"] == pytest.approx([1 / 3] * 3) and not pc["require_all"]
    layers = load_inputs(CONFIG).layers
    L, S, V = (layers[v].array.compute().astype(np.float64) for v in ("L", "S_t", "V_i"))
    H = np.minimum(L / record["assessment"]["L_sat"], 1.0)  # the L_sat the run used ("auto" resolved)
    stack = np.stack([H, S, V])
    n = np.isfinite(stack).sum(axis=0)
    with np.errstate(invalid="ignore"):
        p = np.nansum(stack, axis=0) / n
    return {"H_m": H, "S_t": S, "V_i": V, "n": n, "P_c": p}


def soil_st_at(x: float, y: float) -> float:
    """S_t of the soil polygon holding a point (grid CRS), from soil_classes.csv: by hand."""
    import geopandas as gpd
    from shapely.geometry import Point

    from pipeline.vector import read_table

    soil = gpd.read_file(CONFIG.parent / "soil.gpkg").to_crs("EPSG:32638")
    classes = soil[soil.contains(Point(x, y))]["soil_class"].tolist()
    assert len(classes) == 1, classes
    return float(read_table(CONFIG.parent / "soil_classes.csv", "soil_class")[classes[0]]["S_t"])


def test_pc_matches_its_inputs_in_a_drone_covered_cell(sample_out, by_hand):
    """P_c read from the file equals eq. (2) worked by hand from H_m, S_t, V_i: on a drone-covered
    cell with mines nearby (all three layers), on a cell no drone flew (mean of two: dividing by 3
    there would be wrong), and on every other cell the file has a value."""
    with rasterio.open(sample_out / "contamination_probability.tif") as pc, \
            rasterio.open(sample_out / "evidence_count.tif") as n:
        p, c, transform = pc.read(1, masked=True), n.read(1, masked=True), pc.transform
    H, S, V = by_hand["H_m"], by_hand["S_t"], by_hand["V_i"]
    assert (c == 3).sum() > 100  # drone flights cover some cells
    assert np.array_equal(c.compressed(), by_hand["n"][~c.mask])  # evidence_count: the layers with data
    # a drone-covered cell holding the most mines, and the same for a cell outside every flight
    three = np.where((by_hand["n"] == 3) & ~p.mask, H, -1.0)
    r3, c3 = np.unravel_index(np.argmax(three), H.shape)
    two = np.where((by_hand["n"] == 2) & np.isnan(V) & ~p.mask, H, -1.0)
    r2, c2 = np.unravel_index(np.argmax(two), H.shape)
    assert 0 < H[r3, c3] and 0 < H[r2, c2]  # records reach both: all of eq. (2) is exercised
    for r, col in ((r3, c3), (r2, c2)):
        assert S[r, col] == pytest.approx(soil_st_at(*(transform * (col + 0.5, r + 0.5))))  # the table's S_t
    assert p[r3, c3] == pytest.approx((H[r3, c3] + S[r3, c3] + V[r3, c3]) / 3, abs=1e-6)
    assert p[r2, c2] == pytest.approx((H[r2, c2] + S[r2, c2]) / 2, abs=1e-6)
    assert p[r2, c2] != pytest.approx((H[r2, c2] + S[r2, c2]) / 3, abs=1e-3)
    np.testing.assert_allclose(p.compressed(), by_hand["P_c"][~p.mask], atol=1e-6)


def test_csc_only_where_cleared_and_sustainability_shows(sample_out):
    with rasterio.open(sample_out / "clearance_sustainability.tif") as ds:
        csc = ds.read(1, masked=True)
    assert 0 < csc.count() < csc.size * 0.05  # only cleared cells
    assert (csc > 0.7).any() and (csc <= 0.7).any()


def test_run_record(sample_out, by_hand):
    record = json.loads((sample_out / "run.json").read_text())
    assert record["grid"]["crs"] == "EPSG:32638" and record["grid"]["resolution_m"] == 100
    assert set(record["products"]) == set(PRODUCTS)
    for p in record["products"].values():
        assert p["min"] <= p["mean"] <= p["max"]
    with rasterio.open(sample_out / "contamination_probability.tif") as ds:
        assessed = ~ds.read(1, masked=True).mask
    hand = by_hand["P_c"][assessed]  # eq. (2) by hand on the cells the file has a value
    assert record["products"]["contamination_probability"]["mean"] == pytest.approx(float(hand.mean()), rel=1e-5)
    assert record["products"]["contamination_probability"]["max"] == pytest.approx(float(hand.max()), abs=1e-6)
    files = record["inputs"]
    assert any(f.endswith("districts.gpkg") is False and f.endswith(".tif") for f in files)
    assert all(len(v["sha256"]) == 64 for v in files.values())
    assert not list(sample_out.glob(".staging-*"))


@pytest.mark.slow
def test_one_thread_and_two_give_identical_outputs(sample_out, tmp_path):
    single = tmp_path / "single"
    run_sample(single, "--workers", "1")
    names = made_products(single)  # every product the run makes, from the registry
    assert sorted(names) == sorted(PRODUCTS)
    for name in names:
        with rasterio.open(sample_out / f"{name}.tif") as a, rasterio.open(single / f"{name}.tif") as b:
            assert np.array_equal(a.read(1), b.read(1)), name


@pytest.mark.skipif(shutil.which("gdalinfo") is None, reason="GDAL tools not installed: run `make system-deps`")
def test_outputs_are_valid_cogs(sample_out):
    for name in PRODUCTS:
        proc = subprocess.run(["/usr/bin/python3", "-m", "osgeo_utils.samples.validate_cloud_optimized_geotiff",
                               str(sample_out / f"{name}.tif")], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_sample_maps_show_every_risk_class_and_the_report_bundles_them(sample_out):
    from matplotlib.image import imread

    from pipeline.writers.styles import risk_class_legend

    pixels = (imread(sample_out / "risk_class.png")[..., :3] * 255).round().astype(int).reshape(-1, 3)
    values, counts = np.unique(pixels, axis=0, return_counts=True)
    seen = {tuple(int(x) for x in v): int(c) for v, c in zip(values, counts)}
    for stop in risk_class_legend(["low", "medium", "high", "very high"], [0.3, 0.45, 0.6], 2, "P_res").stops:
        colour = tuple(int(stop.color[i:i + 2], 16) for i in (1, 3, 5))
        assert seen.get(colour, 0) > 1_000, stop.label  # on the map itself, not only in the legend patch
    report = (sample_out / "report.html").read_text()
    for name in PRODUCTS:
        assert f'src="{name}.png"' in report and (sample_out / f"{name}.png").stat().st_size > 20_000
    assert "Khojavend" in report and "Remaining mines (est.)" in report and "SYNTHETIC" in report
