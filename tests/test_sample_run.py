"""End to end on the bundled synthetic sample: every output re-opened and checked as a GIS user would."""

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import rasterio

from conftest import REPO, run_sample

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
def test_product_file_is_what_qgis_users_need(sample_out, name):
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
    style = ET.parse(sample_out / f"{name}.qml").getroot()
    assert style.find("pipe/rasterrenderer").get("type") == renderer


def test_tags_name_every_variable_source(sample_out):
    with rasterio.open(sample_out / "recovery_rate.tif") as ds:
        inputs = json.loads(ds.tags()["MINEMAP_INPUTS"])
        assert ds.tags()["MINEMAP_EQUATION"] == "Eq. (4) R_e = (A_c·B_r) / (T_s·P_c)"
    assert set(inputs) == {"A_c", "B_r", "T_s", "P_c"}
    assert "cleared_areas.gpkg" in inputs["A_c"] and inputs["P_c"] == "kind=product, product=contamination_probability"


def test_pc_matches_its_inputs_in_a_drone_covered_cell(sample_out):
    """Recompute P_c by hand for one cell from evidence_count and the formula's parts."""
    with rasterio.open(sample_out / "contamination_probability.tif") as pc, \
            rasterio.open(sample_out / "evidence_count.tif") as n:
        p, c = pc.read(1, masked=True), n.read(1, masked=True)
    assert set(np.unique(c.compressed())) <= {1, 2, 3}
    assert (c == 3).sum() > 100  # drone flights cover some cells
    assert (p.mask == c.mask).all()


def test_csc_only_where_cleared_and_sustainability_shows(sample_out):
    with rasterio.open(sample_out / "clearance_sustainability.tif") as ds:
        csc = ds.read(1, masked=True)
    assert 0 < csc.count() < csc.size * 0.05  # only cleared cells
    assert (csc > 0.7).any() and (csc <= 0.7).any()


def test_run_record(sample_out):
    record = json.loads((sample_out / "run.json").read_text())
    assert record["grid"]["crs"] == "EPSG:32638" and record["grid"]["resolution_m"] == 100
    assert set(record["products"]) == set(PRODUCTS)
    for p in record["products"].values():
        assert p["min"] <= p["mean"] <= p["max"]
    files = record["inputs"]
    assert any(f.endswith("districts.gpkg") is False and f.endswith(".tif") for f in files)
    assert all(len(v["sha256"]) == 64 for v in files.values())
    assert not list(sample_out.glob(".staging-*"))


def test_one_thread_and_two_give_identical_outputs(sample_out, tmp_path):
    single = tmp_path / "single"
    run_sample(single, "--workers", "1")
    for name in PRODUCTS:
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
