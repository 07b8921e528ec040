"""What changed since the previous run in OUT: ΔP_c as change_since_previous.tif, and which
priority zones appeared, grew, shrank or vanished.

Made while the new set is staged, before it is published: OUT's product files are then still
the previous run's (checked against the state's SHA-256, so a file edited since is never
compared). The raster is read block by block with rasterio windows, so memory stays small.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
import rasterio.shutil
import shapely
from rasterio.windows import Window

from .sources import file_sha256
from .writers.styles import Legend, Stop, ramp

CHANGE = "change_since_previous"
DEFAULT_RANGE = (-0.3, 0.3)
NODATA = -9999.0
# ColorBrewer BrBG-5, reversed: less risk teal, more risk brown, no change near white (colour-vision safe)
BR_BG = ["#018571", "#80cdc1", "#f5f5f5", "#dfc27d", "#a6611a"]
TITLE = "Change in P_c since the previous run (new − previous)"


def compared_product(products: list[str]) -> str | None:
    """The product compared between runs: the residual when land release is configured, else P_c."""
    for name in ("residual_probability", "contamination_probability"):
        if name in products:
            return name
    return None


def change_legend(lo: float | None = None, hi: float | None = None) -> Legend:
    """A diverging ramp over a fixed symmetric range (values beyond take the end colours)."""
    lo, hi = (DEFAULT_RANGE[0] if lo is None else lo), (DEFAULT_RANGE[1] if hi is None else hi)
    stops = ramp(lo, hi, BR_BG)
    stops[0] = Stop(lo, stops[0].color, f"≤ {stops[0].label} (less likely)")
    stops[-1] = Stop(hi, stops[-1].color, f"≥ {stops[-1].label} (more likely)")
    return Legend("ramp", stops, TITLE)


def previous_file(out_dir: Path, name: str, state: dict | None) -> tuple[Path | None, str]:
    """OUT's file `name` if it is the file the last run published (None and why not, else)."""
    path = out_dir / name
    published = (state or {}).get("published", {}).get(path.name)
    if published is None or not path.is_file():
        return None, f"the previous run made no {path.name}"
    if file_sha256(path) != published["sha256"]:
        return None, f"{path} is not the file the last run wrote (SHA-256 differs): not compared"
    return path, ""


def write_change(new: Path, old: Path, dst: Path, tags: dict[str, str] | None = None) -> str:
    """ΔP = new − old as a float32 COG at `dst`: nodata where either is nodata. Returns "" or,
    when the two are not on the same grid, why no change was written."""
    tmp = dst.with_name(f".{dst.stem}.tmp.tif")
    with rasterio.open(new) as a, rasterio.open(old) as b:
        if (a.crs, a.transform, a.shape) != (b.crs, b.transform, b.shape):
            return f"{old.name} of the previous run is on another grid: no change map"
        profile = {"driver": "GTiff", "width": a.width, "height": a.height, "count": 1, "dtype": "float32",
                   "crs": a.crs, "transform": a.transform, "nodata": NODATA, "tiled": True,
                   "blockxsize": 512, "blockysize": 512}  # uncompressed scratch: compressed once, below
        try:
            with rasterio.open(tmp, "w", **profile) as out:
                for row in range(0, a.height, 512):
                    for col in range(0, a.width, 512):
                        w = Window(col, row, min(512, a.width - col), min(512, a.height - row))
                        x, y = a.read(1, window=w, masked=True), b.read(1, window=w, masked=True)
                        delta = x.astype("float32") - y.astype("float32")
                        out.write(np.ma.filled(delta, NODATA).astype("float32"), 1, window=w)
                out.update_tags(**(tags or {}))
                out.set_band_description(1, TITLE)
            # as the products: ZSTD 1 with the floating-point predictor, GDAL's threads (DEFLATE took ~3× longer)
            rasterio.shutil.copy(tmp, dst, driver="COG", COMPRESS="ZSTD", LEVEL="1", PREDICTOR="3",
                                 NUM_THREADS="ALL_CPUS", BIGTIFF="IF_SAFER", OVERVIEWS="AUTO", RESAMPLING="AVERAGE")
        finally:
            tmp.unlink(missing_ok=True)
    return ""


