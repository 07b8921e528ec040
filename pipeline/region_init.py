"""`minemap init`: a grid definition and a commented config for a new region, from the files a GIS
officer has (a boundary, records, perhaps a soil map and drone rasters), so the first `validate`
passes and the first `run` completes.

Everything is checked before anything is written: a refused input leaves the folder as it was.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
from pandas.api.types import is_string_dtype
from odc.geo.geom import Geometry

from .errors import InputError, OutputError, Problem
from .grid import FILE_TILE, make_grid
from .guard import MAX_CELLS
from .vector import POLYGONS, PointColumns, field_names, geometry_type_problem, polygonal, read_vector, to_crs

GRID_FILE, CONFIG_FILE, SOIL_TABLE = "grid.toml", "minemap.toml", "soil_classes.csv"
# a records field holding counts, by usual name (ignoring case); none: every record counts 1
COUNT_NAMES = ("count", "mines", "mine_count", "items", "item_count", "quantity", "qty", "number", "devices")
NAME_HINTS = ("name", "district", "adm2", "shapename")  # district name fields, most likely first
SOIL_HINTS = ("soil", "class", "type", "texture", "unit")
PLACEHOLDER = 0.5


@dataclass
class Recipe:
    """What the given files allow, found out before anything is written."""

    name: str
    slug: str
    cell: float
    epsg: int
    zone: str  # "38N"
    centre: tuple[float, float]  # lon, lat of the region's centroid
    shape: tuple[int, int]  # rows, cols of the grid
    chunk: int
    region: Path
    region_layer: str | None
    name_field: str | None
    name_note: str  # name-like fields passed over, and why
    records: Path | None = None
    records_crs: str | None = None  # of a CSV's coordinate columns
    count_field: str | None = None  # None: `count = 1`
    soil: Path | None = None
    soil_field: str | None = None
    soil_classes: list[str] = field(default_factory=list)
    drones: str | None = None
    drone_files: int = 0
    label: str | None = None


def utm_epsg(lon: float, lat: float) -> tuple[int, str]:
    """The WGS 84 / UTM zone holding (lon, lat): EPSG 326zz north of the equator, 327zz south."""
    zone = min(int(math.floor((lon + 180.0) / 6.0)) + 1, 60)
    return (32600 if lat >= 0 else 32700) + zone, f"{zone}{'N' if lat >= 0 else 'S'}"


def slug(text: str) -> str:
    """A grid name from a region name: "East Zangezur" → "east-zangezur"."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "region"


def chunk_for(cell: float) -> int:
    """Chunk edge in cells as in grids/*.toml: 512 at 100 m (51 km), 2048 at 10 m (20 km)."""
    return 512 if cell >= 50 else 2048


def plan(region: Path, name: str, cell: float = 100.0, region_layer: str | None = None,
         records: Path | None = None, soil: Path | None = None, soil_field: str | None = None,
         drones: str | None = None, label: str | None = None, records_crs: str | None = None) -> Recipe:
    """Read and check every given file; InputError lists all that is wrong with them."""
    if records is None and drones is None:
        raise InputError("a map needs evidence: give --records (mine records: CSV with lon/lat columns, or a "
                         "vector file) and/or --drones (anomaly rasters)", region)
    frame = _region_frame(region, region_layer)
    lonlat = polygonal(to_crs(frame, "EPSG:4326", region, "lon/lat").geometry.union_all())
    lon, lat = lonlat.centroid.x, lonlat.centroid.y
    epsg, zone = utm_epsg(lon, lat)
    union = polygonal(to_crs(frame, f"EPSG:{epsg}", region).geometry.make_valid().union_all())
    if union.is_empty or union.area == 0:
        raise InputError("region boundary has no polygon area", region)
    grid = make_grid(slug(name), f"EPSG:{epsg}", cell, Geometry(union, crs=f"EPSG:{epsg}"),
                     chunk=chunk_for(cell), source=str(region))
    recipe = Recipe(name, f"{slug(name)}-{cell:g}m", cell, epsg, zone, (lon, lat), grid.shape, grid.chunk, region,
                    region_layer, *_name_field(frame), label=label)
    problems: list[Problem] = []
    if records is not None:
        recipe.records, recipe.records_crs = records, records_crs
        recipe.count_field = _count_field(records, records_crs, problems)
    if soil is not None:
        recipe.soil = soil
        recipe.soil_field, recipe.soil_classes = _soil_classes(soil, soil_field, problems)
    if drones is not None:
        recipe.drones, recipe.drone_files = drones, len(glob.glob(drones))
        if not recipe.drone_files:
            problems.append(Problem(drones, "no file matches --drones (quote the pattern: --drones 'flights/*.tif')"))
    if problems:
        raise InputError(problems)
    return recipe


