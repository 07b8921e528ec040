"""What changed since the previous run in OUT: ΔP_c as change_since_previous.tif, and which
priority zones appeared, grew, shrank or vanished.

Made while the new set is staged, before it is published: OUT's product files are then still
the previous run's (checked against the state's SHA-256, so a file edited since is never
compared). The rasters are read chunk by chunk with rasterio windows, so memory stays small;
an update reads only the chunks it redid (see `write_change`, `zone_changes`).
"""

from __future__ import annotations

import math
from pathlib import Path
from tempfile import TemporaryDirectory

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from odc.geo.geobox import GeoBox
from rasterio.windows import Window

from .outdir import is_published
from .writers.cog import ChunkedCog, TileCoder, gdal_tags
from .writers.overviews import downsample, overview_factors
from .writers.styles import Legend, Stop, ramp

CHANGE = "change_since_previous"
DEFAULT_RANGE = (-0.3, 0.3)
NODATA = -9999.0
# ColorBrewer BrBG-5, reversed: less risk teal, more risk brown, no change near white (colour-vision safe)
BR_BG = ["#018571", "#80cdc1", "#f5f5f5", "#dfc27d", "#a6611a"]
TITLE = "Change in P_c since the previous run (new − previous)"  # the file's title; maps name the run
COMPARED_WORDS = {"residual_probability": "residual probability P_res",
                  "contamination_probability": "contamination probability P_c"}


def compared_product(products: list[str]) -> str | None:
    """The product compared between runs: the residual when land release is configured, else P_c."""
    for name in ("residual_probability", "contamination_probability"):
        if name in products:
            return name
    return None


def change_title(compared: str | None = None, since: str = "") -> str:
    """What the change map compares, e.g. "Change in residual probability P_res since the run of
    2026-12-01 09:30 UTC (new − previous)"."""
    what = COMPARED_WORDS.get(compared or "", "P_c")
    return f"Change in {what} since the {f'run of {since}' if since else 'previous run'} (new − previous)"


def change_legend(lo: float | None = None, hi: float | None = None, title: str = TITLE) -> Legend:
    """A diverging ramp over a fixed symmetric range (values beyond take the end colours)."""
    lo, hi = (DEFAULT_RANGE[0] if lo is None else lo), (DEFAULT_RANGE[1] if hi is None else hi)
    stops = ramp(lo, hi, BR_BG)
    stops[0] = Stop(lo, stops[0].color, f"≤ {stops[0].label} (less likely)")
    stops[-1] = Stop(hi, stops[-1].color, f"≥ {stops[-1].label} (more likely)")
    return Legend("ramp", stops, title)


def previous_file(out_dir: Path, name: str, state: dict | None,
                  verified: set[str] = frozenset()) -> tuple[Path | None, str]:
    """OUT's file `name` if it is the file the last run published (None and why not, else);
    `verified`: names whose SHA-256 was checked already (an update's products), not hashed again."""
    path = out_dir / name
    published = (state or {}).get("published", {}).get(path.name)
    if published is None or not path.is_file():
        return None, f"the previous run made no {path.name}"
    if name not in verified and not is_published(path, published):
        return None, f"{path} is not the file the last run wrote (SHA-256 differs): not compared"
    return path, ""


