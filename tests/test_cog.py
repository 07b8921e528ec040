"""The COG sink's assembly: tiles compressed elsewhere, put together into a valid COG that GDAL
reads back cell for cell at every level, with the georeferencing and metadata GDAL wrote."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from pipeline.writers.cog import TileCoder, TileFile, assemble, gdal_tags, tiled_levels
from pipeline.writers.overviews import downsample

NODATA = -9999.0
TRANSFORM = Affine(10, 0, 500_000, 0, -10, 4_400_000)
GDAL_VALIDATOR = Path("/usr/lib/python3/dist-packages/osgeo_utils/samples/validate_cloud_optimized_geotiff.py")


def _levels(a: np.ndarray, nodata: float = NODATA) -> list[np.ndarray]:
    levels = [a]
    while max(levels[-1].shape) > 512:
        levels.append(downsample(levels[-1], 2, nodata, True))
    return levels


def _write(tmp_path: Path, levels: list[np.ndarray], coder: TileCoder, skip: set = frozenset(),
           bigtiff: bool | None = None) -> Path:
    """Tiles of every level into one staged file (but `skip`: (level, row, col)), then the COG."""
    staged = TileFile(tmp_path / "chunk.tiles", coder, {k: (0, 0) for k in range(len(levels))})
    tiles = {k: {} for k in range(len(levels))}
    for k, r, c, offset, length in staged.write(dict(enumerate(levels))).tolist():
        if (k, r, c) not in skip:
            tiles[k][r, c] = (0, offset, length)
    tags = gdal_tags(CRS.from_epsg(32638).wkt, TRANSFORM, coder.dtype, coder.nodata, {"MINEMAP_EQUATION": "(2)"},
                     {"STATISTICS_MEAN": "0.5"}, "contamination probability", "km²")
    path = tmp_path / "product.tif"
    assemble(path, [lv.shape for lv in levels], coder, tags, tiles, [staged.path], bigtiff=bigtiff)
    return path


def test_an_assembled_cog_reads_back_cell_for_cell_at_every_level_with_gdals_tags(tmp_path):
    rng = np.random.default_rng(5)
    a = rng.random((1300, 1100)).astype("float32")  # 3 × 3 tiles, the last row and column partial
    a[:100, :100] = NODATA
    levels = _levels(a)
    assert [lv.shape for lv in levels] == [(1300, 1100), (650, 550), (325, 275)]
    path = _write(tmp_path, levels, TileCoder("float32", NODATA))
    with rasterio.open(path) as ds:
        assert (ds.crs.to_epsg(), ds.transform, ds.nodata) == (32638, TRANSFORM, NODATA)
        assert ds.block_shapes == [(512, 512)] and ds.compression.name.lower() == "zstd"
        assert ds.overviews(1) == [2, 4]
        assert np.array_equal(ds.read(1), a)
        assert ds.descriptions == ("contamination probability",) and ds.units == ("km²",)  # UTF-8 kept
        assert ds.tags()["MINEMAP_EQUATION"] == "(2)" and ds.tags(1)["STATISTICS_MEAN"] == "0.5"
    for k in (1, 2):
        with rasterio.open(path, OVERVIEW_LEVEL=k - 1) as ov:
            assert np.array_equal(ov.read(1), levels[k])
    # the average of the top-left 2 × 2 cells of level 1 is the first cell of level 2
    assert levels[1][0, 0] == NODATA and levels[1][50, 50] == pytest.approx(a[100:102, 100:102].mean())


@pytest.mark.parametrize("bigtiff", [False, True])
def test_an_assembled_cog_is_valid_for_rio_cogeo_and_gdals_validator(tmp_path, bigtiff):
    """GDAL's layout too: its structural metadata after the header (`LAYOUT=COG`), and each
    block with its size before it and its last 4 bytes after it (the validator's full check)."""
    from rio_cogeo.cogeo import cog_validate

    a = np.arange(1100 * 1300, dtype="float32").reshape(1300, 1100)
    path = _write(tmp_path, _levels(a), TileCoder("float32", NODATA), bigtiff=bigtiff)
    with rasterio.open(path) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG" and np.array_equal(ds.read(1), a)
        assert ds.crs.to_epsg() == 32638 and ds.tags(1)["STATISTICS_MEAN"] == "0.5"
    assert path.read_bytes()[:4] == (b"II+\x00" if bigtiff else b"II*\x00")
    valid, errors, warnings = cog_validate(str(path))
    assert valid and not errors, (errors, warnings)
    if not GDAL_VALIDATOR.exists() or not shutil.which("gdalinfo"):
        pytest.skip("GDAL's COG validator (python3-gdal) not installed")
    done = subprocess.run(["/usr/bin/python3", str(GDAL_VALIDATOR), "--full-check=yes", str(path)],
                          capture_output=True, text=True)
    assert done.returncode == 0 and "is a valid cloud optimized GeoTIFF" in done.stdout, done.stdout + done.stderr


def test_a_tile_no_chunk_produced_reads_as_nodata_and_the_rest_is_untouched(tmp_path):
    a = np.full((1024, 1024), 3, dtype="uint8")
    levels = _levels(a, 255)
    path = _write(tmp_path, levels, TileCoder("uint8", 255), skip={(0, 1, 0)})  # bottom-left tile of level 0
    with rasterio.open(path) as ds:
        b = ds.read(1)
    assert (b[512:, :512] == 255).all() and (b[:512, :] == 3).all() and (b[512:, 512:] == 3).all()


def test_chunks_tile_whole_levels_up_to_their_edge_over_the_tile():
    assert tiled_levels(2048, [2, 4, 8, 16, 32]) == [1, 2, 4]  # 2048/8 = 256 cells: shares a tile
    assert tiled_levels(512, [2, 4]) == [1]
    assert tiled_levels(4096, [2, 4, 8, 16]) == [1, 2, 4, 8]


def test_consuming_assembly_deletes_each_staged_file_after_its_last_tile(tmp_path):
    """Staging never holds a product twice: a chunk's tile file goes once its last tile is copied."""
    a = np.arange(1024 * 1024, dtype="float32").reshape(1024, 1024)
    coder = TileCoder("float32", NODATA)
    files, tiles = [], {0: {}, 1: {}}
    for n, (r0, c0) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):  # four 512² "chunks"
        block = a[r0 * 512:(r0 + 1) * 512, c0 * 512:(c0 + 1) * 512]
        staged = TileFile(tmp_path / f"{n}.tiles", coder, {0: (r0, c0)})
        for _, r, c, offset, length in staged.write({0: block}).tolist():
            tiles[0][r, c] = (n, offset, length)
        files.append(staged.path)
    top = TileFile(tmp_path / "top.tiles", coder, {1: (0, 0)})
    for _, r, c, offset, length in top.write({1: downsample(a, 2, NODATA, True)}).tolist():
        tiles[1][r, c] = (4, offset, length)
    files.append(top.path)
    assemble(tmp_path / "p.tif", [(1024, 1024), (512, 512)], coder, [], tiles, files, consume=True)
    assert not any(f.exists() for f in files)
    with rasterio.open(tmp_path / "p.tif") as ds:
        assert np.array_equal(ds.read(1), a)