def zone_changes(old: Path, new: Path, cell_km2: float) -> dict:
    """Compare two priority_zones.gpkg by overlap: a new zone overlapping no old one appeared, an
    old one overlapping no new one vanished; overlapping groups whose area changed by more than
    one cell grew or shrank. Zones are named by their rank in the new (or, vanished, old) file."""
    before = _zones(old)
    after = _zones(new)
    out = {"appeared": [], "vanished": [], "grew": [], "shrank": []}
    if before is None or after is None:
        return {**out, "note": "no previous priority zones to compare" if before is None else "no priority zones"}
    new_geoms, old_geoms = after.geometry.to_numpy(), before.geometry.to_numpy()
    new_i, old_i = shapely.STRtree(old_geoms).query(new_geoms)  # boxes meet (empty files: no pairs)
    # interiors meet (not just touching or boxes): one DE-9IM test a pair, no intersection built
    overlap = shapely.relate_pattern(new_geoms[new_i], old_geoms[old_i], "T********")
    new_i, old_i = new_i[overlap], old_i[overlap]
    touched_new, touched_old = set(new_i.tolist()), set(old_i.tolist())
    out["appeared"] = [_describe(after.iloc[i]) for i in range(len(after)) if i not in touched_new]
    out["vanished"] = [_describe(before.iloc[i]) for i in range(len(before)) if i not in touched_old]
    for i in sorted(touched_new):
        was = float(before["area_km2"].iloc[sorted(set(old_i[new_i == i].tolist()))].sum())
        now = float(after["area_km2"].iloc[i])
        entry = {**_describe(after.iloc[i]), "previous_area_km2": round(was, 4)}
        if now - was > cell_km2 * 1.0001:
            out["grew"].append(entry)
        elif was - now > cell_km2 * 1.0001:
            out["shrank"].append(entry)
    return out


def _zones(path: Path) -> gpd.GeoDataFrame | None:
    if not path.is_file():
        return None
    frame = gpd.read_file(path)
    return frame.reset_index(drop=True)


def _describe(row) -> dict:
    d = {"rank": int(row["rank"]) if "rank" in row else None, "area_km2": round(float(row["area_km2"]), 4)}
    if "district" in row and row["district"] is not None:
        d["district"] = str(row["district"])
    c = row.geometry.centroid
    d["centre"] = [round(c.x, 1), round(c.y, 1)]
    return d


def change_lines(changes: dict) -> list[str]:
    """The zone changes in words, one line each (report and PDF)."""
    if changes.get("note") and not changes.get("zones"):
        return [changes["note"]]
    zones = changes.get("zones", {})
    lines = []
    for key, verb in (("appeared", "appeared"), ("grew", "grew"), ("shrank", "shrank"), ("vanished", "vanished")):
        for z in zones.get(key, []):
            where = f" in {z['district']}" if z.get("district") else ""
            was = f" (was {z['previous_area_km2']:.2f} km²)" if "previous_area_km2" in z else ""
            name = f"Previous zone {z['rank']}" if key == "vanished" else f"Zone {z['rank']}"
            lines.append(f"{name}{where} {verb}: {z['area_km2']:.2f} km²{was}, "
                         f"centre {z['centre'][0]:.0f} E {z['centre'][1]:.0f} N")
    if zones.get("note"):
        lines.append(zones["note"])
    if not lines:
        lines.append("No priority zone appeared, grew, shrank or vanished.")
    return lines


def stage_change(staging: Path, out_dir: Path, sources: dict[str, Path], previous: dict | None,
                 products: list[str], cell_km2: float, lo_hi: tuple[float, float] | None,
                 tags: dict[str, str]) -> tuple[Legend | None, dict]:
    """change_since_previous.tif (+ .qml) in `staging` and the zone changes, when OUT holds a
    previous run's product on this grid; (None, {"note": why not}) else."""
    from .writers.styles import qml

    name = compared_product(products)
    if name is None or previous is None:
        return None, {"note": "first run in this folder: nothing to compare"}
    old, why = previous_file(out_dir, f"{name}.tif", previous)
    if old is None:
        return None, {"note": why}
    why = write_change(sources[name], old, staging / f"{CHANGE}.tif", {**tags, "MINEMAP_PRODUCT": CHANGE,
                                                                     "MINEMAP_COMPARED": name})
    if why:
        return None, {"note": why}
    legend = change_legend(*(lo_hi or (None, None)))
    (staging / f"{CHANGE}.qml").write_text(qml(legend))
    old_zones, why = previous_file(out_dir, "priority_zones.gpkg", previous)
    if not (staging / "priority_zones.gpkg").exists():
        zones = {"note": "no priority zones made"}
    elif old_zones is None:
        zones = {"appeared": [], "vanished": [], "grew": [], "shrank": [], "note": why}
    else:
        zones = zone_changes(old_zones, staging / "priority_zones.gpkg", cell_km2)
    return legend, {"compared": name, "file": f"{CHANGE}.tif", "zones": zones}


def change_section(changes: dict) -> list[tuple[str, str]]:
    """The report's section on changes (heading, escaped HTML); none on a first run."""
    from html import escape

    if not changes.get("compared"):
        return []
    items = "".join(f"<li>{escape(line)}</li>" for line in change_lines(changes))
    return [("Changes since the previous run",
             f"<p>{escape(CHANGE)}.tif: {escape(changes['compared'])} of this run minus the previous run's "
             "(brown: more likely, teal: less likely, grey: nodata in either). Priority zones:</p>"
             f"<ul>{items}</ul>")]