def _region_frame(path: Path, layer: str | None) -> gpd.GeoDataFrame:
    frame = read_vector(path, layer=layer)
    if frame.crs is None:
        raise InputError("region boundary has no CRS (add a .prj or write it with a CRS)", path)
    if len(frame) == 0:
        raise InputError("region boundary has no features", path)
    if msg := geometry_type_problem(frame, POLYGONS, "a region boundary"):
        raise InputError(msg, path)
    return frame


def _name_field(frame: gpd.GeoDataFrame) -> tuple[str | None, str]:
    """A text field naming each district once (minemap refuses repeated district names), or None;
    and a note naming the name-like fields passed over because a name repeats in them."""
    texts = [c for c in frame.columns if c != frame.geometry.name and is_string_dtype(frame[c])]
    unique = [c for c in texts if frame[c].notna().all() and frame[c].astype(str).str.strip().ne("").all()
              and frame[c].is_unique]
    rank = {c: next((i for i, h in enumerate(NAME_HINTS) if h in c.lower()), 99) for c in texts}
    ranked = sorted(unique, key=rank.get)
    repeated = [c for c in texts if c not in unique and rank[c] < 99]
    note = ", ".join(f"{c!r} repeats {frame[c][frame[c].duplicated()].astype(str).iloc[0]!r}"
                     for c in repeated if frame[c].duplicated().any())
    return (ranked[0] if ranked else None), note


def _count_field(path: Path, crs: str | None, problems: list[Problem]) -> str | None:
    """The records' count field (a usual name, numeric), or None: each record counts 1."""
    try:
        frame = read_vector(path, points=PointColumns(crs=crs))
    except InputError as e:
        problems.extend(e.problems)
        return None
    if len(frame) == 0:
        problems.append(Problem(str(path), "holds no records"))
        return None
    lower = {c.lower(): c for c in frame.columns if c != frame.geometry.name}
    for name in COUNT_NAMES:
        if name in lower:
            try:
                frame[lower[name]].astype("float64")
                return lower[name]
            except (TypeError, ValueError):
                continue
    return None


def _soil_classes(path: Path, soil_field: str | None, problems: list[Problem]) -> tuple[str | None, list[str]]:
    """The soil layer's class field (--soil-field, or the one text field that looks like it) and its
    classes as the table must list them."""
    try:
        frame = read_vector(path)
    except InputError as e:
        problems.extend(e.problems)
        return None, []
    if msg := geometry_type_problem(frame, POLYGONS, "a soil map"):
        problems.append(Problem(str(path), msg))
        return None, []
    fields = field_names(path)
    if soil_field is None:
        texts = [c for c in fields if is_string_dtype(frame[c])]
        hinted = [c for c in texts if any(h in c.lower() for h in SOIL_HINTS)]
        pick = hinted if len(hinted) == 1 else texts if len(texts) == 1 else []
        if not pick:
            problems.append(Problem(str(path), f"which field holds the soil class? give --soil-field "
                                               f"(fields: {', '.join(fields) or 'none'})"))
            return None, []
        soil_field = pick[0]
    elif soil_field not in fields:
        problems.append(Problem(str(path), f"has no field {soil_field!r} (fields: {', '.join(fields) or 'none'})"))
        return None, []
    classes = sorted(set(frame[soil_field].dropna().astype(str).str.strip()) - {""})
    if not classes:
        problems.append(Problem(str(path), f"field {soil_field!r} holds no class"))
    return soil_field, classes


# --- writing --------------------------------------------------------------------------------------

def write(recipe: Recipe, out: Path, force: bool = False) -> list[Path]:
    """Write the grid, the config and (with soil) the class table into `out`; refuse to replace
    an existing file unless `force`. Returns the files written."""
    files = {out / GRID_FILE: grid_text(recipe, out), out / CONFIG_FILE: config_text(recipe, out)}
    if recipe.soil is not None:
        files[out / SOIL_TABLE] = soil_table(recipe)
    existing = [p for p in files if p.exists()]
    if existing and not force:
        raise OutputError([Problem(str(p), "exists: give --force to replace it") for p in existing])
    try:
        out.mkdir(parents=True, exist_ok=True)
        for path, text in files.items():
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, path)
    except OSError as e:
        raise OutputError(f"cannot write: {e.strerror or e}", out) from None
    return list(files)


