"""What goes beside the products for people and catalogues: the QGIS project, the maps and
report, and a STAC item. All are made from files already staged (the products, the
summaries) plus the inputs' paths; nothing here recomputes a product.
"""

from __future__ import annotations

import html
import json
import math
import os
from concurrent.futures import Executor, ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyogrio
import rasterio
from pyproj import CRS

from .model import banner as model_banner
from . import store
from .config import RASTER_KINDS, LoadedConfig
from .evidence import EVIDENCE, RASTERS, Bundled, csv_points, evidence_plan, write_evidence
from .formulas import SUSTAINABLE
from .grid import Grid
from .history import CATALOG, newest_acquisition
from .outdir import Kept, staged_pages
from .vector import located, ogr, read_vector
from .writers.assessed import OUTLINES, NotAssessed, write_outlines
from .writers.layouts import Layouts, layouts_element, view_settings
from .writers.maps import render_map
from .joins import class_column  # the district table's class columns
from .tasks import tasking_for, top_tasks
from .writers.briefing.brief import Briefing
from .writers.briefing.cover import land_rows
from .writers.briefing.mapgrid import crs_words
from .writers.briefing.pack import in_priority_order, write_briefing
from .writers.project import ProjectLayer, gray_style, write_project
from .writers.columns import fmt
from .writers.report import facts_table, html_table, write_report
from .writers.styles import RISK_COLOURS, Legend, spread
from .writers.stac import ITEM, AssetInfo, write_stac_item
from .writers.tasks import TASK_FILES

PROJECT = "minemap.qgz"
REPORT = "report.html"
BRIEFING = "briefing.pdf"
EVALUATION = "evaluation.json"  # written by `minemap evaluate`; drawn in the pack when present
CLEARANCE_VARS = {"C", "A_c", "R", "E_f", "D_i"}


def project_groups(staging: Path, out_dir: Path, cfg: LoadedConfig, grid: Grid, layers: dict,
                   styles: dict[str, str], titles: dict[str, str], visible: str,
                   plan: dict[Path, Bundled] | None = None) -> list[tuple[str, list[ProjectLayer]]]:
    """The project's groups, top to bottom: field tasks, zones and districts, evidence, products.

    Staged outputs are referred to by their final place in `out_dir`.
    """
    crs = grid.crs.to_wkt()
    tasks = [tasks_layer(out_dir, cfg, grid)] if (staging / "tasks.gpkg").exists() and tasking_for(cfg, grid) else []
    top = []
    if (staging / "priority_zones.gpkg").exists():
        top.append(ProjectLayer("Priority zones", out_dir / "priority_zones.gpkg", "vector", crs, "zones",
                                label_field="rank", layer="priority_zones"))
    if (staging / "districts.gpkg").exists():
        top.append(ProjectLayer("Districts", out_dir / "districts.gpkg", "vector", crs, "outline",
                                label_field="district", layer="districts"))
    if (staging / OUTLINES).exists():  # above the products: P_c / P_res are nodata there (transparent)
        top.append(ProjectLayer(not_assessed_title(staging / OUTLINES), out_dir / OUTLINES, "vector", crs,
                                "not_assessed", layer="not_assessed"))
    products = [ProjectLayer(titles[name], out_dir / f"{name}.tif", "raster", crs, style, visible=name == visible)
                for name, style in styles.items()]
    # drawn bottom up: evidence vectors (points, outlines) above the opaque product rasters
    evidence = evidence_layers(cfg, layers, out_dir, grid, plan or {})
    return [(name, group) for name, group in [("Field tasks", tasks), ("Briefing", top), ("Evidence", evidence),
                                              ("Products", products)] if group]


TASK_LABEL_MM = 15  # a task's label (8 characters at 7 pt) needs its square this wide on paper
TASK_DRAW_MM = 4  # smaller squares are a mesh over the zones, which show the land then


