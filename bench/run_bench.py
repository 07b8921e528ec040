"""`make bench`: minemap against a GDAL command-line baseline and the true write floor.

Prints one table per run (nothing is asserted): wall seconds, cells per second, peak resident
memory of the whole process tree, peak staging disk, output sizes, and the ratios minemap / GDAL
and minemap / floor; saves them to BENCH_DIR/results-run.json for bench/targets.py.
Sizes are region edges in km on the 10 m grid, or KM@M for another cell size: `--sizes 110@3.5`
is the 110 km region at 3.5 m (~1 G cells a layer, same inputs).
Inputs are synthetic (bench/make_large_inputs.py), generated once into BENCH_DIR (outside the repo).
"""

from __future__ import annotations

import argparse
import json
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

HERE = Path(__file__).resolve().parent

def timed(cmd: list[str], staging_in: Path | None = None, **kw) -> tuple[float, float, float, float]:
    """Wall seconds, peak resident MB of the whole process tree (the command and every process it
    starts, summed, sampled every 50 ms), of its largest single process (measured by the kernel),
    and peak MB in the staging folders under `staging_in` (sampled every 200 ms)."""
    os.sync()  # no earlier step's dirty pages written back on this command's time
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = psutil.Popen(cmd, **kw)
    tree, staged, k = 0, 0, 0
    while proc.poll() is None:
        tree = max(tree, _tree_rss(proc))
        if staging_in is not None and k % 4 == 0:
            staged = max(staged, _staged_bytes(staging_in))
        k += 1
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the largest any single child reached: only meaningful if it grew
    single = (peak if peak > before else float("nan")) / 1024
    return wall, max(tree / 2**20, single), single, staged / 1e6


def _staged_bytes(out: Path) -> int:
    """Bytes in OUT/.staging-* (the run's staging), not counting hard links to published files."""
    total = 0
    for staging in out.glob(".staging-*"):
        for root, _, files in os.walk(staging):
            for name in files:
                try:
                    st = os.lstat(os.path.join(root, name))
                except OSError:
                    continue  # went while we looked
                if st.st_nlink == 1:
                    total += st.st_blocks * 512
    return total


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


def tree_mb(path: Path) -> float:
    """MB of every file a run left in `path` (what a user gets: the whole output folder)."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def dir_mb(path: Path, names: list[str]) -> float:
    return sum((path / n).stat().st_size for n in names if (path / n).exists()) / 1e6


def true_floor(out: Path, scratch: Path, products: list[str]) -> float:
    """Seconds to write the very pixels minemap published (every product, every overview level,
    read back into memory first, untimed) as 512-tiled GeoTIFFs with the same codec and
    predictor, GDAL's threads on, nothing computed: the floor for writing these outputs."""
    levels = []
    for name in products:
        with rasterio.open(out / f"{name}.tif") as ds:
            prof = ds.profile
            count = len(ds.overviews(1))
        for k in range(count + 1):
            with rasterio.open(out / f"{name}.tif", **({"OVERVIEW_LEVEL": k - 1} if k else {})) as ds:
                levels.append((f"{name}.{k}", ds.read(1), ds.crs, ds.transform, prof))
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    os.sync()
    t0 = time.perf_counter()
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):
        for name, data, crs, transform, prof in levels:
            opts = {"compress": prof["compress"], "predictor": 3 if data.dtype.kind == "f" else 2}
            if prof["compress"].lower() in ("zstd", "deflate"):
                opts[f"{prof['compress'].lower()}_level"] = 1 if prof["compress"].lower() == "zstd" else 6
            with rasterio.open(scratch / f"{name}.tif", "w", driver="GTiff", width=data.shape[1], height=data.shape[0],
                               count=1, dtype=data.dtype, crs=crs, transform=transform, nodata=prof["nodata"],
                               tiled=True, blockxsize=512, blockysize=512, **opts) as ds:
                ds.write(data, 1)
    return time.perf_counter() - t0


def parse_size(text: str) -> tuple[float, float]:
    """"110" → (110 km, 10 m); "110@3.5" → (110 km, 3.5 m)."""
    km, _, res = text.partition("@")
    return float(km), float(res or 10)