def _rel(path: Path, out: Path) -> str:
    """`path` as the written files name it: relative to `out` when near it (they travel together),
    else absolute; with / on every system."""
    rel = Path(os.path.relpath(path.resolve(), out.resolve()))
    return (rel if rel.parts[:3] != ("..",) * 3 else path.resolve()).as_posix()


def _s(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)


def grid_text(r: Recipe, out: Path) -> str:
    rows, cols = r.shape
    layer = f"layer = {_s(r.region_layer)}\n" if r.region_layer else ""
    return f"""# {r.name} at {r.cell:g} m, written by `minemap init`: {cols} × {rows} cells, {r.chunk}-cell chunks.
# Cells are {r.cell:g} m squares in WGS 84 / UTM zone {r.zone} (EPSG:{r.epsg}, the zone of the region's centroid,
# {r.centre[0]:.3f}° E {r.centre[1]:.3f}° N) whose edges fall on multiples of {r.cell:g} m.
name = {_s(r.slug)}
crs = "EPSG:{r.epsg}"
resolution = {r.cell:g}
origin = [0, 0]
chunk = {r.chunk}          # cells per processing chunk edge (a multiple of the {FILE_TILE}-cell GeoTIFF tile)

[region]
path = {_s(_rel(r.region, out))}   # union of all features is the region
{layer}# where = "name IN ('A', 'B')"   # optional OGR SQL filter
"""


def weights(r: Recipe) -> tuple[list[float], str]:
    """w_H, w_S, w_V for the evidence the files give, and what to change once the soil table holds
    real values (placeholders never weigh in P_c)."""
    has_l, has_v = r.records is not None, r.drones is not None
    w = [0.5, 0.0, 0.5] if has_l and has_v else [1.0, 0.0, 0.0] if has_l else [0.0, 0.0, 1.0]
    later = ""
    if r.soil is not None:
        later = ("once soil_classes.csv holds your values: weights = "
                 + ("[0.34, 0.33, 0.33]" if has_l and has_v else "[0.5, 0.5, 0]" if has_l else "[0, 0.5, 0.5]"))
    return w, later


def evidence_words(r: Recipe) -> str:
    """The evidence P_c is made of, in words."""
    parts = ["mine records"] if r.records is not None else []
    if r.drones is not None:
        parts.append("drone anomaly rasters")
    return " and ".join(parts)


def recipe_words(r: Recipe) -> str:
    text = evidence_words(r)
    if r.soil is not None:
        text += " (soil bound, weight 0 until its table is filled)"
    return text