def tasks_layer(out_dir: Path, cfg: LoadedConfig, grid: Grid) -> ProjectLayer:
    """tasks.gpkg as the operations officer reads it: each task outlined in its class's colour (the
    risk classes' colours, from the zones' least class up), labelled with its ID without the UTM
    zone ("PK6647-1") where its square is wide enough on paper; drawn where squares are ≥ 4 mm."""
    rc = cfg.spec.products.risk_class
    colours = dict(zip(rc.names, spread(RISK_COLOURS, len(rc.names))))
    names = rc.names[rc.names.index(cfg.spec.products.priority_zones.from_class):]
    side = tasking_for(cfg, grid).side
    return ProjectLayer("Field tasks", out_dir / "tasks.gpkg", "vector", grid.crs.to_wkt(), "tasks",
                        label_field="regexp_replace(\"task_id\", '^[0-9]{1,2}[A-Z]', '')", layer="tasks",
                        categories=tuple((n, colours[n], n) for n in names), category_field="risk_class",
                        label_expression=True, label_scale=_round_down(side * 1000 / TASK_LABEL_MM),
                        draw_scale=_round_down(side * 1000 / TASK_DRAW_MM))


def _round_down(scale: float) -> float:
    """`scale` rounded down to two significant digits (1:66,666 → 1:66,000)."""
    power = 10 ** (math.floor(math.log10(scale)) - 1)
    return math.floor(scale / power + 1e-9) * power


def not_assessed_title(path: Path) -> str:
    """The not-assessed layer's title: its rule in words (the legend entry of the maps)."""
    return str(pyogrio.read_dataframe(path, columns=["rule"], read_geometry=False, max_features=1)["rule"].iloc[0])


def evidence_layers(cfg: LoadedConfig, layers: dict, out_dir: Path, grid: Grid,
                    plan: dict[Path, Bundled]) -> list[ProjectLayer]:
    """Every input file once (records and minefields, cleared areas, soil, drone rasters), hidden
    except the point records, minefields and cleared areas; read from OUT where `plan` put it."""
    release = cfg.resolve(cfg.spec.release.path) if cfg.spec.release else None
    extents = {cfg.resolve(s.extent) for s in cfg.spec.inputs.values() if getattr(s, "extent", None)}
    extents -= {cfg.resolve(p) for s in cfg.spec.inputs.values() if hasattr(s, "path")  # also a source: show it as one
                for p in ([s.path] if isinstance(s.path, str) else s.path)}
    out = []
    for path, variables in input_users(layers).items():
        kinds = {cfg.spec.inputs[v].kind for v in variables if v in cfg.spec.inputs}
        title = f"{path.stem} ({', '.join(variables)})"
        if kinds & set(RASTER_KINDS):
            with rasterio.open(store.gdal_path(path) if store.is_url(path) else path) as ds:
                crs = ds.crs.to_wkt() if ds.crs else ""
                hi = 255 if ds.dtypes[0] == "uint8" else 1
            source = out_dir / plan[path].name if path in plan else path
            out.append(ProjectLayer(title, source, "raster", crs, gray_style(0, hi), visible=False))
            continue
        if path.suffix.lower() == ".csv":  # records from a CSV are geometries only in evidence.gpkg
            if path not in plan:
                continue
            info = {"geometry_type": "Point", "crs": grid.crs.to_wkt()}
        else:
            info = pyogrio.read_info(ogr(path))
        if not info.get("geometry_type") or not info["crs"]:
            continue  # a class table, not a map layer
        geometry = _geometry(info["geometry_type"])
        crs = CRS.from_user_input(info["crs"]).to_wkt()
        if path == release:  # released land: its own layer, drawn apart from the evidence of mines
            style, visible, title = "released", True, f"Released land ({path.stem})"
        elif path in extents:
            style, visible, title = "extent", True, f"Extent: where {', '.join(variables)} is known ({path.stem})"
        elif geometry == "Point":
            style, visible = "points", True
        elif "density" in kinds:
            style, visible = "minefields", True
        elif set(variables) & CLEARANCE_VARS:
            style, visible = "cleared", True
        else:
            style, visible = "fill", False
        if path in plan:  # in evidence.gpkg: the grid CRS
            kept = plan[path]
            out.append(ProjectLayer(title, out_dir / kept.name, "vector", grid.crs.to_wkt(), style, visible, geometry,
                                    layer=kept.layer))
            continue
        out.append(ProjectLayer(title, path, "vector", crs, style, visible, geometry, layer=info.get("layer_name")))
    order = {"points": 0, "minefields": 1, "released": 2, "cleared": 3, "extent": 4, "fill": 5}
    return sorted(out, key=lambda p: (p.kind == "raster", order.get(p.style, 9), p.title))