def label(km: float, res: float) -> str:
    return f"{km:g} km" + ("" if res == 10 else f" @{res:g} m")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bench-dir", type=Path, default=Path(os.environ.get("BENCH_DIR", "/tmp/minemap-bench")))
    ap.add_argument("--sizes", nargs="+", default=["35", "70", "110"],
                    help="region edge in km (10 m cells), or KM@M for M-metre cells, e.g. 110@3.5")
    ap.add_argument("--no-gdal", action="store_true", help="skip the GDAL baseline")
    args = ap.parse_args()
    minemap = shutil.which("minemap") or str(Path(sys.executable).parent / "minemap")
    sizes = [parse_size(s) for s in args.sizes]
    floor_at = max((s for s in sizes if s[1] == 10), default=None)  # floor and GDAL: the largest 10 m size
    rows = []
    for km, res in sizes:
        inputs = ensure_inputs(args.bench_dir / f"inputs-{km:g}km", km)
        out = args.bench_dir / (f"out-minemap-{km:g}km" + ("" if res == 10 else f"-{res:g}m"))
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        grid = []
        if res != 10:
            grid_file = inputs / f"grid-{res:g}m.toml"
            grid_file.write_text((inputs / "grid.toml").read_text().replace("resolution = 10", f"resolution = {res:g}"))
            grid = ["--grid", str(grid_file)]
        wall, peak, single, staged = timed([minemap, "run", str(inputs / "minemap.toml"), "--out", str(out), "--quiet",
                                            *grid], staging_in=out)
        record = json.loads((out / "run.json").read_text())
        products = list(record["products"])
        with rasterio.open(out / f"{products[0]}.tif") as ds:
            cells = ds.width * ds.height
        row = {"size": label(km, res), "cells": cells, "tool": "minemap", "wall": wall, "peak": peak, "single": single,
               "staged": staged, "mb": dir_mb(out, [f"{p}.tif" for p in products]), "out_total": tree_mb(out),
               "timings": record.get("timings", {})}
        rows.append(row)
        if (km, res) == floor_at:
            # the same run with `[output] deliverables = false`: the products only (no maps, report, PDF,
            # project), to read the engine against the floor apart from what the floor does not draw
            bare = inputs / "minemap-products-only.toml"
            bare.write_text((inputs / "minemap.toml").read_text() + "\n[output]\ndeliverables = false\n")
            bare_out = args.bench_dir / f"out-minemap-{km:g}km-products-only"
            shutil.rmtree(bare_out, ignore_errors=True)
            bwall, bpeak, bsingle, bstaged = timed([minemap, "run", str(bare), "--out", str(bare_out), "--quiet"],
                                                   staging_in=bare_out)
            rows.append({"size": row["size"], "cells": cells, "tool": "minemap, products only", "wall": bwall,
                         "peak": bpeak, "single": bsingle, "staged": bstaged,
                         "mb": dir_mb(bare_out, [f"{p}.tif" for p in products]),
                         "timings": json.loads((bare_out / "run.json").read_text()).get("timings", {})})
            floor = true_floor(out, args.bench_dir / "floor", products)
            rows.append({"size": row["size"], "cells": cells, "tool": "true write floor", "wall": floor,
                         "peak": float("nan"), "single": float("nan"), "staged": float("nan"),
                         "mb": sum(p.stat().st_size for p in (args.bench_dir / "floor").glob("*.tif")) / 1e6})
            if not args.no_gdal and shutil.which("gdal_calc.py"):
                gout = args.bench_dir / f"out-gdal-{km:g}km"
                shutil.rmtree(gout, ignore_errors=True)
                gwall, gpeak, gsingle, _ = timed(["bash", str(HERE / "gdal_baseline.sh"), str(inputs), str(gout)])
                rows.append({"size": row["size"], "cells": cells, "tool": "GDAL CLI (P_c, E, R_e)", "wall": gwall,
                             "peak": gpeak, "single": gsingle, "staged": float("nan"),
                             "mb": dir_mb(gout, [p.name for p in gout.glob("*.tif")])})
    print_table(rows)
    (args.bench_dir / "results-run.json").write_text(json.dumps(rows, indent=1, default=str))


def print_table(rows: list[dict]) -> None:
    print(f"\n{'size':>14} {'cells':>13} {'tool':<24} {'wall s':>8} {'Mcells/s':>9} {'peak MB':>8} {'1 proc':>7} "
          f"{'staged MB':>9} {'out MB':>8}")
    for r in rows:
        print(f"{r['size']:>14} {r['cells']:>13,} {r['tool']:<24} {r['wall']:>8.1f} {r['cells'] / r['wall'] / 1e6:>9.2f} "
              f"{r['peak']:>8.0f} {r['single']:>7.0f} {r['staged']:>9.0f} {r['mb']:>8.1f}")
    mm = [r for r in rows if r["tool"] == "minemap"]
    floor_size = next((r["size"] for r in rows if r["tool"] == "true write floor"), mm[-1]["size"])
    big = next(r for r in mm if r["size"] == floor_size)
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
