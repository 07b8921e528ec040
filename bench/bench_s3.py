"""Object storage against a local disk (issue #23): the sample region at 10 m (grids/karabakh-10m.toml),
once with its inputs and OUT on this machine's disk, once with both in a local S3-compatible server
(moto's server mode on 127.0.0.1, tests/s3server.py); prints both wall times (nothing asserted).

The server keeps every object in its own memory and answers from one Python process, so the bucket run
measures minemap's object-storage path (listing, ranged reads, the chunks' uploads, the COGs streamed in
parts, the pointers) plus that server's cost, not a real store's network.

Usage: python bench/bench_s3.py [--grid grids/karabakh-10m.toml] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from s3server import LocalS3, with_env  # noqa: E402

PATH_LINE = re.compile(r'^(path|table|extent) = .*$', re.M)  # a path, or a list of them


def in_bucket(line: str, base: str) -> str:
    """A config line with each quoted path (before any comment) made a URL under `base`."""
    value, hash_, comment = line.partition("#")
    return re.sub(r'"([^"]+)"', lambda m: f'"{base}/{m.group(1)}"', value) + hash_ + comment


def minemap(args: list[str], env: dict) -> float:
    """Wall seconds of one `minemap` command (the CLI: worker processes for a large grid)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline.cli", *args, "--quiet"], check=True, env=env, cwd=ROOT)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", default="grids/karabakh-10m.toml", help="grid file, relative to the repository")
    ap.add_argument("--workers", type=int, default=None)
    a = ap.parse_args()
    extra = ["--workers", str(a.workers)] if a.workers else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    config = ROOT / "sample_data" / "minemap.toml"
    with tempfile.TemporaryDirectory(prefix="minemap-bench-s3-") as tmp, LocalS3() as s3:
        tmp = Path(tmp)
        local = minemap(["run", str(config), "--grid", str(ROOT / a.grid), "--out", str(tmp / "local"), *extra], env)
        up = time.perf_counter()
        s3.upload_tree(ROOT / "sample_data", "sample_data")
        s3.upload_tree(ROOT / "grids", "grids")
        upload = time.perf_counter() - up
        base = f"s3://{s3.bucket}/sample_data"
        text = PATH_LINE.sub(lambda m: in_bucket(m.group(0), base), config.read_text())
        text = re.sub(r'^grid = "[^"]+"', f'grid = "s3://{s3.bucket}/{a.grid}"', text, flags=re.M)
        cloud = tmp / "cloud.toml"
        cloud.write_text(text)
        remote = minemap(["run", str(cloud), "--out", f"s3://{s3.bucket}/out", *extra], with_env(s3) | {
            "PYTHONPATH": env["PYTHONPATH"]})
        record = json.loads(s3.client().get_object(Bucket=s3.bucket, Key="out/run.json")["Body"].read())
        size = sum(f["size"] for f in record["set"]["files"].values())
        steps = {"local": json.loads((tmp / "local" / "run.json").read_text())["timings"], "bucket": record["timings"]}
        g = record["grid"]
    cells = g["shape"][0] * g["shape"][1]
    print(f"\nObject storage (issue #23): the sample region on {Path(a.grid).stem}, {cells / 1e6:.0f} M cells a layer")
    print("| run | wall s | ratio |")
    print("|---|---|---|")
    print(f"| inputs and OUT on local disk | {local:.1f} | 1.00 |")
    print(f"| inputs and OUT in a local S3 server (moto; {size / 1e6:.0f} MB published) | {remote:.1f} | "
          f"{remote / local:.2f} |")
    print(f"(uploading the inputs first: {upload:.1f} s, not counted)")
    keys = ("load_s", "compute_s", "cog_s", "deliverables_s", "total_s")
    for where, t in steps.items():  # the run records' own timings (total_s: before the publish)
        print(f"  {where}: " + ", ".join(f"{k} {t[k]:.1f}" for k in keys if isinstance(t.get(k), (int, float))))


if __name__ == "__main__":
    main()