def input_users(layers: dict) -> dict[Path, list[str]]:
    """Every input file once, with the variables it feeds (as run.json's "inputs")."""
    users: dict[Path, list[str]] = {}
    for var, layer in layers.items():
        for f in layer.files:
            users.setdefault(located(f), []).append(var)
    return users


def _geometry(ogr_type: str | None) -> str:
    t = (ogr_type or "").lower()
    return "Point" if "point" in t else "Line" if "line" in t else "Polygon"


def write_qgis_project(staging: Path, out_dir: Path, cfg: LoadedConfig, grid: Grid, layers: dict,
                       styles: dict[str, str], titles: dict[str, str], created: str = "", version: str = "",
                       bundle_rasters: bool = False, hashes: dict[str, str] | None = None,
                       kept: dict[str, Kept] | None = None, made_from: dict[str, str] | None = None,
                       hidden: NotAssessed | None = None) -> list[str]:
    """minemap.qgz in `staging`, with the evidence it shows (evidence.gpkg; evidence/ if
    `bundle_rasters`) so OUT stands alone; the risk classes (or P_c) shown, the other products
    listed, and the print layouts (see `print_layouts`); with `hidden`, the land not assessed as
    not_assessed.gpkg, a grey hatch over the products. Returns the staged names."""
    visible = "risk_class" if "risk_class" in styles else next(iter(styles), "")
    plan = evidence_plan(cfg, input_users(layers), bundle_rasters)
    names = write_evidence(staging, cfg, grid, plan, hashes, (kept or {}).get(EVIDENCE), made_from)
    if hidden is not None and write_outlines(hidden, staging / OUTLINES):
        names.append(OUTLINES)
    groups = project_groups(staging, out_dir, cfg, grid, layers, styles, titles, visible, plan)
    title = f"minemap — {grid.name}"
    boxes = pyogrio.read_bounds(staging / "districts.gpkg")[1] if (staging / "districts.gpkg").exists() else None
    layouts = print_layouts(out_dir, cfg, grid, groups, title, created, version,
                            [] if boxes is None else list(zip(boxes[2] - boxes[0], boxes[3] - boxes[1])))
    extra = (layouts_element(layouts), view_settings(layouts)) if layouts else ()
    write_project(staging / PROJECT, out_dir, grid, title, groups, tuple(e for e in extra if e is not None))
    return [*names, PROJECT]


def print_layouts(out_dir: Path, cfg: LoadedConfig, grid: Grid, groups: list[tuple[str, list[ProjectLayer]]],
                  title: str, created: str, version: str,
                  boxes: list[tuple[float, float]] | None = None) -> Layouts | None:
    """The briefing and atlas layouts: P_c (the residual when land is released) under the
    priority zones and districts (the atlas's pages fitted to the districts' `boxes`, width and
    height in metres); None when neither P_c nor the residual is made."""
    layers = [layer for _, members in groups for layer in members]
    by_stem = {Path(layer.source).stem: layer for layer in layers if layer.kind == "raster"}
    raster = by_stem.get("residual_probability") or by_stem.get("contamination_probability")
    if raster is None or raster.source.parent != out_dir:
        return None
    top = {layer.title: layer for name, members in groups if name == "Briefing" for layer in members}
    hatch = [layer for layer in top.values() if layer.style == "not_assessed"]  # over the raster
    shown = [top[t] for t in ("Priority zones", "Districts") if t in top] + hatch + [raster]
    run_date = created[:16].replace("T", " ") + " UTC" if created else ""
    tasks = [layer for name, members in groups if name == "Field tasks" for layer in members]  # atlas pages only
    return Layouts(out_dir=out_dir, title=title, subtitle=raster.title, layers=shown, coverage=top.get("Districts"),
                   atlas_layers=tasks, atlas_boxes=[(float(w), float(h)) for w, h in boxes or []],
                   extent=tuple(grid.geobox.extent.boundingbox), caveat=cfg.spec.label or "", run_date=run_date,
                   credits=f"minemap {version}; data: see run.json")


