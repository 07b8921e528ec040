"""The pack's pages in order (summary, changes, districts by priority, evaluation), the district
drawings kept between runs under a key of all they show, and the file written atomically."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import pikepdf
import rasterio
import shapely
from matplotlib.backends.backend_pdf import PdfPages

from ..columns import readable
from .brief import Briefing
from .changes import changes_page
from .cover import summary_page
from .district import Look, district_look, district_text, drawing_bytes, for_drawing, with_cells
from .drawing import DPI
from .evaluation import evaluation_page

if TYPE_CHECKING:
    import geopandas


PAGE_STYLE = "6"  # in every stored district page's key: raise it when the page's drawing changes


def write_briefing(pdf: Path, b: Briefing, kept: dict[Path, str] | None = None, staged: Path | None = None,
                   then: Callable[[], dict] | None = None, pool: Executor | None = None) -> dict:
    """Write `pdf` (replaced atomically): the summary, the changes page, a page per district in
    priority order and the evaluation page. Returns the districts whose page was "drawn" and those "reused", and the pages'
    "looks" (window → digest of its cells, for the next run's `b.looks`).

    A district page is two layers: its drawing (map, outlines, points, legends: most of the time)
    is stored in `staged` under a key of everything it shows (see `_map_key`), and taken from
    `kept` (an earlier run's, with their SHA-256) when its key is there and its bytes are the ones
    recorded; its words (heading, run, page number, zone
    ranks, figures, zone list) are drawn each run and stamped over it, so a reused drawing carries
    this run's numbers: it shows the same cells and outlines, or it would not have been reused.
    `then` returns fields of `b` known only later (the changes), waited for before the words.
    `pool` (e.g. the run's worker processes) draws the drawings to make while the words are drawn
    here; without one they are drawn here first."""
    pdf = Path(pdf)
    b = replace(b, districts=in_priority_order(b.districts))
    paged = _on_grid(b)  # districts with cells in the grid's region get a page; the rest are listed on the cover
    districts = b.districts[paged] if b.districts is not None else None
    tmp = pdf.with_name(f".{pdf.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    done: dict = {"drawn": [], "reused": []}
    looks: dict[str, str] = {}
    maps: list[bytes | Future] = []
    keys: list[str] = []
    rows = [districts.iloc[k] for k in range(len(districts))] if districts is not None else []
    with ThreadPoolExecutor(2, thread_name_prefix="minemap-looks") as lookers:
        # the pages' cells are read (GDAL, hashlib: the interpreter is free) while the summary is drawn here
        pending = [lookers.submit(district_look, b, row) for row in rows]
        first = b  # what the drawings and their keys are made from (the words get the changes too)
        if then is not None:
            b = replace(b, **then())
        n_pages = 1 + len(rows) + (b.evaluation is not None) + (b.changes is not None)
        b = replace(b, paged=paged)
        front = 1 + (b.changes is not None)  # the summary, then what changed: the answer before the detail
        rest = io.BytesIO()  # the summary, the changes, each district page's words and the evaluation page
        with PdfPages(rest) as pages:
            pages.savefig(summary_page(b, n_pages), dpi=DPI)
            if b.changes is not None:
                pages.savefig(changes_page(b, 2, n_pages), dpi=DPI)
            if rows:
                headers, cells, _ = readable(districts.drop(columns=["district"]))  # one rounding per column
                sent = for_drawing(first)
            for k, row in enumerate(rows):
                look = pending[k].result()
                looks[look.window] = look.digest
                key = _map_key(first, row, look)
                drawing = _stored_page(kept, key)
                done["reused" if drawing is not None else "drawn"].append(str(row["district"]))
                if drawing is None:  # drawn in `pool` while the next words are drawn here
                    look = with_cells(first, look)
                    drawing = (pool.submit(drawing_bytes, sent, row, look) if pool is not None
                               else drawing_bytes(sent, row, look))
                maps.append(drawing)
                keys.append(key)
                words = replace(look, data=None, hidden=None)  # the words need no cells
                pages.savefig(district_text(b, row, list(zip(headers, cells[k])), words, k + 1 + front, n_pages),
                              dpi=DPI)
            if b.evaluation is not None:
                pages.savefig(evaluation_page(b, n_pages), dpi=DPI)
    maps = [m.result() if isinstance(m, Future) else m for m in maps]
    for key, drawing in zip(keys, maps):
        _store_page(staged, key, drawing)
    done["looks"] = looks  # for the next run's state (see `district_look`)
    sources = []  # open until the pack is saved: its pages refer to them
    try:
        made = pikepdf.open(io.BytesIO(rest.getvalue()))
        sources.append(made)
        with pikepdf.new() as out:
            for page in made.pages[:front]:
                out.pages.append(page)
            for k, drawing in enumerate(maps):
                sources.append(pikepdf.open(io.BytesIO(drawing)))
                out.pages.append(sources[-1].pages[0])
                out.pages[-1].add_overlay(made.pages[front + k])  # this run's words over the district's drawing
            for page in made.pages[front + len(maps):]:
                out.pages.append(page)
            out.docinfo["/Title"] = f"{b.title} — briefing"
            out.docinfo["/Subject"] = b.label or "minemap briefing"
            out.docinfo["/Creator"] = f"minemap {b.version}"
            out.save(tmp)
        os.replace(tmp, pdf)
    finally:
        tmp.unlink(missing_ok=True)
        for source in sources:
            source.close()
    return done


def in_priority_order(districts: "geopandas.GeoDataFrame | None") -> "geopandas.GeoDataFrame | None":
    """The districts in the order to brief them: by `priority` (1 first; mostly-not-assessed
    districts come after all assessed ones) when the table has it, else as they are."""
    if districts is None or "priority" not in districts:
        return districts
    return districts.sort_values("priority", kind="stable", na_position="last")


def _on_grid(b: Briefing) -> np.ndarray:
    """Which districts hold cells of the grid's region (a districts layer may reach beyond it:
    those have no cells to map, and no page)."""
    if b.districts is None:
        return np.zeros(0, bool)
    with rasterio.open(b.raster) as ds:
        grid = shapely.box(*ds.bounds)
    inside = shapely.intersects(np.asarray(b.districts.geometry.values, dtype=object), grid)
    if "area_km2" in b.districts:
        inside &= b.districts["area_km2"].fillna(0).to_numpy() > 0
    return inside


def _stored_page(kept: dict[Path, str] | None, key: str) -> bytes | None:
    """The drawing kept under `key`, if its bytes are the ones recorded (else None: drawn again)."""
    for path, sha in sorted((kept or {}).items()):
        if path.name.startswith(f"{key}-") and path.is_file():
            data = path.read_bytes()
            if hashlib.sha256(data).hexdigest() == sha:
                return data
    return None


def _store_page(staged: Path | None, key: str, body: bytes) -> None:
    if staged is not None:
        staged.mkdir(parents=True, exist_ok=True)
        (staged / f"{key}-{hashlib.sha256(body).hexdigest()[:16]}.pdf").write_bytes(body)


def _map_key(b: Briefing, row, look: "Look") -> str:
    """A hash of everything a district page's drawing shows (`district_map`): same key, same
    drawing. Ranks, figures and the run are in its words, drawn each run."""
    h = hashlib.sha256()
    for part in (PAGE_STYLE, DPI, b.version, b.raster_title, b.unit, repr(b.legend), repr(look.view),
                 repr(look.extent), look.window, look.digest, len(look.cleared), len(look.records),
                 b.hidden.label if b.hidden is not None else None, b.grid_crs):
        h.update(repr(part).encode() + b"\0")
    h.update(shapely.to_wkb(row.geometry))
    near = look.near.geometry.values if look.near is not None else []
    # zones as far as the map shows them (in one form whatever their ring's start): a zone that
    # changed only beyond the view draws the same
    shown = shapely.normalize(shapely.clip_by_rect(np.asarray(near, dtype=object), *look.view))
    for geoms in (b.districts.geometry.values, look.cleared, shown):
        h.update(repr(len(geoms)).encode())
        for g in geoms:
            h.update(shapely.to_wkb(g))
    h.update(np.ascontiguousarray(look.records, dtype=np.float64).tobytes())
    return h.hexdigest()[:32]
