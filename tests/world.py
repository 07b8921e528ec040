"""A tiny hand-checkable world for tests: a 10 × 10 km square in UTM 38N at 100 m cells.

The region is x 500 000–510 000, y 4 400 000–4 410 000 (EPSG:32638): 100 × 100 cells, cell
(row r, col c) has its lower-left corner at (500 000 + 100 c, 4 410 000 − 100 (r + 1)).
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import Point, box

CRS = "EPSG:32638"
X0, Y0, X1, Y1 = 500_000.0, 4_400_000.0, 510_000.0, 4_410_000.0
CELL = 100.0

SOIL_TABLE = """soil_class,S_t,D,T_s,B_r
sand,0.8,0.5,1.0,0.6
rock,0.2,0.1,2.0,0.9
"""
METHOD_TABLE = """method,E_f,D_i,R
manual,0.9,1.0,0.8
mechanical,0.7,0.5,0.4
"""


def cell_box(row: int, col: int):
    """The square of cell (row, col)."""
    x = X0 + CELL * col
    y = Y1 - CELL * (row + 1)
    return box(x, y, x + CELL, y + CELL)


def write_gpkg(path: Path, records: list[dict], crs: str = CRS) -> Path:
    gpd.GeoDataFrame(records, geometry="geometry", crs=crs).to_file(path, driver="GPKG")
    return path


def write_raster(path: Path, data: np.ndarray, left: float, top: float, res: float, crs: str | None,
                 nodata=None, tags: dict | None = None) -> Path:
    profile = {"driver": "GTiff", "width": data.shape[1], "height": data.shape[0], "count": 1,
               "dtype": str(data.dtype), "transform": from_origin(left, top, res, res), "nodata": nodata}
    if crs:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, 1)
        if tags:
            ds.update_tags(**tags)
    return path


def make_world(root: Path, chunk: int = 512, drone: bool = True) -> Path:
    """Write the tiny world's inputs, grid and config under `root`; return the config path."""
    root.mkdir(parents=True, exist_ok=True)
    write_gpkg(root / "region.gpkg", [{"name": "square", "geometry": box(X0, Y0, X1, Y1)}])
    # west half sand, east half rock
    write_gpkg(root / "soil.gpkg", [
        {"soil_class": "sand", "geometry": box(X0, Y0, X0 + 5000, Y1)},
        {"soil_class": "rock", "geometry": box(X0 + 5000, Y0, X1, Y1)},
    ])
    (root / "soil.csv").write_text(SOIL_TABLE)
    (root / "methods.csv").write_text(METHOD_TABLE)
    # 100 mines at one point in the middle of cell (50, 50)
    write_gpkg(root / "mines.gpkg", [{"count": 100, "geometry": Point(X0 + 5050, Y1 - 5050)}])
    # cleared: cell (10, 10) fully (manual); cell (10, 20) west half (mechanical)
    write_gpkg(root / "cleared.gpkg", [
        {"method": "manual", "geometry": cell_box(10, 10)},
        {"method": "mechanical", "geometry": box(X0 + 2000, Y1 - 1100, X0 + 2050, Y1 - 1000)},
    ])
    if drone:
        (root / "drone").mkdir(exist_ok=True)
        # 20 m pixels covering cells rows 0–9, cols 0–9 (a 1 km square in the north-west), value 0.6
        write_raster(root / "drone" / "a.tif", np.full((50, 50), 0.6, np.float32), X0, Y1, 20.0, CRS,
                     nodata=-1.0, tags={"TIFFTAG_DATETIME": "2024:05:01 10:00:00"})
    (root / "grid.toml").write_text(f"""name = "square"
crs = "{CRS}"
resolution = {CELL}
chunk = {chunk}
[region]
path = "region.gpkg"
""")
    config = root / "config.toml"
    config.write_text(CONFIG)
    return config


CONFIG = """grid = "grid.toml"
[products.contamination_probability]
L_sat = 50.0
[inputs.L]
kind = "density"
path = "mines.gpkg"
bandwidth_m = 50     # smaller than a cell: all of a record's mines stay in its cell
[inputs.S_t]
kind = "polygons"
path = "soil.gpkg"
class_field = "soil_class"
table = "soil.csv"
[inputs.V_i]
kind = "raster"
path = "drone/*.tif"
[inputs.D]
kind = "polygons"
path = "soil.gpkg"
class_field = "soil_class"
table = "soil.csv"
[inputs.C]
kind = "coverage"
path = "cleared.gpkg"
units = "percent"
[inputs.R]
kind = "polygons"
path = "cleared.gpkg"
class_field = "method"
table = "methods.csv"
all_touched = true
fill = 0
[inputs.A_c]
kind = "coverage"
path = "cleared.gpkg"
units = "site_km2"   # each cell takes the area of the cleared site holding its centre
[inputs.B_r]
kind = "polygons"
path = "soil.gpkg"
class_field = "soil_class"
table = "soil.csv"
[inputs.T_s]
kind = "polygons"
path = "soil.gpkg"
class_field = "soil_class"
table = "soil.csv"
[inputs.E_f]
kind = "polygons"
path = "cleared.gpkg"
class_field = "method"
table = "methods.csv"
all_touched = true
[inputs.D_i]
kind = "polygons"
path = "cleared.gpkg"
class_field = "method"
table = "methods.csv"
all_touched = true
"""
