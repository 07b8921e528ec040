"""Compressing a chunk's tiles in a worker: imagecodecs (through tifffile's codec table, as
`pipeline/writers/cog.py` does) against GDAL writing the chunk to an in-memory GeoTIFF and the
tiles' bytes taken from it, on one thread (as in a worker, whose neighbour has the other core)
and on all. Same codec, level and predictor; prints ms per 2048² chunk and MB.

Usage: python bench/bench_codecs.py OUT_FOLDER_OF_A_RUN [--repeat 5]
"""

from __future__ import annotations

import argparse
import io
import json
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.io import MemoryFile
from rasterio.windows import Window

from pipeline.writers.cog import TileCoder


def with_imagecodecs(block: np.ndarray, nodata: float) -> list[bytes]:
    return [data for _, _, data in TileCoder(str(block.dtype), nodata).tiles(block)]


def with_gdal(block: np.ndarray, nodata: float, threads: str = "ALL_CPUS") -> list[bytes]:
    from tifffile import TiffFile

    h, w = block.shape
    with MemoryFile() as mem:
        with mem.open(driver="GTiff", width=w, height=h, count=1, dtype=block.dtype, tiled=True, blockxsize=512,
                      blockysize=512, compress="zstd", zstd_level=1, nodata=nodata, num_threads=threads,
                      predictor=3 if block.dtype.kind == "f" else 2) as ds:
            ds.write(block, 1)
        data = mem.read()
    with TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages.first
        return [data[o:o + n] for o, n in zip(page.dataoffsets, page.databytecounts)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    products = json.loads((args.out / "run.json").read_text())["products"]
    print(f"{'product':<28} {'dtype':<8} {'imagecodecs ms':>15} {'GDAL, 1 thread':>15} {'GDAL, all cores':>16} {'MB':>6}")
    for name, p in products.items():
        with rasterio.open(args.out / p["file"]) as ds:
            row, col = ds.height // 2 // 2048 * 2048, ds.width // 2 // 2048 * 2048
            block, nodata = ds.read(1, window=Window(col, row, 2048, 2048)), ds.nodata
        times = {}
        for label, fn in (("imagecodecs", with_imagecodecs), ("gdal1", lambda b, n: with_gdal(b, n, "1")),
                          ("gdal", with_gdal)):
            t0 = time.perf_counter()
            for _ in range(args.repeat):
                tiles = fn(block, nodata)
            times[label] = (time.perf_counter() - t0) / args.repeat * 1000
        print(f"{name:<28} {str(block.dtype):<8} {times['imagecodecs']:>15.0f} {times['gdal1']:>15.0f} {times['gdal']:>16.0f} "
              f"{sum(map(len, tiles)) / 1e6:>6.2f}")


if __name__ == "__main__":
    main()