DESCRIPTIONS = {
    "districts.gpkg": ("District summary", ["data"], "per district: area, mean and max P_c, km² per risk class, "
                       f"estimated remaining mines, mean E and R_e, share of cleared land with CSC > {SUSTAINABLE:g}"),
    "districts.csv": ("District summary (table)", ["data"], "the district summary without geometry"),
    "priority_zones.gpkg": ("Priority zones", ["data"], "connected high-risk cells as polygons, riskiest and "
                            "largest first: area, district, mean and max P_c, evidence count"),
    PROJECT: ("QGIS project", ["metadata"], "every product styled, zones, districts and evidence layers; "
              "print layouts: a briefing page and an atlas of the districts"),
    EVIDENCE: ("Evidence used", ["data"], "the vector inputs as read, one layer per input file, in the grid CRS, "
               "clipped to the region"),
    OUTLINES: ("Land not assessed", ["data"], "where P_c and P_res are not given: fewer evidence layers than "
               "the run's minimum (risk class code 0), as polygons with the rule in words"),
    REPORT: ("Report", ["overview"], "the maps and the district table on one page"),
    BRIEFING: ("Briefing pack (PDF)", ["overview"], "cover with inputs and caveat, one A4 page per district "
               "(map, figures, priority zones), evaluation when run"),
    "run.json": ("Run record", ["metadata"], "inputs with hashes, settings, statistics, timings"),
    **TASK_FILES,
}


def write_catalogue_item(staging: Path, grid: Grid, created: str, names: list[str], products: dict[str, dict],
                         titles: dict[str, str], properties: dict) -> str:
    """item.json describing every staged file (`names`); `products` holds each product's band facts."""
    assets = []
    for name in names:
        stem, suffix = Path(name).stem, Path(name).suffix
        if name.startswith(f"{RASTERS}/"):
            assets.append(AssetInfo(name, f"Evidence raster {Path(name).name}", ["data"],
                                    "an input raster, copied as it was read"))
        elif suffix == ".tif":
            assets.append(AssetInfo(name, titles[stem], ["data"], products[stem]["equation"], products[stem]["band"]))
        elif suffix == ".zarr":  # every product, a variable each (issue #12)
            assets.append(AssetInfo(name, "Products (Zarr store)", ["data"],
                                    "variables: " + ", ".join(f"{n} ({titles[n]})" for n in products)))
        elif suffix == ".qml":
            assets.append(AssetInfo(name, f"QGIS style of {titles[stem]}", ["metadata"]))
        elif suffix == ".png":
            assets.append(AssetInfo(name, f"Map of {titles.get(stem, stem)}", ["overview"]))
        elif name in DESCRIPTIONS:
            title, roles, description = DESCRIPTIONS[name]
            assets.append(AssetInfo(name, title, roles, description))
    compact = created.replace("-", "").replace(":", "").replace("+0000", "Z").replace("+00:00", "Z")
    return write_stac_item(staging, grid, f"minemap-{grid.name}-{compact}", created, assets, properties)


def report_files(staging: Path, products: dict, titles: dict[str, str], units: dict[str, str]) -> list[tuple[str, str]]:
    """What the report links (names relative to it): every product and its style, the tables,
    the QGIS project, the PDF pack, the STAC item and the run record, all published with it."""
    files = []
    for n in products:
        files += [(f"{n}.tif", f"{titles[n]} [{units[n]}], GeoTIFF"), (f"{n}.qml", f"QGIS style of {titles[n]}")]
    described = [n for n in ("districts.gpkg", "districts.csv", "priority_zones.gpkg", *TASK_FILES, EVIDENCE)
                 if (staging / n).exists()]
    files += [(n, f"{DESCRIPTIONS[n][0]}: {DESCRIPTIONS[n][2]}") for n in [*described, PROJECT, BRIEFING, "run.json"]]
    return files + [(ITEM, "STAC item: every file with its role, footprint and statistics, for catalogues"),
                    (CATALOG, "STAC catalog: the STAC items of the last runs (history/), dated by their newest input")]


