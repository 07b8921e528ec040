"""Make the bundled SAMPLE DATA: synthetic, deterministic, plausible on a map of Karabakh.

Nothing here is survey data. District shapes, the former line of contact, mine records,
minefields, soils, drone flights and cleared areas are all invented (fixed seed), placed
roughly where they would lie so that maps look plausible. Run: `python sample_data/make_sample.py`.
"""

from __future__ import annotations

import csv
import os
from datetime import datetime, timezone
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from pyproj import Transformer
from rasterio.transform import from_origin
from shapely.geometry import LineString, Point, Polygon
from shapely.ops import voronoi_diagram

HERE = Path(__file__).resolve().parent
UTM = "EPSG:32638"
SEED = 20241125
TO_UTM = Transformer.from_crs("EPSG:4326", UTM, always_xy=True)

# A hand-drawn outline of the region (lon, lat), clockwise from Kalbajar's north-west corner.
OUTLINE = [(45.95, 40.35), (46.25, 40.40), (46.60, 40.30), (46.85, 40.30), (47.05, 40.22), (47.25, 40.15),
           (47.30, 39.95), (47.35, 39.75), (47.35, 39.60), (47.28, 39.45), (47.20, 39.36), (47.05, 39.38),
           (46.92, 39.30), (46.78, 39.20), (46.62, 39.08), (46.50, 39.12), (46.45, 39.30), (46.42, 39.45),
           (46.40, 39.62), (46.28, 39.80), (46.15, 39.95), (46.02, 40.08), (45.96, 40.20)]
SEATS = {"Kalbajar": (46.04, 40.10), "Lachin": (46.55, 39.64), "Gubadli": (46.58, 39.34),
         "Zangilan": (46.63, 39.16), "Jabrayil": (46.97, 39.40), "Fuzuli": (47.15, 39.60),
         "Aghdam": (46.93, 39.99), "Khojavend": (46.95, 39.70), "Shusha": (46.75, 39.76)}
# The former line of contact, north to south (Tartar – Aghdam – Fuzuli – Horadiz), lon/lat.
FRONT = [(46.80, 40.33), (46.93, 40.20), (47.08, 40.02), (47.12, 39.80), (47.20, 39.58), (47.05, 39.45),
         (46.98, 39.36)]
MINE_TYPES = ["PMN-2", "PMD-6", "OZM-72", "TM-57", "TM-62", "M15"]
SOILS = {  # class: (S_t, D, T_s, B_r, description)
    "mountain_meadow": (0.30, 0.25, 0.5, 0.85, "thin rocky mountain-meadow soils (Kalbajar, Lachin highlands)"),
    "mountain_forest_brown": (0.45, 0.35, 0.6, 0.90, "brown mountain-forest soils on wooded slopes"),
    "mountain_chestnut": (0.55, 0.45, 0.8, 0.70, "mountain chestnut soils of the foothills"),
    "grey_brown": (0.65, 0.55, 1.1, 0.55, "grey-brown soils of the dry Karabakh plain"),
    "meadow_chernozem": (0.70, 0.50, 0.9, 0.65, "meadow chernozem of the lower foothills"),
    "alluvial_meadow": (0.85, 0.65, 1.4, 0.60, "soft alluvial meadow soils of the Araz and Kondalanchay valleys"),
}
METHODS = {  # method: (E_f, D_i disturbance intensity from mechanical impact, R, description)
    "manual": (0.85, 0.30, 0.70, "manual deminers with detectors and prodders"),
    "mechanical": (0.70, 0.90, 0.45, "armoured flails and tillers: fast, churns the topsoil"),
    "dogs": (0.80, 0.20, 0.75, "mine detection dogs with manual follow-up"),
    "rats": (0.75, 0.15, 0.80, "mine detection rats: light, no ground disturbance"),
}
TOWNS = {"Aghdam": (46.93, 39.99), "Fuzuli": (47.15, 39.60), "Shusha": (46.75, 39.76), "Jabrayil": (47.03, 39.40)}


def utm(points: list[tuple[float, float]]) -> np.ndarray:
    lon, lat = np.array(points).T
    return np.column_stack(TO_UTM.transform(lon, lat))


def to_lonlat(geoms: np.ndarray) -> np.ndarray:
    back = Transformer.from_crs(UTM, "EPSG:4326", always_xy=True)
    return shapely.transform(geoms, lambda xy: np.column_stack(back.transform(xy[:, 0], xy[:, 1])))


def write(frame: gpd.GeoDataFrame, name: str) -> None:
    path = HERE / f"{name}.gpkg"
    path.unlink(missing_ok=True)
    frame.to_file(path, layer=name, driver="GPKG")


def region_utm() -> Polygon:
    return Polygon(utm(OUTLINE)).buffer(0)


