"""Scheduled-regeneration benchmark at the 10 m grid: full run, one new drone tile (~1 % of the
region), then `update`; prints both times and their ratio in one table (nothing asserted).

Usage: python bench/bench_update.py [--bench-dir /tmp/minemap-bench] [--size-km 110]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from make_large_inputs import X0, Y0, make  # noqa: E402

from pipeline.runner import run, update  # noqa: E402


def new_tile(inputs: Path, size_km: float) -> Path:
    """A 2 m drone tile covering 1 % of the region, in the middle of it."""
    side = size_km * 1000 * 0.1  # 10 % of the edge = 1 % of the area
    px = int(side / 2)
    cx, cy = X0 + size_km * 500, Y0 + size_km * 500
    data = (np.random.default_rng(7).random((px, px)) * 254).astype(np.uint8)
    path = inputs / "drone" / "zz_new_flight.tif"
    with rasterio.open(path, "w", driver="GTiff", width=px, height=px, count=1, dtype="uint8", crs="EPSG:32638",
                       transform=from_origin(cx - side / 2, cy + side / 2, 2.0, 2.0), nodata=255, tiled=True,
                       blockxsize=512, blockysize=512, compress="zstd") as ds:
        ds.write(data, 1)
        ds.update_tags(TIFFTAG_DATETIME="2026:11:25 06:00:00")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bench-dir", type=Path, default=Path("/tmp/minemap-bench"))
    ap.add_argument("--size-km", type=float, default=110)
    args = ap.parse_args()
    inputs = args.bench_dir / f"update-inputs-{args.size_km:g}km"
    out = args.bench_dir / f"update-out-{args.size_km:g}km"
    shutil.rmtree(inputs, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    make(inputs, args.size_km, 10.0)
    config = inputs / "minemap.toml"
    t = time.perf_counter()
    run(config, out)
    full = time.perf_counter() - t
    t = time.perf_counter()
    same = update(config, out)
    noop = time.perf_counter() - t
    new_tile(inputs, args.size_km)
    t = time.perf_counter()
    summary = update(config, out)
    upd = time.perf_counter() - t
    print(f"\n{'step':<34} {'seconds':>8} {'chunks':>9}")
    print(f"{'full run':<34} {full:>8.1f} {summary['chunks_total']:>9}")
    print(f"{'update, nothing changed':<34} {noop:>8.1f} {same['chunks_recomputed']:>9}")
    print(f"{'update, one new tile (1 % area)':<34} {upd:>8.1f} {summary['chunks_recomputed']:>9}")
    print(f"update / full run: {upd / full:.1%}")
    (args.bench_dir / "results-update.json").write_text(json.dumps(  # for bench/targets.py
        {"size_km": args.size_km, "full_s": full, "noop_s": noop, "update_s": upd,
         "chunks_total": summary["chunks_total"], "chunks_recomputed": summary["chunks_recomputed"]}))


if __name__ == "__main__":
    main()