def write_maps_and_report(staging: Path, sources: dict[str, Path], grid: Grid, legends: dict[str, Legend],
                          titles: dict[str, str], captions: dict[str, str], units: dict[str, str], tables: dict,
                          subtitle: str, dpi: int = 200, sections: list[tuple[str, str]] = (),
                          pool: Executor | None = None, stamp: str = "", kept: dict[str, Kept] | None = None,
                          made_from: dict[str, str] | None = None, run: str = "",
                          hidden: dict[str, NotAssessed] | None = None, as_of: tuple[str, str] | None = None,
                          classes: list[str] = (), changes: list[str] | None = None,
                          staged: Callable[[], object] | None = None) -> list[str]:
    """A PNG map per product (drawn from `sources`: the product's cells, with overviews) and
    report.html in `staging`; returns the file names. `pool` draws the maps (the run's worker
    processes); without one, threads here do (figures share no state). A map whose key (see
    `maps.map_key`) is its `kept` one's is copied, not drawn; each map's key goes in `made_from`.
    The maps are dated `stamp` before `subtitle`; the report `run`. `hidden`: the maps that hatch
    land not assessed, and where it is (see `writers.assessed`). `as_of` (the newest input: time,
    file), `classes` (risk class names) and `changes` (in words; None: a first run) make the
    summary that opens the page, with the top field tasks (`tables["tasks"]`). `staged` waits for
    files made beside this (the tasks', the evidence), which the report links when they exist."""
    hidden = hidden or {}
    districts = tables.get("districts")
    outlines = districts[["district", "geometry"]] if districts is not None else None  # all a map shows of them
    draw = partial(render_map, subtitle=subtitle, districts=outlines, name_field="district", dpi=dpi, stamp=stamp)
    kept = kept or {}
    with ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)))
        drawn = {f"{n}.png": pool.submit(draw, sources[n], staging / f"{n}.png", title=titles[n], unit=units[n],
                                         legend=legends[n], kept=kept.get(f"{n}.png"), hidden=hidden.get(n))
                 for n in legends}
        done = {name: future.result() for name, future in drawn.items()}
    if made_from is not None:
        made_from.update({name: key for name, (key, _) in done.items()})
    reused = [titles[n] for n in legends if done[f"{n}.png"][1]]
    names = [f"{n}.png" for n in legends]
    table = in_priority_order(districts.drop(columns="geometry")) if districts is not None else None
    notes = [f"{titles[n]}: {captions[n]} [{units[n]}]" for n in legends]
    rule = next(iter(hidden.values())).label if hidden else ""
    if districts is not None and "km2_insufficient_evidence" in districts:
        notes.append(f"{districts['km2_insufficient_evidence'].sum():,.2f} km² are not assessed (grey hatch on the "
                     f"probability maps, grey in the risk classes){': ' + rule.split(': ', 1)[1] if rule else ''}; "
                     "unknown, not safe.")
    if table is not None and "assessment" in table:
        mostly = table[table["assessment"] == "mostly not assessed"]
        if len(mostly):
            notes.append("Mostly not assessed, so listed after every assessed district and never ranked by their "
                         "P_c: " + ", ".join(f"{d} ({100 * a:.0f} % assessed)" for d, a in
                                             zip(mostly["district"], mostly.get("assessed_share", [math.nan] * len(mostly))))
                         + ".")
    released = [c for c in (districts.columns if districts is not None else []) if c.startswith("released_km2_")]
    if released:
        notes.append("Released land (km²): " + ", ".join(f"{c.removeprefix('released_km2_')} "
                                                         f"{districts[c].sum():,.2f}" for c in released)
                     + "; risk classes and priority zones use the residual probability "
                       "P_res = P_c · (1 − released share).")
    if reused:
        notes.append(f"Kept as drawn by an earlier run (the date on the map), as their cells, colours and outlines "
                     f"have not changed since: {', '.join(reused)}.")
    zones = tables.get("priority_zones")
    if zones is not None:
        notes.append(f"{len(zones)} priority zones ({zones['area_km2'].sum():,.1f} km²) in priority_zones.gpkg; "
                     "open minemap.qgz in QGIS to see them over the products.")
    heading = " · ".join(x for x in (run, subtitle) if x)
    shown = report_columns(table) if table is not None else None
    if staged is not None:
        staged()
    write_report(staging / REPORT, title=f"minemap — {grid.name}", subtitle=heading,
                 maps=[(f"{n}.png", titles[n], captions[n]) for n in legends], table=shown, notes=notes, sections=sections,
                 files=report_files(staging, legends, titles, units),
                 lead=summary_sections(table, tables.get("tasks"), list(classes), as_of, changes),
                 table_note=f"The main {shown.shape[1]} of {table.shape[1]} columns; all of them in districts.csv."
                 if shown is not None and shown.shape[1] < table.shape[1] else "")
    return names + [REPORT]


