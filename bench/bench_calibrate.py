"""Calibration benchmark (issue #21 §6): `minemap calibrate` on the real Antioquia split at its
100 m grid (4 bandwidths × 3 L_sat + 3 distance decays; target ≤ 60 s on a 2-core machine) and on
the same data at 10 m with a 10 km bandwidth (a 2001² kernel window per record: it must complete).
Wall and CPU seconds, peak memory (the largest child so far) and the load average; one table with verdicts.

Usage: python bench/bench_calibrate.py  (from the repository root; writes only to a temp folder)
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 60.0


def calibrate(config: Path, *extra: str) -> tuple[float, float, float, int]:
    """Wall s, CPU s (user + system, children), peak RSS MB, exit code of one `minemap calibrate`."""
    data = config.parent
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "calibrate", str(config), "--events",
                           str(data / "events.gpkg"), "--extent", str(data / "heldout_blocks.gpkg"), *extra,
                           "--write", str(data / "fitted.toml")], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode:
        print(done.stderr, file=sys.stderr)
    return wall, cpu, after.ru_maxrss / 1024, done.returncode


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "real_data" / "antioquia", root / "real_data" / "antioquia")
        shutil.copytree(REPO / "grids", root / "grids")
        grid = (root / "grids" / "antioquia-100m.toml").read_text()
        (root / "grids" / "antioquia-10m.toml").write_text(
            grid.replace("resolution = 100", "resolution = 10").replace('"antioquia-100m"', '"antioquia-10m"')
            .replace("chunk = 512", "chunk = 2048"))
        config = root / "real_data" / "antioquia" / "minemap.toml"
        text = config.read_text()
        ten = config.with_name("minemap-10m.toml")
        ten.write_text(text.replace("antioquia-100m.toml", "antioquia-10m.toml").replace("bandwidth_m = 2000",
                                                                                          "bandwidth_m = 10000"))
        rows = [("100 m, 4 bandwidths × 3 L_sat + 3 decays", calibrate(config, "--bandwidths", "2000,5000,10000,20000")),
                ("10 m (141 M cells), 10 km bandwidth", calibrate(ten, "--bandwidths", "10000"))]
    load = os.getloadavg()[0]
    print(f"minemap calibrate on real_data/antioquia (load average {load:.1f}, {os.cpu_count()} cores)")
    print(f"{'case':44s} {'wall s':>7s} {'CPU s':>7s} {'peak MB':>8s}  verdict")
    for (name, (wall, cpu, mb, code)), target in zip(rows, (TARGET_S, None)):
        verdict = ("FAILED (exit %d)" % code if code else
                   f"{'MET' if wall <= target else 'NOT MET'} (≤ {target:g} s)" if target else "completes")
        print(f"{name:44s} {wall:7.1f} {cpu:7.1f} {mb:8.0f}  {verdict}")


if __name__ == "__main__":
    main()
