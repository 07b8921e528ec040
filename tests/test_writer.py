"""The GeoTIFF writer: chunks outside the region, nodata values, statistics, atomic publishing."""

import json

import numpy as np
import pytest
import rasterio
from shapely.geometry import Point, box

from pipeline.runner import run
from world import X0, Y1, make_world, write_gpkg


@pytest.fixture
def quadrant_world(tmp_path):
    """10 m cells, 2 × 2 chunks of 512; the region is the north-west 4 × 4 km only."""
    config = make_world(tmp_path / "w")
    grid = config.parent / "grid.toml"
    grid.write_text(grid.read_text().replace("resolution = 100.0", "resolution = 10"))
    write_gpkg(config.parent / "region.gpkg", [{"name": "nw", "geometry": box(X0, Y1 - 4000, X0 + 4000, Y1)},
                                               {"name": "se", "geometry": box(X0 + 9990, Y1 - 10000, X0 + 10000, Y1 - 9990)}])
    write_gpkg(config.parent / "mines.gpkg", [{"count": 10, "geometry": Point(X0 + 1005, Y1 - 1005)}])
    return config


def test_chunk_outside_region_is_nodata_and_stats_count_region_cells(quadrant_world, tmp_path):
    out = tmp_path / "out"
    record = run(quadrant_world, out, workers=2)
    with rasterio.open(out / "contamination_probability.tif") as ds:
        assert ds.shape == (1000, 1000)
        data = ds.read(1)
        stats = ds.tags(1)
    # region: 400 × 400 cells in the north-west plus the single south-east corner cell
    assert (data[:400, :400] != -9999).all()
    assert (data[400:, :] == -9999).sum() == 600 * 1000 - 1
    assert data[999, 999] != -9999
    assert record["products"]["contamination_probability"]["valid_cells"] == 400 * 400 + 1
    assert float(stats["STATISTICS_MAXIMUM"]) == pytest.approx(float(data[data != -9999].max()))


def test_run_record_is_written_last_and_staging_removed(quadrant_world, tmp_path):
    out = tmp_path / "out"
    run(quadrant_world, out, workers=1)
    record = json.loads((out / "run.json").read_text())
    assert record["timings"]["total_s"] > 0
    newest = max((p for p in out.iterdir() if p.is_file()), key=lambda p: p.stat().st_mtime_ns)
    assert newest.name == "run.json"
    assert not list(out.glob(".staging-*"))


def test_overview_averages_only_valid_cells():
    from pipeline.writers.overviews import downsample, overview_factors

    nan = -9999.0  # blocks arrive with nodata filled in
    block = np.array([[1, 3, 5, nan, 7],
                      [nan, nan, nan, nan, 9],
                      [2, 2, nan, nan, nan]], dtype=np.float32)
    # 2 × 2 means of the valid cells; the ragged edge averages what is there; all-nodata → nodata
    expected = np.array([[2, 5, 8], [2, -9999, -9999]], dtype=np.float32)
    level2 = downsample(block, 2, -9999.0, average=True)
    np.testing.assert_array_equal(level2, expected)
    # the next level halves this one, skipping its nodata: (2 + 5 + 2) / 3 and 8
    np.testing.assert_allclose(downsample(level2, 2, -9999.0, average=True), [[3, 8]])
    np.testing.assert_array_equal(downsample(np.arange(9, dtype=np.uint8).reshape(3, 3), 2, 255, average=False),
                                  [[0, 2], [6, 8]])
    # halve until the larger side fits one 512 tile, as GDAL's COG driver does
    assert overview_factors((1461, 1212), 512) == [2, 4]
    assert overview_factors((14601, 12111), 2048) == [2, 4, 8, 16, 32]
    assert overview_factors((400, 300), 512) == []


def test_a_chunks_staged_blocks_land_in_their_band_and_window(tmp_path):
    """A 100 × 60 chunk, levels 2, 4, 8: per data type one full-resolution file (a band per
    product) and one atlas (level 2 at the left, 4 and 8 stacked at its right)."""
    from affine import Affine
    from rasterio.windows import Window

    from pipeline.writers.pieces import chunk_spots, write_pieces

    products = [("a", "float32"), ("b", "uint8"), ("c", "float32")]
    spots = chunk_spots(tmp_path, (0, 1), products, (100, 60), [2, 4, 8])
    c1, a4, a8 = spots["c", 1], spots["a", 4], spots["a", 8]
    assert (c1.path.name, c1.band, c1.window, c1.file_shape, c1.count) == ("0_1.float32.tif", 2, Window(0, 0, 60, 100),
                                                                          (100, 60), 2)
    assert spots["b", 2].path.name == "0_1.uint8.overviews.tif" and spots["b", 2].count == 1
    assert spots["a", 2].window == Window(0, 0, 30, 50)
    assert a4.window == Window(30, 0, 15, 25) and a8.window == Window(30, 25, 8, 13)
    assert a4.file_shape == (50, 45)

    rng = np.random.default_rng(3)
    blocks = {}
    for (name, f), spot in spots.items():
        h, w = int(spot.window.height), int(spot.window.width)
        blocks[name, f] = (rng.random((h, w)) * 200).astype(spot.dtype)
    write_pieces(spots, blocks, Affine(10, 0, 500_000, 0, -10, 4_400_000))
    for key, spot in spots.items():
        with rasterio.open(spot.path) as ds:
            assert ds.count == spot.count
            np.testing.assert_array_equal(ds.read(spot.band, window=spot.window), blocks[key])
    with rasterio.open(tmp_path / "0_1.float32.tif") as ds:
        assert ds.transform == Affine(10, 0, 500_000, 0, -10, 4_400_000)


def test_each_product_tag_carries_the_papers_equation_number(world, tmp_path):
    """The paper numbers them (1) E, (2) P_c, (3) CSC, (4) R_e (#14): so must the GeoTIFF tags."""
    out = tmp_path / "out"
    run(world, out, workers=1)
    expected = {"environmental_impact": "Eq. (1) E = L·D − C·R",
                "contamination_probability": "Eq. (2) P_c = (H_m + S_t + V_i) / 3",
                "clearance_sustainability": "Eq. (3) CSC = (E_f + B_r) / 2 · D_i (> 0.7 sustainable)",
                "recovery_rate": "Eq. (4) R_e = (A_c·B_r) / (T_s·P_c)"}
    for name, equation in expected.items():
        with rasterio.open(out / f"{name}.tif") as ds:
            assert ds.tags()["MINEMAP_EQUATION"] == equation, name
