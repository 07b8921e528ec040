"""Make SYNTHETIC inputs at operational scale for `make bench` (not committed; written to DEST).

A square region of SIZE km in UTM 38N over Karabakh, 10 m grid: at 110 km that is ~121 M cells,
≥ 5,000 soil polygons, 20,000 mine records, 300 minefields, 2,000 cleared areas and 20 drone tiles
at 2 m in mixed CRS. Smaller sizes keep the densities per km² (counts scale with area), so
timings at several sizes show how the pipeline scales. Deterministic (fixed seed).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from pyproj import Transformer
from rasterio.transform import from_origin
from scipy.ndimage import zoom

UTM = "EPSG:32638"
X0, Y0 = 560_000.0, 4_330_000.0  # lower-left corner: about 46.3 E, 39.1 N
FULL_KM = 110.0
PER_FULL = {"soil": 5000, "mines": 20000, "minefields": 300, "cleared": 2000, "drone": 20}
SOIL = {"mountain_meadow": (0.30, 0.25, 0.5, 0.85), "mountain_forest_brown": (0.45, 0.35, 0.6, 0.90),
        "mountain_chestnut": (0.55, 0.45, 0.8, 0.70), "grey_brown": (0.65, 0.55, 1.1, 0.55),
        "meadow_chernozem": (0.70, 0.50, 0.9, 0.65), "alluvial_meadow": (0.85, 0.65, 1.4, 0.60)}
METHODS = {"manual": (0.85, 0.95, 0.70), "mechanical": (0.70, 0.60, 0.45), "dogs": (0.80, 0.98, 0.75),
           "rats": (0.75, 1.00, 0.80)}
DISTRICTS = ["Kalbajar", "Aghdam", "Khojavend", "Lachin", "Shusha", "Fuzuli", "Gubadli", "Zangilan", "Jabrayil"]


def counts(size_km: float) -> dict[str, int]:
    share = (size_km / FULL_KM) ** 2
    return {k: max(2, round(v * share)) for k, v in PER_FULL.items()}


def save(frame: gpd.GeoDataFrame, dest: Path, name: str) -> None:
    frame.to_file(dest / f"{name}.gpkg", layer=name, driver="GPKG")


def rectangles(cx, cy, length, width, angle) -> np.ndarray:
    """Rotated rectangles, vectorised."""
    c, s = np.cos(angle), np.sin(angle)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1], [-1, -1]], dtype=float)
    dx = corners[None, :, 0] * (length / 2)[:, None]
    dy = corners[None, :, 1] * (width / 2)[:, None]
    x = cx[:, None] + dx * c[:, None] - dy * s[:, None]
    y = cy[:, None] + dx * s[:, None] + dy * c[:, None]
    return shapely.polygons(np.stack([x, y], axis=-1))


def front_x(y: np.ndarray, size: float) -> np.ndarray:
    """A wavy north–south line of contact a little east of the region's middle."""
    return X0 + size * (0.6 + 0.08 * np.sin(2 * np.pi * (y - Y0) / size * 1.5))


def make(dest: Path, size_km: float, res: float) -> None:
    rng = np.random.default_rng(20241125)
    size = size_km * 1000
    n = counts(size_km)
    dest.mkdir(parents=True, exist_ok=True)
    region = shapely.box(X0, Y0, X0 + size, Y0 + size)
    third = size / 3
    boxes = [shapely.box(X0 + i * third, Y0 + size - (j + 1) * third, X0 + (i + 1) * third, Y0 + size - j * third)
             for j in range(3) for i in range(3)]
    save(gpd.GeoDataFrame({"name": DISTRICTS}, geometry=boxes, crs=UTM), dest, "districts")

    seeds = shapely.points(rng.uniform(X0, X0 + size, n["soil"]), rng.uniform(Y0, Y0 + size, n["soil"]))
    cells = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=region))
    cells = shapely.intersection(cells, region)
    cx = shapely.get_coordinates(shapely.centroid(cells))[:, 0]
    height = 1 - (cx - X0) / size + rng.normal(0, 0.1, len(cells))
    classes = np.array(list(SOIL))[5 - np.digitize(height, [0.2, 0.35, 0.5, 0.65, 0.8])]  # high west → low east
    save(gpd.GeoDataFrame({"soil_class": classes}, geometry=cells, crs=UTM), dest, "soil")
    (dest / "soil_classes.csv").write_text("soil_class,S_t,D,T_s,B_r\n" + "".join(
        f"{k},{a},{b},{c},{d}\n" for k, (a, b, c, d) in SOIL.items()))

    k = n["mines"]
    y = rng.uniform(Y0, Y0 + size, k)
    x = front_x(y, size) + rng.normal(0, 1500, k)
    scatter = rng.random(k) < 0.1
    x[scatter] = rng.uniform(X0, X0 + size, scatter.sum())
    x = np.clip(x, X0 + 1, X0 + size - 1)
    mines = gpd.GeoDataFrame({"mine_type": rng.choice(["PMN-2", "PMD-6", "OZM-72", "TM-57", "TM-62", "M15"], k),
                              "count": np.minimum(1 + rng.pareto(1.6, k) * 4, 80).astype(int),
                              "year": rng.integers(1992, 2021, k)}, geometry=shapely.points(x, y), crs=UTM)
    save(mines, dest, "mine_records")

    k = n["minefields"]
    y = rng.uniform(Y0 + 2000, Y0 + size - 2000, k)
    fields = rectangles(front_x(y, size) + rng.normal(0, 800, k), y, rng.uniform(300, 1500, k),
                        rng.uniform(80, 300, k), np.full(k, np.pi / 2) + rng.normal(0, 0.2, k))
    save(gpd.GeoDataFrame({"count": rng.integers(50, 600, k)}, geometry=fields, crs=UTM), dest, "minefields")

    k = n["cleared"]
    y = rng.uniform(Y0 + 1000, Y0 + size - 1000, k)
    side = np.exp(rng.uniform(np.log(40), np.log(900), k))
    cleared = rectangles(np.clip(front_x(y, size) + rng.normal(0, 4000, k), X0 + 1000, X0 + size - 1000), y, side,
                         side * rng.uniform(0.4, 1, k), rng.uniform(0, np.pi, k))
    save(gpd.GeoDataFrame({"method": rng.choice(list(METHODS), k)}, geometry=cleared, crs=UTM), dest,
         "cleared_areas")
    (dest / "clearance_methods.csv").write_text("method,E_f,D_i,R\n" + "".join(
        f"{m},{a},{b},{c}\n" for m, (a, b, c) in METHODS.items()))

    drone_dir = dest / "drone"
    drone_dir.mkdir(exist_ok=True)
    for i in range(n["drone"]):
        crs = ["EPSG:32638", "EPSG:32638", "EPSG:32639", "EPSG:4326"][i % 4]
        cy = rng.uniform(Y0 + 3000, Y0 + size - 3000)
        cx = float(np.clip(front_x(np.array([cy]), size)[0] + rng.normal(0, 3000), X0 + 3000, X0 + size - 3000))
        write_drone(drone_dir / f"tile_{i:02d}.tif", cx, cy, crs, rng, f"2025:{1 + i % 12:02d}:{1 + i % 28:02d} 10:00:00")

    (dest / "grid.toml").write_text(f'name = "bench-{size_km:g}km"\ncrs = "{UTM}"\nresolution = {res:g}\n'
                                    f'chunk = 2048\n[region]\npath = "districts.gpkg"\n')
    (dest / "minemap.toml").write_text(CONFIG)
    (dest / "README.txt").write_text("SYNTHETIC benchmark inputs made by minemap's bench/make_large_inputs.py; "
                                     "not survey data.\n")