def report_columns(table: "pd.DataFrame") -> "pd.DataFrame":
    """The district table as report.html shows it, readable at 1,400 px without scrolling: the
    district, its area, assessment and priority, the mean probability the zones use, km² per
    class and not assessed, and the remaining mines (every column stays in districts.csv)."""
    prob = "mean_residual" if "mean_residual" in table else "mean_pc"
    keep = {"district", "area_km2", "assessed_share", "assessment", "priority", prob, "remaining_mines"}
    return table[[c for c in table.columns if c in keep or c.startswith("km2_")]]


def summary_sections(table, tasks, classes: list[str], as_of: tuple[str, str] | None,
                     changes: list[str] | None) -> list[tuple[str, str]]:
    """report.html's opening sections: the summary (data as of, land assessed and per class, the
    districts by priority with the mostly-not-assessed apart, what changed) and the top field
    tasks with their MGRS references."""
    e = html.escape
    facts = [["Data as of", f"{as_of[0][:16].replace('T', ' ')} UTC (newest input: {Path(as_of[1]).name})"
              if as_of else "unknown"]]
    land = land_rows(table, [(c, class_column(c)) for c in classes]) if table is not None else []
    facts += [[k.strip() + " (km²)", v] for k, v in land]
    body = [facts_table(facts)]
    if table is not None and "district" in table:
        mostly = (table["assessment"] == "mostly not assessed") if "assessment" in table else \
            pd.Series(False, index=table.index)
        names = table["district"][~mostly]
        ranked = ", ".join(f"{fmt(p, 0)}. {d}" for d, p in zip(names, table["priority"][~mostly])) \
            if "priority" in table else ", ".join(map(str, names))
        body.append(f"<p><strong>Districts by priority:</strong> {e(ranked)}.</p>")
        if mostly.any():
            apart = ", ".join(f"{d} ({100 * a:.0f} % assessed)" for d, a in
                              zip(table["district"][mostly], table["assessed_share"][mostly]))
            body.append(f"<p><strong>Mostly not assessed</strong> (too little evidence to rank: unknown, not safe): "
                        f"{e(apart)}.</p>")
    said = ("First run in this folder: nothing to compare with." if changes is None else
            "No priority zone changed." if not changes else " ".join(changes[:3])
            + (f" … and {len(changes) - 3} more (below)." if len(changes) > 3 else ""))
    body.append(f"<p><strong>Since the previous run:</strong> {e(said)}</p>")
    sections = [("Summary", "\n".join(body))]
    if tasks is not None:
        top = top_tasks(tasks, classes, n=10)
        if len(top):
            top.insert(0, "#", range(1, len(top) + 1))
            sections.append(("Where to send teams first: the top field tasks", html_table(top)
                             + "<p class='note'>By risk class, then mean probability; every task in tasks.gpkg "
                               "(tasks.csv, .kml, .gpx for GPS units).</p>"))
        else:
            sections.append(("Where to send teams first: the top field tasks", "<p>None: no priority zone.</p>"))
    return sections


