"""Regenerate this example (deterministic): two real Azerbaijan districts from geoBoundaries
(CC BY-SA 3.0, see README.md) and SYNTHETIC mine records inside them.

Run from the repository: `python examples/new_region/make_example.py SOURCE.gpkg`, where SOURCE is
geoBoundaries-AZE-ADM2_simplified.gpkg (layer `adm2`). The records are made up: not survey data.
"""

from __future__ import annotations

import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely

HERE = Path(__file__).parent
DISTRICTS = ("Zangilan District", "Qubadli District")


def main(source: Path) -> None:
    adm2 = gpd.read_file(source, layer="adm2")
    two = adm2[adm2["shapeName"].isin(DISTRICTS)].sort_values("shapeName").reset_index(drop=True)
    pyogrio.write_dataframe(two, HERE / "districts.gpkg", layer="districts", driver="GPKG",
                            dataset_options={"VERSION": "1.2"})
    rng = np.random.default_rng(22)
    utm = two.to_crs("EPSG:32638")
    area = shapely.union_all(utm.geometry.values)
    rows = []
    centres = []
    while len(centres) < 6:  # six clusters of records, as along a former line of contact
        x, y = rng.uniform(area.bounds[0], area.bounds[2]), rng.uniform(area.bounds[1], area.bounds[3])
        if area.buffer(-2000).contains(shapely.Point(x, y)):
            centres.append((x, y))
    for k, (cx, cy) in enumerate(centres):
        for _ in range(int(rng.integers(6, 14))):
            x, y = cx + rng.normal(0, 800), cy + rng.normal(0, 800)
            if area.contains(shapely.Point(x, y)):
                rows.append((x, y, int(rng.integers(1, 12)), ["AP mine", "AT mine", "UXO"][int(rng.integers(0, 3))]))
    xy = gpd.GeoSeries(gpd.points_from_xy([r[0] for r in rows], [r[1] for r in rows]), crs="EPSG:32638")
    lonlat = xy.to_crs("EPSG:4326")
    with open(HERE / "records_SYNTHETIC.csv", "w", encoding="utf-8") as f:
        f.write("record_id,Longitude,Latitude,count,item_type,recorded_on,source\n")
        for i, ((_, _, n, kind), p) in enumerate(zip(rows, lonlat)):
            day = 1 + int(rng.integers(0, 28))
            f.write(f"SYN-{i + 1:03d},{p.x:.6f},{p.y:.6f},{n},{kind},2021-0{1 + i % 9}-{day:02d},SYNTHETIC\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