def config_text(r: Recipe, out: Path) -> str:
    w, later = weights(r)
    label = r.label or f"{r.name}: P_c from {evidence_words(r)} only"
    lines = [f"""# minemap run configuration for {r.name}, written by `minemap init` ({recipe_words(r)}).
# Paths are relative to this file. Check it: minemap validate {CONFIG_FILE}; then: minemap run {CONFIG_FILE} --out out
grid = {_s(GRID_FILE)}
label = {_s(label)}   # on every map, the report and every page of briefing.pdf

[products.contamination_probability]
# P_c = w_H·H_m + w_S·S_t + w_V·V_i; a layer of weight 0 is not evidence and need not be bound
weights = [{', '.join(f'{x:g}' for x in w)}]{f'   # {later}' if later else ''}
L_sat = "auto"       # mines/km² at which H_m = min(L / L_sat, 1) reaches 1; "auto": the 90th percentile of L
                     # at the records themselves (or a number, e.g. 50)

[products.risk_class]  # class k holds thresholds[k-1] ≤ P_c < thresholds[k]
thresholds = [0.3, 0.45, 0.6]
names = ["low", "medium", "high", "very high"]
# min_evidence = 2   # cells with fewer evidence layers are "insufficient evidence" (capped at the layers bound)

[products.priority_zones]  # priority_zones.gpkg: connected cells of this class or above
from_class = "high"
min_area_km2 = {5 * r.cell * r.cell / 1e6:g}   # leave out zones smaller than 5 cells
"""]
    if r.records is not None:
        count = (f"count_field = {_s(r.count_field)}" if r.count_field else
                 "count = 1            # no count field found: every record counts one item "
                 "(or count_field = \"FIELD\")")
        if r.records_crs:
            count += f"\ncrs = {_s(r.records_crs)}   # of the CSV's coordinate columns"
        lines.append(f"""{_rule("Mine records → L (mines per km²) → H_m")}
[inputs.L]
kind = "density"
path = {_s(_rel(r.records, out))}   # a CSV's lon/lat (or x/y with crs = "EPSG:…") columns are found by name
{count}
bandwidth_m = {max(1000.0, 5 * r.cell):g}   # radius of each record's kernel (m)
# extent = "surveyed_area.gpkg"   # where the records are known complete: outside it L is unknown, not 0.
#                                 # Without it, no record reads as no mine (validate and run warn).
""")
    if r.soil is not None:
        lines.append(f"""{_rule("Soil map → S_t (soil susceptibility)")}
# {SOIL_TABLE} lists the {len(r.soil_classes)} classes of {r.soil.name} with PLACEHOLDER values ({PLACEHOLDER:g}):
# fill in S_t (0–1) per class from your survey, then raise w_S in `weights` above. Until then S_t weighs 0.
[inputs.S_t]
kind = "polygons"
path = {_s(_rel(r.soil, out))}
class_field = {_s(r.soil_field)}
table = {_s(SOIL_TABLE)}
""")
    if r.drones is not None:
        lines.append(f"""{_rule("Drone anomaly rasters → V_i")}
[inputs.V_i]
kind = "raster"
path = {_s(_rel_glob(r.drones, out))}   # mosaicked, newest acquisition on top
resampling = "auto"  # average when the drone pixels are finer than the grid
scale = "auto"       # 8-bit files 0–255 → 0–1; float files as they are
""")
    lines.append(f"""{_rule("Products that need more inputs than these files give")}
[products.environmental_impact]      # E = L·D − C·R: bind D, C, R to enable
enabled = false
[products.recovery_rate]             # R_e = (A_c·B_r) / (T_s·P_c): bind A_c, B_r, T_s to enable
enabled = false
[products.clearance_sustainability]  # CSC = (E_f + B_r) / 2 · D_i: bind E_f, B_r, D_i to enable
enabled = false
""")
    if r.name_field:
        lines.append(f"""[districts]   # districts.gpkg / districts.csv: products summarised per district
path = {_s(_rel(r.region, out))}
name_field = {_s(r.name_field)}{f"   # {r.name_note}: district names must not repeat" if r.name_note else ""}
""" + (f"layer = {_s(r.region_layer)}\n" if r.region_layer else ""))
    else:
        lines.append(f"""# [districts]   # no field names each feature of {r.region.name} once: set one that does
# path = {_s(_rel(r.region, out))}
# name_field = "name"
""")
    return "\n".join(lines)


def _rule(title: str, width: int = 96) -> str:
    """A section heading of the config: `# --- title ----…`, all as wide."""
    head = f"# --- {title} "
    return head + "-" * max(3, width - len(head))


def _rel_glob(pattern: str, out: Path) -> str:
    """A glob relative to `out`: its folder part made relative, the pattern part kept."""
    head, tail = os.path.split(pattern)
    return f"{_rel(Path(head or '.'), out)}/{tail}"


def soil_table(r: Recipe) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([r.soil_field, "S_t", "note"])
    for cls in r.soil_classes:
        w.writerow([cls, f"{PLACEHOLDER:g}", "PLACEHOLDER: replace with this class's susceptibility (0-1)"])
    return buf.getvalue()


def summary(r: Recipe, files: list[Path]) -> list[str]:
    """What `init` tells the user: what was written and what to do next."""
    rows, cols = r.shape
    out = [f"grid {r.slug}: UTM zone {r.zone} (EPSG:{r.epsg}), {cols} × {rows} cells of {r.cell:g} m"]
    if rows * cols > MAX_CELLS:
        out.append(f"warning: {rows * cols:,} cells is more than run and validate take by default "
                   f"(--max-cells {MAX_CELLS:,}): choose a larger --cell")
    out.append(f"recipe: {recipe_words(r)}" + (f"; districts named by {r.name_field!r}" if r.name_field else
                                                 "; no field names each feature once: [districts] left out")
               + (f" ({r.name_note})" if r.name_note else ""))
    if r.records is not None:
        out.append(f"records: {r.records.name}, " + (f"counts from {r.count_field!r}" if r.count_field
                                                     else "no count field: 1 item each (count = 1)"))
    if r.soil is not None:
        out.append(f"soil: {len(r.soil_classes)} classes of {r.soil_field!r} listed in {SOIL_TABLE} with placeholder "
                   f"S_t {PLACEHOLDER:g}: fill them in, then raise w_S (S_t weighs 0 until then)")
    out += [f"wrote {p}" for p in files]
    config = files[1] if len(files) > 1 else files[0]
    out.append(f"next: minemap validate {config}   then: minemap run {config} --out {config.parent / 'out'}")
    return out