def districts(region: Polygon) -> gpd.GeoDataFrame:
    """Voronoi cells of the district seats, clipped to the outline."""
    seats = utm(list(SEATS.values()))
    cells = voronoi_diagram(shapely.MultiPoint(seats), envelope=region.buffer(50_000))
    rows = []
    for name, xy in zip(SEATS, seats):
        cell = next(c for c in cells.geoms if c.contains(Point(xy)))
        rows.append({"name": name, "seat_lon": SEATS[name][0], "seat_lat": SEATS[name][1],
                     "geometry": cell.intersection(region)})
    frame = gpd.GeoDataFrame(rows, crs=UTM)
    frame["geometry"] = to_lonlat(frame.geometry.values)
    return frame.set_crs("EPSG:4326", allow_override=True)


def along_front(rng: np.random.Generator, n: int, sd_m: float) -> np.ndarray:
    """n points near the front line: uniform along it, normal across it."""
    line = LineString(utm(FRONT))
    s = rng.uniform(0, line.length, n)
    base = shapely.get_coordinates(shapely.line_interpolate_point(line, s))
    ahead = shapely.get_coordinates(shapely.line_interpolate_point(line, np.minimum(s + 10, line.length)))
    d = ahead - base
    normal = np.column_stack([-d[:, 1], d[:, 0]]) / np.maximum(np.hypot(*d.T), 1e-9)[:, None]
    return base + normal * rng.normal(0, sd_m, n)[:, None]


def inside(region: Polygon, xy: np.ndarray) -> np.ndarray:
    return shapely.contains_xy(region, xy[:, 0], xy[:, 1])


def mine_records(rng: np.random.Generator, region: Polygon) -> gpd.GeoDataFrame:
    xy = along_front(rng, 1600, 1500)
    minx, miny, maxx, maxy = region.bounds
    scatter = np.column_stack([rng.uniform(minx, maxx, 600), rng.uniform(miny, maxy, 600)])
    xy = np.vstack([xy[inside(region, xy)][:1350], scatter[inside(region, scatter)][:150]])
    n = len(xy)
    count = np.minimum(1 + rng.pareto(1.6, n) * 4, 80).astype(int)
    anti_tank = rng.random(n) < 0.3
    mine_type = np.where(anti_tank, rng.choice(MINE_TYPES[3:], n), rng.choice(MINE_TYPES[:3], n))
    year = np.where(rng.random(n) < 0.8, rng.integers(1992, 1995, n), rng.integers(1995, 2021, n))
    frame = gpd.GeoDataFrame({"record_id": np.arange(1, n + 1), "mine_type": mine_type, "count": count,
                              "year": year}, geometry=to_lonlat(shapely.points(xy)), crs="EPSG:4326")
    return frame


def rotated_rect(cx: float, cy: float, length: float, width: float, angle: float) -> Polygon:
    c, s = np.cos(angle), np.sin(angle)
    corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [length / 2, width / 2]
    return Polygon(corners @ np.array([[c, s], [-s, c]]) + [cx, cy])


def minefields(rng: np.random.Generator, region: Polygon) -> gpd.GeoDataFrame:
    line = LineString(utm(FRONT))
    rows = []
    for k, s in enumerate(np.linspace(0.04, 0.96, 12) * line.length):
        p, q = line.interpolate(s), line.interpolate(min(s + 50, line.length))
        angle = np.arctan2(q.y - p.y, q.x - p.x)
        offset = rng.normal(0, 800)
        cx, cy = p.x - np.sin(angle) * offset, p.y + np.cos(angle) * offset
        poly = rotated_rect(cx, cy, rng.uniform(300, 1500), rng.uniform(80, 300), angle).intersection(region)
        rows.append({"field_id": k + 1, "mine_type": str(rng.choice(MINE_TYPES)), "count": int(rng.integers(50, 600)),
                     "year": int(rng.integers(1992, 1995)), "geometry": poly})
    return gpd.GeoDataFrame(rows, crs=UTM)


def soils(rng: np.random.Generator, region: Polygon) -> gpd.GeoDataFrame:
    """A Voronoi tessellation; class from a west→east 'elevation' proxy, alluvium in the south-east."""
    minx, miny, maxx, maxy = region.bounds
    seeds = np.column_stack([rng.uniform(minx, maxx, 140), rng.uniform(miny, maxy, 140)])
    cells = shapely.get_parts(voronoi_diagram(shapely.MultiPoint(seeds), envelope=region.buffer(5000)))
    pieces = shapely.intersection(cells, region)
    keep = ~shapely.is_empty(pieces)
    pieces = pieces[keep]
    c = shapely.get_coordinates(shapely.centroid(pieces))
    east = (c[:, 0] - minx) / (maxx - minx)
    south = (maxy - c[:, 1]) / (maxy - miny)
    height = 1 - east + rng.normal(0, 0.12, len(c))
    names = list(SOILS)
    idx = np.digitize(height, [0.35, 0.5, 0.62, 0.75, 0.88])  # 0 lowland … 5 high mountain
    order = ["grey_brown", "meadow_chernozem", "mountain_chestnut", "mountain_forest_brown", "mountain_forest_brown",
             "mountain_meadow"]
    cls = np.array([order[i] for i in idx], dtype=object)
    cls[(south > 0.75) & (east > 0.45)] = "alluvial_meadow"
    cls[(east > 0.8) & (south > 0.4) & (rng.random(len(c)) < 0.5)] = "alluvial_meadow"
    assert set(cls) == set(names), set(names) - set(cls)
    frame = gpd.GeoDataFrame({"soil_class": cls}, geometry=to_lonlat(pieces), crs="EPSG:4326")
    return frame.explode(index_parts=False).reset_index(drop=True)