def write_drone(path: Path, cx: float, cy: float, crs: str, rng: np.random.Generator, when: str) -> None:
    """A 5 × 5 km flight at ~2 m: smooth anomaly field, uint8 0–254, nodata 255 outside an ellipse."""
    px = 2500
    if crs == "EPSG:4326":
        lon, lat = Transformer.from_crs(UTM, crs, always_xy=True).transform(cx, cy)
        res = 2.0 / 111_000
        left, top = lon - px / 2 * res / math.cos(math.radians(lat)), lat + px / 2 * res
        transform = from_origin(left, top, res / math.cos(math.radians(lat)), res)
    else:
        x, y = Transformer.from_crs(UTM, crs, always_xy=True).transform(cx, cy)
        transform = from_origin(x - px, y + px, 2.0, 2.0)
    coarse = rng.random((26, 26)).astype(np.float32)
    field = np.clip(zoom(coarse, px / 26, order=1)[:px, :px] ** 3 * 1.2, 0, 1)
    r, c = np.ogrid[:px, :px]
    inside = ((r - px / 2) / (px / 2)) ** 2 + ((c - px / 2) / (px / 2.4)) ** 2 < 1
    data = np.where(inside, np.round(field * 254), 255).astype(np.uint8)
    profile = {"driver": "GTiff", "width": px, "height": px, "count": 1, "dtype": "uint8", "crs": crs,
               "transform": transform, "nodata": 255, "tiled": True, "blockxsize": 512, "blockysize": 512,
               "compress": "zstd"}
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, 1)
        ds.update_tags(TIFFTAG_DATETIME=when)


CONFIG = """# SYNTHETIC benchmark run (bench/make_large_inputs.py)
grid = "grid.toml"
[inputs.L]
kind = "density"
path = ["mine_records.gpkg", "minefields.gpkg"]
bandwidth_m = 1000
[inputs.S_t]
kind = "polygons"
path = "soil.gpkg"
class_field = "soil_class"
table = "soil_classes.csv"
[inputs.V_i]
kind = "raster"
path = "drone/*.tif"
[inputs.D]
kind = "polygons"
path = "soil.gpkg"
class_field = "soil_class"
table = "soil_classes.csv"
[inputs.C]
kind = "coverage"
path = "cleared_areas.gpkg"
units = "percent"
[inputs.R]
kind = "polygons"
path = "cleared_areas.gpkg"
class_field = "method"
table = "clearance_methods.csv"
all_touched = true
fill = 0
[inputs.A_c]
kind = "coverage"
path = "cleared_areas.gpkg"
units = "km2"
[inputs.B_r]
kind = "polygons"
path = "soil.gpkg"
class_field = "soil_class"
table = "soil_classes.csv"
[inputs.T_s]
kind = "polygons"
path = "soil.gpkg"
class_field = "soil_class"
table = "soil_classes.csv"
[inputs.E_f]
kind = "polygons"
path = "cleared_areas.gpkg"
class_field = "method"
table = "clearance_methods.csv"
all_touched = true
[inputs.D_i]
kind = "polygons"
path = "cleared_areas.gpkg"
class_field = "method"
table = "clearance_methods.csv"
all_touched = true
[districts]
path = "districts.gpkg"
name_field = "name"
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("dest", type=Path)
    ap.add_argument("--size-km", type=float, default=FULL_KM)
    ap.add_argument("--res", type=float, default=10.0)
    args = ap.parse_args()
    t0 = time.perf_counter()
    make(args.dest, args.size_km, args.res)
    total = sum(p.stat().st_size for p in args.dest.rglob("*") if p.is_file())
    print(f"{args.dest}: {counts(args.size_km)} in {time.perf_counter() - t0:.1f} s, {total / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
