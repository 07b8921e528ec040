"""Run history: every run's STAC Item kept in OUT/history/, linked from OUT/catalog.json.

A history item is the run's item.json with its `datetime` set to the newest input's
acquisition time (what the map shows the state of) and the run time as `minemap:run_utc`.
Its asset links point at OUT's files, which later runs replace (its band statistics stay
that run's). The last `keep` items are kept; older ones are removed
after the publish, under the output lock.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyogrio
import pystac
import rasterio

from . import store
from .config import LoadedConfig
from .sources.raster import acquisition_time
from .vector import located, ogr

HISTORY = "history"
CATALOG = "catalog.json"


def newest_acquisition(cfg: LoadedConfig, layers: dict) -> tuple[str, str]:
    """The newest input's acquisition time (ISO UTC) and its file: rasters by their time tag
    (as minemap reads it, else the file's modification time), the release layer by its newest
    `date_field` value when the config names one, other vectors and tables by the file's
    modification time."""
    release = cfg.spec.release
    dated = cfg.resolve(release.path) if release is not None and release.date_field else None
    newest, source = None, ""
    for var, layer in layers.items():
        spec = cfg.spec.inputs.get(var)
        tag = getattr(spec, "time_tag", None) if spec is not None and spec.kind == "raster" else None
        for f in layer.files:
            path = located(f)
            if f in layer.acquired:  # a STAC item's datetime
                t = layer.acquired[f]
            elif tag:
                with rasterio.open(store.gdal_path(path) if store.is_url(path) else path) as ds:
                    t = acquisition_time(ds.tags(), tag, path)
            elif path == dated:
                t = newest_date(path, release.layer, release.date_field) or modified_time(path)
            else:
                t = modified_time(path)
            if newest is None or t > newest:
                newest, source = t, str(path)
    when = datetime.fromtimestamp(newest if newest is not None else 0, timezone.utc).replace(microsecond=0)
    return when.isoformat(), source


def newest_date(path: Path, layer: str | None, field: str) -> float | None:
    """The newest date in a vector file's `field` (dates without a zone are UTC); None if none."""
    values = pyogrio.read_dataframe(ogr(path), layer=layer, columns=[field], read_geometry=False)[field]
    dates = pd.to_datetime(values.astype("string").str.strip(), errors="coerce", format="mixed", utc=True)
    return None if dates.isna().all() else dates.max().timestamp()


def run_stamp(now: datetime | None = None) -> str:
    """A filesystem-safe, sortable UTC run time (microseconds: two runs in one second differ)."""
    return (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%S.%fZ")


def kept_items(out_dir: Path) -> list[str]:
    """The history items OUT's catalog links, oldest first (names relative to OUT)."""
    try:
        raw = json.loads((out_dir / CATALOG).read_text())
    except (OSError, ValueError):
        return []
    names = [link["href"].removeprefix("./") for link in raw.get("links", []) if link.get("rel") == "item"]
    # only plain names in history/: a hand-edited catalog can neither link nor keep anything else
    return [n for n in names if re.fullmatch(rf"{HISTORY}/[A-Za-z0-9_][A-Za-z0-9_.-]*\.json", n)
            and ".." not in n and (out_dir / n).is_file()]


def stage_history(staging: Path, out_dir: Path, item: str, created: str, acquired: tuple[str, str],
                  keep: int, title: str) -> list[str]:
    """Set the staged item's datetime to `acquired`, stage its copy in history/ and a catalog
    linking the last `keep` items; returns the staged names (the history item, catalog.json)."""
    raw = json.loads((staging / item).read_text())
    raw["properties"].update({"datetime": acquired[0], "minemap:run_utc": created,
                              "minemap:newest_input": acquired[1]})
    raw["links"] = [link for link in raw.get("links", []) if link.get("rel") not in ("root", "parent")]
    (staging / item).write_text(json.dumps({**raw, "links": raw["links"] + _up("./")}, indent=2))
    name = f"{HISTORY}/{run_stamp()}.json"
    past = {**raw, "links": raw["links"] + _up("../"),
            "assets": {k: {**a, "href": "../" + a["href"].removeprefix("./")} for k, a in raw["assets"].items()}}
    (staging / HISTORY).mkdir(exist_ok=True)
    (staging / name).write_text(json.dumps(past, indent=2))
    items = (kept_items(out_dir) + [name])[-keep:]
    catalog = pystac.Catalog(id=f"minemap-history-{raw['properties'].get('minemap:grid', 'grid')}",
                             description=f"{title}: one STAC item per run, newest last (the last {keep} runs)",
                             title=title)
    for n in items:
        catalog.add_link(pystac.Link(pystac.RelType.ITEM, f"./{n}", media_type=pystac.MediaType.JSON))
    catalog.add_link(pystac.Link("current", f"./{item}", media_type=pystac.MediaType.JSON,
                                 title="the newest run's item"))
    (staging / CATALOG).write_text(json.dumps(catalog.to_dict(include_self_link=False, transform_hrefs=False),
                                              indent=2))
    return [name, CATALOG]


def _up(prefix: str) -> list[dict]:
    return [{"rel": rel, "href": f"{prefix}{CATALOG}", "type": pystac.MediaType.JSON} for rel in ("root", "parent")]


def prune_history(out_dir: Path) -> list[str]:
    """Remove history items the published catalog no longer links; returns what was removed.
    Call after the publish, under the output lock."""
    linked = set(kept_items(out_dir))
    removed = []
    for path in sorted((out_dir / HISTORY).glob("*.json")):
        name = f"{HISTORY}/{path.name}"
        if name not in linked:
            path.unlink()
            removed.append(name)
    return removed


def modified_time(path: Path | str) -> float:
    """A file's modification time, or an object's last-modified time (POSIX seconds)."""
    return store.modified_time(path) if store.is_url(path) else Path(path).stat().st_mtime