def cleared_areas(rng: np.random.Generator, region: Polygon) -> gpd.GeoDataFrame:
    towns = utm(list(TOWNS.values()))
    near_front = along_front(rng, 200, 1200)
    centres = np.vstack([near_front[inside(region, near_front)][:25],
                         towns[rng.integers(0, len(towns), 20)] + rng.normal(0, 1500, (20, 2))])
    rows = []
    for k, (x, y) in enumerate(centres):
        if k % 6 == 0:  # small plots, smaller than a 100 m cell
            length, width = rng.uniform(30, 60), rng.uniform(30, 60)
        else:
            side = np.exp(rng.uniform(np.log(150), np.log(2000)))
            length, width = side, side * rng.uniform(0.4, 1.0)
        poly = rotated_rect(x, y, length, width, rng.uniform(0, np.pi)).intersection(region)
        if poly.is_empty:
            continue
        day = datetime(2021, 1, 1) + (datetime(2025, 10, 31) - datetime(2021, 1, 1)) * rng.random()
        rows.append({"area_id": k + 1, "method": str(rng.choice(list(METHODS), p=[0.45, 0.3, 0.15, 0.1])),
                     "cleared_on": day.date().isoformat(), "area_ha": round(poly.area / 1e4, 3), "geometry": poly})
    return gpd.GeoDataFrame(rows, crs=UTM)


# Districts the synthetic mine-record survey covered (records known complete there); the
# mountain districts of Kalbajar and Lachin were not surveyed: their records are incomplete.
SURVEYED = ["Gubadli", "Zangilan", "Jabrayil", "Fuzuli", "Aghdam", "Khojavend", "Shusha"]