def write_change(new: Path, old: Path, dst: Path, tags: dict[str, str] | None = None, chunk: int = 2048,
                 same: dict[tuple[int, int], int] | None = None) -> str:
    """ΔP = new − old as a float32 COG at `dst`: nodata where either is nodata. Returns "" or,
    when the two are not on the same grid, why no change was written.

    Worked chunk by chunk (`chunk` cells square), each with its overview levels, and written as
    the products are (tiles encoded as they come, the file put together once, see
    `writers.cog`). `same` names the chunks (row, col) an update left alone, with their count
    of valid cells: there ΔP is 0 wherever the cell is valid, so a wholly valid one is zeros and
    a wholly empty one nodata, neither read from a file; only the other chunks are read.
    """
    same = same or {}
    with rasterio.open(new) as a, rasterio.open(old) as b:
        if (a.crs, a.transform, a.shape) != (b.crs, b.transform, b.shape):
            return f"{old.name} of the previous run is on another grid: no change map"
        crs, transform, (height, width) = a.crs, a.transform, a.shape
    factors = overview_factors((height, width), chunk)
    levels = [1, *factors]
    windows = [(r, c, Window(c * chunk, r * chunk, min(chunk, width - c * chunk), min(chunk, height - r * chunk)))
               for r in range(math.ceil(height / chunk)) for c in range(math.ceil(width / chunk))]
    coder = TileCoder("float32", NODATA)
    with TemporaryDirectory(prefix=f".{dst.stem}-", dir=dst.parent) as tmp:
        cog = ChunkedCog(Path(tmp), (height, width), chunk, coder, factors)  # as the products are written
        for r, c, w in windows:
            count = same.get((r, c))
            if count == 0:
                continue  # nodata in both runs: left to the file's nodata
            if count == w.width * w.height:  # valid and left alone: 0 everywhere, at every level
                blocks = {f: np.zeros((math.ceil(w.height / f), math.ceil(w.width / f)), np.float32) for f in levels}
            else:
                with rasterio.open(new) as a, rasterio.open(old) as b:
                    x = a.read(1, window=w, masked=True)
                    y = x if count is not None else b.read(1, window=w, masked=True)
                delta = np.ma.filled(x.astype("float32") - y.astype("float32"), NODATA).astype("float32")
                blocks = {1: delta}
                for f in levels[1:]:
                    blocks[f] = delta = downsample(delta, 2, NODATA, True)
            cog.add(int(w.row_off), int(w.col_off), blocks)
        cog.finish(dst, gdal_tags(crs.to_wkt(), transform, "float32", NODATA, tags or {}, {}, TITLE, ""))
    return ""


def zone_changes(old: Path, new: Path, cell_km2: float, tiles: list[GeoBox] | None = None) -> dict:
    """Compare two priority_zones.gpkg by overlap: a new zone overlapping no old one appeared, an
    old one overlapping no new one vanished; overlapping groups whose area changed by more than
    one cell grew or shrank. Zones are named by their rank in the new (or, vanished, old) file.

    With `tiles` (grid chunks: an update's redone ones, or all of a full run's), only zones meeting
    one (touching counts) are read: zones are disjoint, so one clear of every redone chunk is the
    same zone in both files, changed not; and overlap is found on the cells (see `_cell_pairs`)."""
    mask = shapely.union_all([shapely.box(*t.boundingbox) for t in tiles]) if tiles is not None else None
    before = _zones(old, mask)
    after = _zones(new, mask)
    out = {"appeared": [], "vanished": [], "grew": [], "shrank": []}
    if before is None or after is None:
        return {**out, "note": "no previous priority zones to compare" if before is None else "no priority zones"}
    new_geoms, old_geoms = after.geometry.to_numpy(), before.geometry.to_numpy()
    if tiles is not None:
        new_i, old_i = _cell_pairs(new_geoms, old_geoms, tiles)
    else:
        new_i, old_i = shapely.STRtree(old_geoms).query(new_geoms)  # boxes meet (empty files: no pairs)
        # interiors meet (not just touching or boxes): one DE-9IM test a pair, no intersection built
        overlap = shapely.relate_pattern(new_geoms[new_i], old_geoms[old_i], "T********")
        new_i, old_i = new_i[overlap], old_i[overlap]
    met: dict[int, set[int]] = {}
    for i, j in zip(new_i.tolist(), old_i.tolist()):
        met.setdefault(i, set()).add(j)
    touched_old = set(old_i.tolist())
    new_zones, old_zones = _described(after), _described(before)
    out["appeared"] = [new_zones[i] for i in range(len(after)) if i not in met]
    out["vanished"] = [old_zones[i] for i in range(len(before)) if i not in touched_old]
    old_area, new_area = before["area_km2"].to_numpy(), after["area_km2"].to_numpy()
    for i in sorted(met):
        was = float(old_area[sorted(met[i])].sum())
        now = float(new_area[i])
        entry = {**new_zones[i], "previous_area_km2": round(was, 4)}
        if now - was > cell_km2 * 1.0001:
            out["grew"].append(entry)
        elif was - now > cell_km2 * 1.0001:
            out["shrank"].append(entry)
    return out


