"""Make the Antioquia evaluation sample from RELand's real cells (cells.gpkg, MIT; see README.md).

Deterministic, no randomness: the grid `grids/antioquia-100m.toml` is cut into 20 km blocks
from its north-west corner (the blocks `minemap evaluate --cv-block-km 20` uses) and the blocks
are split like a chequerboard (heldout_blocks.gpkg: the held-out ones). Mine cells (`mines_outcome` = 1) of the "record" blocks become the
mine records the map is made from; every known cell (1 or 0) of the other, held-out blocks is an
event to evaluate against. Unknown cells (-1) are neither. Run from the repository root:
`python real_data/antioquia/make_antioquia.py`.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from pipeline.evaluate.metrics import block_ids
from pipeline.grid import load_grid

HERE = Path(__file__).resolve().parent
GRID = HERE.parents[1] / "grids" / "antioquia-100m.toml"
BLOCK_KM = 20.0
HALF_CELL_DEG = 0.008983 / 2  # RELand's cells are ~1 km (0.008983°) squares around each point


def main() -> None:
    cells = gpd.read_file(HERE / "cells.gpkg")
    x, y = cells.geometry.x.to_numpy(), cells.geometry.y.to_numpy()
    squares = shapely.box(x - HALF_CELL_DEG, y - HALF_CELL_DEG, x + HALF_CELL_DEG, y + HALF_CELL_DEG)
    region = shapely.union_all(shapely.set_precision(squares, 1e-6))
    gpd.GeoDataFrame({"name": ["RELand eastern Antioquia"]}, geometry=[region], crs=4326).to_file(
        HERE / "region.gpkg", driver="GPKG")
    grid = load_grid(GRID)
    utm = cells.to_crs(grid.crs.to_wkt())
    col, row = ~grid.geobox.affine @ (utm.geometry.x.to_numpy(), utm.geometry.y.to_numpy())
    blocks = block_ids(np.floor(row).astype(int), np.floor(col).astype(int), int(BLOCK_KM * 1000 / grid.resolution))
    heldout = ((blocks >> 32) + (blocks & 0xFFFFFFFF)) % 2 == 1  # chequerboard on (block row, block col)
    outcome = cells["mines_outcome"].to_numpy()
    records = cells[~heldout & (outcome == 1)]
    gpd.GeoDataFrame({"count": np.ones(len(records), int), "municipio": records["municipio"].to_numpy()},
                     geometry=records.geometry.values, crs=4326).to_file(HERE / "mine_records.gpkg", driver="GPKG")
    events = cells[heldout & (outcome >= 0)]
    gpd.GeoDataFrame({"outcome": events["mines_outcome"].to_numpy(), "municipio": events["municipio"].to_numpy()},
                     geometry=events.geometry.values, crs=4326).to_file(HERE / "events.gpkg", driver="GPKG")
    n = int(BLOCK_KM * 1000 / grid.resolution)
    ny, nx = -(-grid.shape[0] // n), -(-grid.shape[1] // n)
    squares, ids = [], []
    for br in range(ny):
        for bc in range(nx):
            if (br + bc) % 2 == 1:
                x0, y0 = grid.geobox.affine @ (bc * n, br * n)
                x1, y1 = grid.geobox.affine @ ((bc + 1) * n, (br + 1) * n)
                squares.append(shapely.box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
                ids.append(f"{br},{bc}")
    gpd.GeoDataFrame({"block": ids}, geometry=squares, crs=grid.crs.to_wkt()).to_file(
        HERE / "heldout_blocks.gpkg", driver="GPKG")
    print(f"{len(records)} mine records in record blocks; {len(events)} events "
          f"({int((events['mines_outcome'] == 1).sum())} positive) in held-out blocks")


if __name__ == "__main__":
    main()
