"""`make bench`: minemap against a GDAL command-line baseline and the write floor, at three sizes.

Prints one table per run (nothing is asserted): wall seconds, cells per second, peak resident
memory of the whole process tree, output sizes, and the ratios minemap / GDAL and minemap / floor.
Inputs are synthetic (bench/make_large_inputs.py), generated once into BENCH_DIR (outside the repo).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import rasterio
import rasterio.shutil
from rasterio.io import MemoryFile

HERE = Path(__file__).resolve().parent
PRODUCTS = ["contamination_probability", "evidence_count", "risk_class", "environmental_impact", "recovery_rate",
            "clearance_sustainability"]


def timed(cmd: list[str], **kw) -> tuple[float, float, float]:
    """Wall seconds, peak resident MB of the whole process tree (the command and every process it
    starts, summed, sampled every 50 ms) and of its largest single process (measured by the kernel)."""
    os.sync()  # no earlier step's dirty pages written back on this command's time
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, **kw)
    tree = 0
    while proc.poll() is None:
        tree = max(tree, _tree_rss(proc))
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest any single child reached: only meaningful if it grew
    single = (peak if peak > before else float("nan")) / 1024
    return wall, max(tree / 2**20, single), single


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        for p in [proc, *proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass  # it ended between listing and reading
    except psutil.Error:
        pass
    return total


def ensure_inputs(dest: Path, size_km: int) -> Path:
    if not (dest / "minemap.toml").exists():
        subprocess.run([sys.executable, str(HERE / "make_large_inputs.py"), str(dest), "--size-km", str(size_km)],
                       check=True)
    return dest


def dir_mb(path: Path, names: list[str]) -> float:
    return sum((path / n).stat().st_size for n in names if (path / n).exists()) / 1e6


def write_floor(out: Path, scratch: Path, compress: str = "zstd") -> float:
    """Seconds to write minemap's products again from memory, same format (COG, ZSTD 1, overviews);
    with compress="deflate", the same with DEFLATE (level 6, GDAL's default) for comparison."""
    from pipeline.writers.geotiff import creation_options

    arrays = {}
    for name in PRODUCTS:
        with rasterio.open(out / f"{name}.tif") as ds:
            arrays[name] = (ds.read(1), ds.profile)
    scratch.mkdir(parents=True, exist_ok=True)
    os.sync()
    t0 = time.perf_counter()
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):
        for name, (data, prof) in arrays.items():
            mem = {k: prof[k] for k in ("width", "height", "count", "dtype", "crs", "transform", "nodata")}
            with MemoryFile() as mf, mf.open(driver="MEM", **mem) as m:
                m.write(data, 1)
                rasterio.shutil.copy(m, scratch / f"{name}.tif", driver="COG", BLOCKSIZE="512",
                                     OVERVIEW_RESAMPLING="AVERAGE", **creation_options(str(data.dtype), compress, 1 if compress == "zstd" else 6))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bench-dir", type=Path, default=Path(os.environ.get("BENCH_DIR", "/tmp/minemap-bench")))
    ap.add_argument("--sizes", type=int, nargs="+", default=[35, 70, 110], help="region edge in km (10 m cells)")
    ap.add_argument("--no-gdal", action="store_true", help="skip the GDAL baseline")
    args = ap.parse_args()
    minemap = shutil.which("minemap") or str(Path(sys.executable).parent / "minemap")
    rows = []
    for size in args.sizes:
        inputs = ensure_inputs(args.bench_dir / f"inputs-{size}km", size)
        out = args.bench_dir / f"out-minemap-{size}km"
        shutil.rmtree(out, ignore_errors=True)
        wall, peak, single = timed([minemap, "run", str(inputs / "minemap.toml"), "--out", str(out), "--quiet"])
        with rasterio.open(out / f"{PRODUCTS[0]}.tif") as ds:
            cells = ds.width * ds.height
        row = {"size": f"{size} km", "cells": cells, "tool": "minemap", "wall": wall, "peak": peak, "single": single,
               "mb": dir_mb(out, [f"{p}.tif" for p in PRODUCTS])}
        rows.append(row)
        if size == max(args.sizes):
            floor = write_floor(out, args.bench_dir / "floor")
            rows.append({"size": f"{size} km", "cells": cells, "tool": "write floor", "wall": floor,
                         "peak": float("nan"), "single": float("nan"),
                         "mb": dir_mb(args.bench_dir / "floor", [f"{p}.tif" for p in PRODUCTS])})
            deflate = write_floor(out, args.bench_dir / "floor-deflate", "deflate")
            rows.append({"size": f"{size} km", "cells": cells, "tool": "write floor, DEFLATE 6", "wall": deflate,
                         "peak": float("nan"), "single": float("nan"),
                         "mb": dir_mb(args.bench_dir / "floor-deflate", [f"{p}.tif" for p in PRODUCTS])})
            if not args.no_gdal and shutil.which("gdal_calc.py"):
                gout = args.bench_dir / f"out-gdal-{size}km"
                shutil.rmtree(gout, ignore_errors=True)
                gwall, gpeak, gsingle = timed(["bash", str(HERE / "gdal_baseline.sh"), str(inputs), str(gout)])
                rows.append({"size": f"{size} km", "cells": cells, "tool": "GDAL CLI (P_c, E, R_e)", "wall": gwall,
                             "peak": gpeak, "single": gsingle, "mb": dir_mb(gout, [p.name for p in gout.glob("*.tif")])})
    print_table(rows)


def print_table(rows: list[dict]) -> None:
    print(f"\n{'size':>7} {'cells':>12} {'tool':<24} {'wall s':>8} {'Mcells/s':>9} {'peak MB':>8} {'1 proc':>7} {'out MB':>8}")
    for r in rows:
        print(f"{r['size']:>7} {r['cells']:>12,} {r['tool']:<24} {r['wall']:>8.1f} {r['cells'] / r['wall'] / 1e6:>9.2f} "
              f"{r['peak']:>8.0f} {r['single']:>7.0f} {r['mb']:>8.1f}")
    mm = [r for r in rows if r["tool"] == "minemap"]
    big = mm[-1]
    for r in rows:
        if r["tool"] != "minemap" and r["size"] == big["size"]:
            print(f"minemap / {r['tool']}: {big['wall'] / r['wall']:.2f}"
                  + (f"  (minemap {r['wall'] / big['wall']:.2f}× faster)" if r["wall"] > big["wall"] else ""))
    if len(mm) > 1:
        per = [r["wall"] / r["cells"] * 1e9 for r in mm]
        print("seconds per 1e9 cells by size: " + ", ".join(f"{r['size']}: {p:.0f}" for r, p in zip(mm, per))
              + "  (flat = linear scaling)")


if __name__ == "__main__":
    main()