def _cell_pairs(new: np.ndarray, old: np.ndarray, tiles: list[GeoBox]) -> tuple[np.ndarray, np.ndarray]:
    """(new, old) index pairs of zones sharing a cell of `tiles`. Zones are unions of grid cells,
    so their interiors meet exactly where both hold a cell: one burn of each file per chunk
    instead of a DE-9IM test per pair (thousands of small zones against a large one took seconds)."""
    from rasterio.features import rasterize

    pairs = [np.empty(0, np.int64)]
    new_tree, old_tree = shapely.STRtree(new), shapely.STRtree(old)
    # a zone that only touches a tile holds a cell of the ring around it: without that ring an
    # unchanged zone touching a redone chunk matched nothing and read as appeared and vanished
    for t in (t.pad(1) for t in tiles):
        box = shapely.box(*t.boundingbox)
        a, b = new_tree.query(box, predicate="intersects"), old_tree.query(box, predicate="intersects")
        if not len(a) or not len(b):
            continue
        burn = [rasterize(zip(geoms[k], k + 1), out_shape=tuple(t.shape), transform=t.affine, fill=0, dtype="int32")
                for geoms, k in ((new, a), (old, b))]
        both = (burn[0] > 0) & (burn[1] > 0)
        pairs.append((burn[0][both].astype(np.int64) - 1) * len(old) + burn[1][both] - 1)
    keys = np.unique(np.concatenate(pairs))
    return keys // max(len(old), 1), keys % max(len(old), 1)


def _zones(path: Path, mask=None) -> gpd.GeoDataFrame | None:
    if not path.is_file():
        return None
    frame = gpd.read_file(path, mask=mask)  # the zones meeting `mask`, in file order (as a full read)
    return frame.reset_index(drop=True)


def _described(frame: gpd.GeoDataFrame) -> list[dict]:
    """Each zone's rank, area, district and centre, in the frame's order (one pass, not row by row)."""
    ranks = frame["rank"].tolist() if "rank" in frame else [None] * len(frame)
    districts = frame["district"].tolist() if "district" in frame else [None] * len(frame)
    centres = shapely.centroid(frame.geometry.to_numpy())
    out = []
    for rank, area, district, x, y in zip(ranks, frame["area_km2"].tolist(), districts,
                                          shapely.get_x(centres).tolist(), shapely.get_y(centres).tolist()):
        d = {"rank": int(rank) if rank is not None else None, "area_km2": round(float(area), 4)}
        if district is not None:
            d["district"] = str(district)
        d["centre"] = [round(x, 1), round(y, 1)]
        out.append(d)
    return out


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
                 tags: dict[str, str], chunk: int = 2048, same: dict[tuple[int, int], int] | None = None,
                 verified: set[str] = frozenset(), tiles: list[GeoBox] | None = None) -> tuple[Legend | None, dict]:
    """change_since_previous.tif (+ .qml) in `staging` and the zone changes, when OUT holds a
    previous run's product on this grid; (None, {"note": why not}) else. An update passes the
    chunks it left alone (`same`, see `write_change`); `tiles` are the chunks whose zones are
    compared (an update's redone ones), see `zone_changes`."""
    from .writers.styles import qml

    name = compared_product(products)
    if name is None or previous is None:
        return None, {"note": "first run in this folder: nothing to compare"}
    old, why = previous_file(out_dir, f"{name}.tif", previous, verified)
    if old is None:
        return None, {"note": why}
    why = write_change(sources[name], old, staging / f"{CHANGE}.tif", {**tags, "MINEMAP_PRODUCT": CHANGE,
                                                                     "MINEMAP_COMPARED": name}, chunk, same)
    if why:
        return None, {"note": why}
    legend = change_legend(*(lo_hi or (None, None)), title=change_title(name, previous_run_date(out_dir, previous)))
    (staging / f"{CHANGE}.qml").write_text(qml(legend))
    old_zones, why = previous_file(out_dir, "priority_zones.gpkg", previous)
    if not (staging / "priority_zones.gpkg").exists():
        zones = {"note": "no priority zones made"}
    elif old_zones is None:
        zones = {"appeared": [], "vanished": [], "grew": [], "shrank": [], "note": why}
    else:
        zones = zone_changes(old_zones, staging / "priority_zones.gpkg", cell_km2, tiles)
    return legend, {"compared": name, "file": f"{CHANGE}.tif", "zones": zones}


def previous_run_date(out_dir: Path, previous: dict | None) -> str:
    """When the previous run in OUT was made ("YYYY-MM-DD HH:MM UTC", from its run.json; "" when
    that is not the file it published or cannot be read)."""
    import json

    path, _ = previous_file(out_dir, "run.json", previous)
    try:
        created = json.loads(path.read_text(encoding="utf-8"))["created_utc"] if path is not None else ""
    except (OSError, ValueError, KeyError, TypeError):
        return ""
    return f"{created[:16].replace('T', ' ')} UTC" if isinstance(created, str) and created else ""


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
