"""The field tasks as files for every tool a team uses, all written by GDAL (through pyogrio):

- tasks.gpkg (layer `tasks`, grid CRS): the task polygons with every column, for QGIS;
- tasks.csv: the same columns without geometry, for spreadsheets and IMSMA imports;
- tasks.geojson: the polygons in EPSG:4326 (RFC 7946), for web maps and phones;
- tasks.kml and tasks.gpx: one waypoint per task at its point (named by task ID, described by
  class, km², MGRS), for Google Earth and handheld GPS units.
"""

from __future__ import annotations

from concurrent.futures import Executor, Future
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from pyogrio import write_dataframe

from ..errors import InputError
from ..grid import Grid
from ..sources.geoms import load_frame
from ..summaries import GPKG_VERSION
from ..tasks import LONLAT, merge_tasks, tasking_for

TASK_FILES = {
    "tasks.gpkg": ("Field tasks", ["data"], "priority zones cut along the tasking grid ([tasks] max_km2): per task a "
                   "stable ID (MGRS square + part), zone, class, km² per class, mean probability, evidence, district, "
                   "point in x/y, lon/lat and MGRS, bbox, overlapping hazard IDs"),
    "tasks.csv": ("Field tasks (table)", ["data"], "the field tasks without geometry"),
    "tasks.geojson": ("Field tasks (GeoJSON)", ["data"], "the task polygons in EPSG:4326 (RFC 7946)"),
    "tasks.kml": ("Field tasks (KML)", ["data"], "one placemark per task at its point, named by task ID"),
    "tasks.gpx": ("Field tasks (GPX)", ["data"], "one waypoint per task at its point, named by task ID, for GPS units"),
}


def stage_tasks(staging: Path, parts: dict[str, dict], cfg, grid: Grid, district_names: list[str] | None,
                have: set[str], tables: dict, pool: Executor | None = None) -> tuple[list[str], dict | None, Future | None]:
    """tasks.* into `staging` from the summaries' parts and the run's zones (`tables`, which gets
    the task table as "tasks"); returns the files' names, run.json's `tasking` record and, with a
    `pool`, the files' writing there (the rest of the deliverables need only the table)."""
    tasking = tasking_for(cfg, grid)
    zones = tables.get("priority_zones")
    if tasking is None or zones is None:
        return [], None, None
    tasks = merge_tasks(parts, grid, tasking, zones, cfg.spec.products.risk_class.names, district_names,
                        "P_res" in have, _hazards(cfg, grid))
    tables["tasks"] = tasks
    writing = pool.submit(write_tasks, staging, tasks, grid.crs) if pool is not None else write_tasks(staging, tasks,
                                                                                                      grid.crs)
    record = {**tasking.describe(), "tasks": len(tasks), "squares": int(tasks["task_id"].str.rsplit("-", n=1).str[0]
                                                                      .nunique()) if len(tasks) else 0,
              "zones_tasked": int(tasks["zone"].nunique()) if len(tasks) else 0, "zones": len(zones),
              "largest_task_km2": float(tasks["area_km2"].max()) if len(tasks) else 0.0}
    return list(TASK_FILES), record, writing


def _hazards(cfg, grid: Grid) -> tuple[np.ndarray, np.ndarray] | None:
    """The [hazards] polygons (grid CRS) and their IDs when `id_field` names them, else None."""
    spec = cfg.spec.hazards
    if spec is None or not spec.id_field:
        return None
    problems: list = []
    path = cfg.resolve(spec.path)
    frame = load_frame(path, grid, spec.layer, spec.where, [spec.id_field], problems, source="the hazards layer",
                       allow_empty=True)
    if frame is None:  # read once already, for the direct evidence: only a file changed meanwhile gets here
        raise InputError(problems)
    return np.asarray(frame.geometry.values), np.asarray(frame[spec.id_field].values, dtype=object)


def descriptions(frame: pd.DataFrame, prob: str) -> list[str]:
    """Each waypoint's description: what a team lead reads on the GPS unit."""
    out = []
    for cls, km2, p, ref, zone, district in zip(frame["risk_class"], frame["area_km2"], frame[prob], frame["mgrs"],
                                                 frame["zone"], frame["district"]):
        chance = "" if pd.isna(p) else f", P {p:.2f}"
        where = f", {district}" if district else ""
        out.append(f"{cls}, {km2:.2f} km²{chance}, MGRS {ref}, zone {zone}{where}")
    return out


def write_tasks(staging: Path, tasks: gpd.GeoDataFrame, crs) -> None:
    """tasks.gpkg, .csv, .geojson, .kml, .gpx (see the module's docstring)."""
    for name in TASK_FILES:  # GDAL's CSV, KML and GPX drivers do not overwrite a file
        (staging / name).unlink(missing_ok=True)
    frame = tasks.set_crs(crs.to_wkt(), allow_override=True)
    write_dataframe(frame, staging / "tasks.gpkg", layer="tasks", driver="GPKG", promote_to_multi=True,
                    geometry_type="MultiPolygon", dataset_options={"VERSION": GPKG_VERSION})
    write_dataframe(pd.DataFrame(frame.drop(columns="geometry")), staging / "tasks.csv", driver="CSV")
    write_dataframe(frame.to_crs(LONLAT), staging / "tasks.geojson", layer="tasks", driver="GeoJSON",
                    promote_to_multi=True, geometry_type="MultiPolygon",
                    layer_options={"RFC7946": "YES", "WRITE_BBOX": "YES"})
    prob = "mean_residual" if "mean_residual" in frame else "mean_pc"
    points = gpd.GeoDataFrame({"name": frame["task_id"].astype(str),
                               "desc": descriptions(frame, prob)},
                              geometry=gpd.points_from_xy(frame["lon"], frame["lat"]), crs=LONLAT)
    write_dataframe(points, staging / "tasks.gpx", layer="waypoints", driver="GPX", geometry_type="Point")
    write_dataframe(points.rename(columns={"desc": "description"}), staging / "tasks.kml", layer="tasks",
                    driver="KML", geometry_type="Point",
                    dataset_options={"NameField": "name", "DescriptionField": "description"})
