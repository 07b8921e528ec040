"""evidence.gpkg: how long writing it takes for the sample's vector evidence and for the sample with
25,000 point records (README *For the team*); prints one table (nothing asserted).

Usage: python bench/bench_evidence.py [--records 25000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

from pipeline.deliverables import input_users  # noqa: E402
from pipeline.engine.plan import load_inputs  # noqa: E402
from pipeline.evidence import EVIDENCE, evidence_plan, write_evidence  # noqa: E402


def sample_copy(root: Path, records: int) -> Path:
    """The sample (data and grids) under `root`, its mine records replaced by `records` random
    points in the region when `records` > 0; returns its config."""
    shutil.copytree(REPO / "sample_data", root / "sample_data", ignore=shutil.ignore_patterns("*.py", "*.md"))
    shutil.copytree(REPO / "grids", root / "grids")
    if records:
        districts = gpd.read_file(root / "sample_data" / "districts.gpkg").to_crs("EPSG:32638")
        area = shapely.union_all(districts.geometry.values)
        rng = np.random.default_rng(25)
        x0, y0, x1, y1 = area.bounds
        xy = np.empty((0, 2))
        while len(xy) < records:
            cand = rng.uniform((x0, y0), (x1, y1), size=(records, 2))
            xy = np.vstack([xy, cand[shapely.contains_xy(area, cand[:, 0], cand[:, 1])]])
        xy = xy[:records]
        frame = gpd.GeoDataFrame({"count": rng.integers(1, 20, records), "id": np.arange(records)},
                                 geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]), crs="EPSG:32638")
        pyogrio.write_dataframe(frame, root / "sample_data" / "mine_records.gpkg", driver="GPKG")
    return root / "sample_data" / "minemap.toml"


def measure(records: int, repeat: int) -> tuple[int, float]:
    """(features written, best seconds of `repeat` writes of evidence.gpkg)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = sample_copy(Path(tmp), records)
        inputs = load_inputs(config)
        plan = evidence_plan(inputs.cfg, input_users(inputs.layers), bundle_rasters=False)
        best = float("inf")
        for i in range(repeat):
            staging = Path(tmp) / f"staging{i}"
            staging.mkdir()
            start = time.perf_counter()
            write_evidence(staging, inputs.cfg, inputs.grid, plan)
            best = min(best, time.perf_counter() - start)
        path = staging / EVIDENCE
        features = sum(pyogrio.read_info(path, layer=name)["features"] for name, _ in pyogrio.list_layers(path))
    return features, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=25_000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    print("| evidence | features in evidence.gpkg | write, best of %d (s) |" % args.repeat)
    print("|---|---|---|")
    for label, n in [("the sample", 0), (f"the sample, {args.records:,} point records", args.records)]:
        features, seconds = measure(n, args.repeat)
        print(f"| {label} | {features:,} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
