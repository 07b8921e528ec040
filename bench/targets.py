"""`make bench`'s last table: issue #12's targets, each with its measured figure, goal and verdict.

Reads what the bench scripts of this run saved in BENCH_DIR (results-run.json from run_bench.py,
results-update.json from bench_update.py, results-start.json from bench_start.py); a target whose
figures are missing says so. Nothing is asserted: it is a table to read.

Usage: python bench/targets.py [--bench-dir /tmp/minemap-bench]
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path


def _load(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def targets(bench_dir: Path) -> list[tuple[str, str, str, str]]:
    """(target, measured, goal, verdict) rows."""
    rows: list[tuple[str, str, str, str]] = []
    run = _load(bench_dir / "results-run.json") or []
    by = {(r["size"], r["tool"]): r for r in run}
    floor = next((r for r in run if r["tool"] == "true write floor"), None)
    mm = by.get((floor["size"], "minemap")) if floor else None
    gdal = by.get((floor["size"], "GDAL CLI (P_c, E, R_e)")) if floor else None

    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("met" if ok else "NOT met")

    if mm and floor:
        ratio = mm["wall"] / floor["wall"]
        rows.append((f"1. full run / true floor ({mm['size']})", f"{mm['wall']:.1f} s / {floor['wall']:.1f} s = {ratio:.2f}",
                     "≤ 2", verdict(ratio <= 2)))
    else:
        rows.append(("1. full run / true floor", "not measured", "≤ 2", "n/a"))
    bare = by.get((floor["size"], "minemap, products only")) if floor else None
    if bare and floor:  # for reading beside target 1: the engine without maps, report, PDF and project
        rows.append((f"1. (products only) / true floor", f"{bare['wall']:.1f} s / {floor['wall']:.1f} s = "
                     f"{bare['wall'] / floor['wall']:.2f}", "(for reading)", "-"))
    if mm and gdal:
        speedup = gdal["wall"] / mm["wall"]
        rows.append((f"1. GDAL CLI / full run ({mm['size']})", f"{gdal['wall']:.1f} s / {mm['wall']:.1f} s = {speedup:.2f}×",
                     "≥ 6×", verdict(speedup >= 6)))
    for r in run:
        if r["tool"] == "minemap" and r.get("staged") and not math.isnan(r["staged"]):
            share = r["staged"] / r["out_total"] if r.get("out_total") else float("nan")
            rows.append((f"2. staging peak / output ({r['size']})", f"{r['staged']:.0f} MB / {r.get('out_total', 0):.0f} MB "
                         f"= {share:.2f}", "≤ 1.5", verdict(share <= 1.5 if not math.isnan(share) else None)))
    big = [r for r in run if r["tool"] == "minemap" and r["cells"] >= 900_000_000]
    if big and mm:
        b = big[0]
        per_big, per_mm = b["wall"] / b["cells"] * 1e9, mm["wall"] / mm["cells"] * 1e9
        rows.append((f"3. peak memory, {b['size']} ({b['cells'] / 1e9:.2f} G cells)", f"{b['peak'] / 1024:.2f} GB",
                     "≤ 3 GB", verdict(b["peak"] <= 3 * 1024)))
        rows.append((f"3. s per 1e9 cells, {b['size']} vs {mm['size']}", f"{per_big:.0f} vs {per_mm:.0f}",
                     "no worse", verdict(per_big <= per_mm)))
    else:
        rows.append(("3. a billion cells", "not run (add --sizes 110@3.5)", "≤ 3 GB, ≤ 1.5× staging", "n/a"))
    update = _load(bench_dir / "results-update.json")
    if update:
        share = 100 * update["update_s"] / update["full_s"]
        rows.append(("4. update after a 1 % tile / full run", f"{update['update_s']:.1f} s / {update['full_s']:.1f} s = "
                     f"{share:.1f} %", "≤ 5 %", verdict(share <= 5)))
    else:
        rows.append(("4. update / full run", "not measured", "≤ 5 %", "n/a"))
    start = _load(bench_dir / "results-start.json")
    if start:
        rows.append(("5. command start → first progress line", f"{start['first_line_s']:.2f} s", "≤ 1 s",
                     verdict(start["first_line_s"] <= 1)))
    else:
        rows.append(("5. first progress line", "not measured", "≤ 1 s", "n/a"))
    rows.append(("6. dask scheduler + 2 workers from the CLI", "tests/test_distributed_cli.py (identical outputs)",
                 "in a test", "met"))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bench-dir", type=Path, default=Path(os.environ.get("BENCH_DIR", "/tmp/minemap-bench")))
    rows = targets(ap.parse_args().bench_dir)
    widths = [max(len(r[k]) for r in rows) for k in range(4)]
    head = ("target", "measured", "goal", "verdict")
    widths = [max(w, len(h)) for w, h in zip(widths, head)]
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(x.ljust(w) for x, w in zip(r, widths)).rstrip())


if __name__ == "__main__":
    main()