def write_briefing_pack(staging: Path, out_dir: Path, sources: dict[str, Path], cfg: LoadedConfig, grid: Grid,
                        layers: dict, legends: dict[str, Legend], titles: dict[str, str], units: dict[str, str],
                        tables: dict, created: str, version: str, changes: list[str] | None = None,
                        change: tuple[Path, Legend] | None = None,
                        then: Callable[[], dict] | None = None,
                        kept: dict[Path, str] | None = None,
                        pool: Executor | None = None, redone: list | None = None,
                        looks: dict[str, str] | None = None,
                        hidden: NotAssessed | None = None) -> tuple[str, dict]:
    """briefing.pdf in `staging`: P_c (or the residual risk when that product is made) per
    district, with the mine records (density points) and cleared areas (coverage polygons).
    Returns its name and the districts whose page drawing was "drawn" or "reused" (see `write_briefing`);
    `then` gives `changes` and `change` when they are known later (waited for after the drawings);
    `kept`: the last run's district drawings and their SHA-256 (see `outdir.kept_pages`); `pool`:
    where the district drawings are drawn (the run's worker processes: beside the words); `redone`
    (an update's redone chunks' bounds) and `looks` (the last run's) spare reading cells a page
    showed last time (see `writers.briefing.district.district_look`); `hidden`: land not assessed on the map
    (see `writers.assessed`)."""
    name = "residual_probability" if "residual_probability" in sources else "contamination_probability"
    users = input_users(layers)
    kinds = {path: {cfg.spec.inputs[v].kind for v in variables if v in cfg.spec.inputs}
             for path, variables in users.items()}
    records = _geometries([p for p, k in kinds.items() if "density" in k], grid, "Point", cfg)
    cleared = _geometries([p for p, k in kinds.items() if "coverage" in k], grid, "Polygon", cfg)
    brief = Briefing(title=f"minemap — {grid.name}", region=grid.name, created=created, version=version,
                     label=cfg.spec.label or "", inputs={str(p): v for p, v in users.items()},
                     raster=sources[name], raster_title=titles[name], unit=units[name], legend=legends[name],
                     districts=tables.get("districts"), zones=tables.get("priority_zones"), records=records,
                     cleared=cleared, evaluation=_evaluation(out_dir / EVALUATION),
                     evaluation_written=_written(out_dir / EVALUATION), changes=changes, change=change,
                     redone=redone, looks=dict(looks or {}),
                     model=(cfg.spec.model.short(), model_banner(cfg.spec.model)) if cfg.spec.model else None,
                     hidden=hidden, as_of=newest_acquisition(cfg, layers), classes=[(c, class_column(c)) for c in cfg.spec.products.risk_class.names],
                     grid_crs=crs_words(grid.crs.to_wkt()),
                     tasks=top_tasks(tables["tasks"], cfg.spec.products.risk_class.names, n=10)
                     if tables.get("tasks") is not None else None)
    return BRIEFING, write_briefing(staging / BRIEFING, brief, kept, staged_pages(staging), then, pool)


def _geometries(paths: list[Path], grid: Grid, kind: str, cfg: LoadedConfig) -> np.ndarray:
    """The `kind` geometries ("Point", "Polygon") of vector `paths` (records CSVs too), in the grid's CRS."""
    out = []
    for path in paths:
        points = csv_points(cfg, path)
        if path.suffix.lower() in (".tif", ".tiff") or path.suffix.lower() == ".csv" and points is None:
            continue
        frame = read_vector(path, points=points)
        if frame.crs is None:
            continue
        geoms = frame.to_crs(grid.crs.to_wkt()).geometry.values
        out.extend(g for g in geoms if g is not None and not g.is_empty and kind in g.geom_type)
    return np.asarray(out, dtype=object)


def _written(path: Path) -> str:
    """A file's modification time in UTC, to the minute ("" when it is not there)."""
    if not path.exists():
        return ""
    return datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _evaluation(path: Path) -> dict | None:
    """evaluation.json's content; an unreadable file is said so on its page, not skipped silently."""
    if not path.exists():
        return None
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return {"problem": f"{path.name} could not be read: {e}"}
    return content if isinstance(content, dict) else {"problem": f"{path.name} holds no JSON object"}
