"""Start-up benchmark (issue #12, target 5): seconds from starting `minemap run` on the bundled
sample to its first line, and to its exit, median of N runs into fresh temporary folders; and
what `python -X importtime` counts for the command's imports. Prints one table (nothing asserted).

Usage: python bench/bench_start.py [--runs 5] [--command "minemap"]
(default command: this Python's `-m pipeline.cli`, the code the venv's `minemap` runs).
"""

from __future__ import annotations

import argparse
import json
import os
import selectors
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "minemap.toml"
TARGET_S = 1.0  # issue #12: ≤ 1 s from command start to the first progress line


def first_line_and_exit(command: list[str], out: Path) -> tuple[float, float, str]:
    """Seconds to the first line on stdout or stderr, seconds to exit, and that line."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([*command, "run", str(SAMPLE), "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    first, line = None, ""
    with selectors.DefaultSelector() as sel:
        for stream in (proc.stdout, proc.stderr):
            sel.register(stream, selectors.EVENT_READ)
        while sel.get_map():
            for key, _ in sel.select():
                text = key.fileobj.readline()
                if not text:
                    sel.unregister(key.fileobj)
                elif first is None:
                    first, line = time.perf_counter() - t0, text.decode(errors="replace").strip()
    if proc.wait() != 0:
        sys.exit(f"{shlex.join(command)} run {SAMPLE} exited with {proc.returncode}")
    return first if first is not None else float("nan"), time.perf_counter() - t0, line


def import_ms(modules: str) -> float:
    """Milliseconds `python -X importtime` counts for importing `modules` (its top-level imports summed)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {modules}"], capture_output=True,
                          text=True, check=True)
    rows = [line.split("|") for line in done.stderr.splitlines() if line.startswith("import time:")][1:]
    return sum(int(cumulative) for _, cumulative, name in rows if not name.startswith("  ")) / 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--command", default=f"{shlex.quote(sys.executable)} -m pipeline.cli",
                    help="how to start minemap (default: %(default)s)")
    ap.add_argument("--bench-dir", type=Path, default=Path(os.environ.get("BENCH_DIR", "/tmp/minemap-bench")),
                    help="where results-start.json goes (for bench/targets.py)")
    args = ap.parse_args()
    command = shlex.split(args.command)
    firsts, exits = [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="minemap-start-") as tmp:
            first, total, line = first_line_and_exit(command, Path(tmp) / "out")
        firsts.append(first)
        exits.append(total)
    first = statistics.median(firsts)
    print(f"\nStart-up, `minemap run` on the sample ({args.runs} runs, median; first line: {line!r})\n")
    print(f"{'measure':<44} {'value':>10}  {'target':>8}  verdict")
    print(f"{'to the first line (s)':<44} {first:>10.2f}  {'≤ ' + format(TARGET_S, 'g'):>8}  "
          f"{'met' if first <= TARGET_S else 'NOT met'}")
    print(f"{'to exit (s)':<44} {statistics.median(exits):>10.2f}")
    print(f"{'first line, fastest / slowest run (s)':<44} {min(firsts):>5.2f} / {max(firsts):.2f}")
    print(f"{'import pipeline.cli (ms, -X importtime)':<44} {import_ms('pipeline.cli'):>10.0f}")
    print(f"{'imports before the first line (ms)':<44} "
          f"{import_ms('pipeline.cli, pipeline.config, pipeline.grid'):>10.0f}")
    args.bench_dir.mkdir(parents=True, exist_ok=True)
    (args.bench_dir / "results-start.json").write_text(json.dumps(
        {"first_line_s": first, "exit_s": statistics.median(exits), "runs": args.runs, "first_lines": firsts}))


if __name__ == "__main__":
    main()