def survey_extent(district_frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """The area where the mine records are known to be complete: the surveyed districts' union."""
    area = shapely.union_all(district_frame[district_frame["name"].isin(SURVEYED)].geometry.values)
    return gpd.GeoDataFrame({"survey": ["mine-record survey (synthetic)"], "completed_on": ["2023-12-15"]},
                            geometry=[area], crs=district_frame.crs)


def release(cleared: gpd.GeoDataFrame, region: Polygon) -> gpd.GeoDataFrame:
    """IMAS land release: most cleared areas as `cleared`, plus reduced and cancelled land near Fuzuli
    (where records are densest) and Jabrayil. Own seed: the other files do not change with it."""
    rng = np.random.default_rng(SEED + 14)
    rows = [{"release_id": int(r.area_id), "status": "cleared", "released_on": r.cleared_on, "geometry": r.geometry}
            for r in cleared.itertuples() if rng.random() < 0.7]
    fuzuli, jabrayil = utm([TOWNS["Fuzuli"]])[0], utm([TOWNS["Jabrayil"]])[0]
    sites = [("reduced", fuzuli + (1500, -800), 1800, 900), ("reduced", fuzuli + (-2500, 1500), 1400, 1000),
             ("cleared", fuzuli + (600, 900), 900, 600), ("cancelled", fuzuli + (-4500, -3000), 3000, 2000),
             ("cancelled", jabrayil + (2000, 2500), 2500, 1800), ("reduced", jabrayil + (-1500, 1000), 1200, 700)]
    for k, (status, (x, y), length, width) in enumerate(sites):
        poly = rotated_rect(x, y, length, width, rng.uniform(0, np.pi)).intersection(region)
        day = datetime(2023, 1, 1) + (datetime(2025, 10, 31) - datetime(2023, 1, 1)) * rng.random()
        rows.append({"release_id": 1000 + k, "status": status, "released_on": day.date().isoformat(), "geometry": poly})
    return gpd.GeoDataFrame(rows, crs=UTM)


def anomaly(x: np.ndarray, y: np.ndarray, mines_xy: np.ndarray, rng: np.random.Generator, gain: float) -> np.ndarray:
    """Detector intensity: background noise plus Gaussian blobs around recorded mines."""
    field = 0.05 + 0.12 * rng.random(x.shape)
    near = mines_xy[(mines_xy[:, 0] > x.min() - 2000) & (mines_xy[:, 0] < x.max() + 2000)
                    & (mines_xy[:, 1] > y.min() - 2000) & (mines_xy[:, 1] < y.max() + 2000)]
    for mx, my in near:
        field += gain * np.exp(-((x - mx) ** 2 + (y - my) ** 2) / (2 * 350.0**2))
    return np.clip(field, 0, 1)


def drone(rng: np.random.Generator, mines_xy: np.ndarray, name: str, crs: str, centre_ll: tuple[float, float],
          size_m: tuple[float, float], res: float, dtype: str, nodata: float, when: str, gain: float) -> None:
    """One flight: an elliptical footprint around `centre_ll`, pixels in `crs`."""
    to_crs = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    to_utm = Transformer.from_crs(crs, UTM, always_xy=True)
    cx, cy = to_crs.transform(*centre_ll)
    metres = 1.0 if crs != "EPSG:4326" else 1 / 111_000
    half_w, half_h = size_m[0] / 2 * metres / np.cos(np.radians(centre_ll[1])) ** (crs == "EPSG:4326"), size_m[1] / 2 * metres
    w, h = int(2 * half_w / res), int(2 * half_h / res)
    left, top = cx - half_w, cy + half_h
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    px, py = left + cols * res, top - rows * res
    ux, uy = to_utm.transform(px, py)
    value = anomaly(ux, uy, mines_xy, rng, gain)
    ex, ey = (px - cx) / half_w, (py - cy) / half_h
    angle = 0.5
    inside_ellipse = ((ex * np.cos(angle) + ey * np.sin(angle)) / 1.0) ** 2 + ((ey * np.cos(angle) - ex * np.sin(angle)) / 0.75) ** 2 < 1
    if dtype == "uint8":
        # read back as value / 255 (scale = "auto"); 255 is nodata, so the top valid code is 254
        data = np.where(inside_ellipse, np.minimum(np.round(value * 255), 254), nodata).astype(np.uint8)
    else:
        data = np.where(inside_ellipse, value, nodata).astype(np.float32)
    path = HERE / "drone" / name
    path.parent.mkdir(exist_ok=True)
    profile = {"driver": "GTiff", "width": w, "height": h, "count": 1, "dtype": dtype, "crs": crs,
               "transform": from_origin(left, top, res, res), "nodata": nodata, "tiled": True,
               "blockxsize": 256, "blockysize": 256, "compress": "deflate"}
    with rasterio.open(path, "w", **profile) as ds:
        ds.write(data, 1)
        ds.update_tags(TIFFTAG_DATETIME=when, MINEMAP_SAMPLE="synthetic drone anomaly intensity, not survey data")
    t = datetime.strptime(when, "%Y:%m:%d %H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    os.utime(path, (t, t))


def tables() -> None:
    """Class tables as CSV, quoted where a description holds a comma (QGIS and pandas read them right)."""
    write_csv("soil_classes.csv", ["soil_class", "S_t", "D", "T_s", "B_r", "description"],
              [[k, *v] for k, v in SOILS.items()])
    write_csv("clearance_methods.csv", ["method", "E_f", "D_i", "R", "description"],
              [[k, *v] for k, v in METHODS.items()])


def write_csv(name: str, header: list[str], rows: list[list]) -> None:
    with (HERE / name).open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def main() -> None:
    rng = np.random.default_rng(SEED)
    region = region_utm()
    district_frame = districts(region)
    write(district_frame, "districts")
    mines = mine_records(rng, region)
    write(mines, "mine_records")
    write(minefields(rng, region), "minefields")
    write(soils(rng, region), "soil")
    cleared = cleared_areas(rng, region)
    write(cleared, "cleared_areas")
    tables()
    mines_xy = utm(list(zip(mines.geometry.x, mines.geometry.y)))
    drone(rng, mines_xy, "2024-05-12_aghdam.tif", UTM, (47.00, 40.08), (12_000, 10_000), 20.0, "uint8", 255,
          "2024:05:12 09:30:00", 0.12)
    drone(rng, mines_xy, "2024-09-03_fuzuli.tif", "EPSG:4326", (47.16, 39.62), (15_000, 12_000), 0.0003, "float32",
          float("nan"), "2024:09:03 10:15:00", 0.10)
    drone(rng, mines_xy, "2025-04-20_fuzuli_north.tif", "EPSG:32639", (47.14, 39.70), (10_000, 10_000), 15.0,
          "float32", -1.0, "2025:04:20 08:45:00", 0.14)
    write(survey_extent(district_frame), "survey_extent")
    write(release(cleared, region), "release")
    for p in sorted(HERE.rglob("*")):
        if p.is_file() and p.suffix in (".gpkg", ".csv", ".tif"):
            print(f"{p.relative_to(HERE)}  {p.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
