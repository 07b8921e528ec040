"""Deliver: everything a run writes besides the product files — styles, district and zone
summaries, QGIS project, maps, report, briefing PDF (with `[output] deliverables`), then the
STAC item and the run record (run.json), all into staging."""

from __future__ import annotations

import json
import time
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..calibrate.apply import model_section
from ..model import banner as model_banner, record as model_record
from ..writers.report import insert_banner
from ..assessment import EVIDENCE, WORDS, assessment_record, min_evidence
from ..change import CHANGE, change_lines, change_section, compared_product, stage_change
from ..deliverables import write_briefing_pack, write_catalogue_item, write_maps_and_report, write_qgis_project
from ..errors import Problem
from ..history import newest_acquisition, stage_history
from ..outdir import file_hashes, kept_files, kept_pages
from ..products import PRODUCTS, product_equation, product_title
from ..summaries import write_summaries
from ..tiles import chunk_key
from ..writers.assessed import hidden_maps, not_assessed_words
from ..writers.chunks import WorkerProcesses
from ..targets import ChunkParts, RasterTarget
from ..writers.styles import E_UNITS, in_field_words, qml
from ..writers.tasks import stage_tasks
from ..targets import STORE
from .plan import Inputs, input_files

RUN_RECORD = "run.json"
ZARR_SKIPS = ("\"zarr\" writes products.zarr only; the .qml styles, maps, report, briefing PDF, QGIS project, "
              "evidence.gpkg, evidence/ and change_since_previous are drawn from GeoTIFFs and are not made "
              "(format = \"cog\" makes them)")


@dataclass
class Delivery:
    """What a run delivers beside its product files, and the names of the files it staged."""

    inputs: Inputs
    out_dir: Path
    staging: Path
    targets: list[RasterTarget]
    created: str
    extra: ChunkParts | None = None  # the summaries' per-chunk parts
    fields: set[str] = field(default_factory=set)  # which summary fields the parts hold
    bundle_rasters: bool = False
    previous: dict | None = None  # the last run's state: its published files, to compare with
    names: list[str] = field(default_factory=list)
    timing: dict = field(default_factory=dict)
    changes: dict = field(default_factory=dict)  # since the previous run: compared product, zones
    changed: set | None = None  # an update's redone chunks (row, col); None: a full run
    pages: dict = field(default_factory=dict)  # the briefing's district drawings: drawn, reused
    processes: WorkerProcesses | None = None  # the run's worker processes (idle once the chunks are done)
    made_from: dict[str, str] = field(default_factory=dict)  # kept deliverables' keys, for the state
    hashing: Future | None = None  # the product files' SHA-256, taken while the rest is drawn
    looks: dict[str, str] = field(default_factory=dict)  # the briefing pages' cells, for the state
    tasking: dict | None = None  # the field tasks' grid and counts, for run.json
    files: Executor | None = None  # a thread writing files nothing else here reads (the tasks'), while in a call
    waits: list[Future] = field(default_factory=list)  # that thread's work, waited for before the call returns

    def __call__(self, sources: dict[str, Path]) -> None:
        """Styles, summaries, QGIS project, maps and report: everything but the product files
        (`sources`, final by now: hashed for the record meanwhile, as hashlib frees the interpreter)."""
        t_sum = time.perf_counter()
        with (ThreadPoolExecutor(1, thread_name_prefix="minemap-hash") as hasher,
              ThreadPoolExecutor(1, thread_name_prefix="minemap-files") as self.files):
            self.hashing = hasher.submit(file_hashes, self.staging, [p.name for p in sources.values()])
            self._deliver(sources, t_sum)
            for waiting in self.waits:  # their errors are the run's; a list: the files it made
                made = waiting.result()
                if isinstance(made, list):
                    self.names.extend(made)
        self.timing["deliverables_s"] = round(time.perf_counter() - t_sum, 3)

    def _deliver(self, sources: dict[str, Path], t_sum: float) -> None:
        cfg, grid, staging, targets = self.inputs.cfg, self.inputs.grid, self.staging, self.targets
        if cfg.spec.output.deliverables and self.processes is not None:
            self.processes.ready_to_draw()  # beside the summaries, change and project
        titles = {t.name: product_title(t.name, cfg) for t in targets}  # on maps, project, report
        residual = "residual_probability" in (t.name for t in targets)
        words = not_assessed_words(cfg) if min_evidence(cfg) > 0 else ""
        layers = ", ".join(WORDS[v] for v in EVIDENCE)
        styles, legends = {}, {t.name: in_field_words(t.name, PRODUCTS[t.name].style(cfg), words, layers)
                               for t in targets}
        zarr = cfg.spec.output.format == "zarr"  # issue #12: one store, and nothing drawn from GeoTIFFs
        for t in [] if zarr else targets:
            styles[t.name] = qml(legends[t.name])
            (staging / f"{t.name}.qml").write_text(styles[t.name])
            self.names.extend([f"{t.name}.tif", f"{t.name}.qml"])
        if zarr:
            self.names.append(STORE)
        extra, districts = self.extra, self.inputs.districts
        tables = write_summaries(staging, extra.parts, cfg, grid, districts, self.fields) if extra else {}
        self.names.extend(f for f in ("districts.gpkg", "districts.csv", "priority_zones.gpkg")
                          if (staging / f).exists())
        if extra:  # field tasks: the zones cut along the tasking grid (tables gets them as "tasks"); their
            # files are written beside the rest (GeoJSON's coordinates are slow to print), which needs only the table
            names, self.tasking, writing = stage_tasks(staging, extra.parts, cfg, grid,
                                                       districts and districts.names, self.fields, tables,
                                                       self.files)
            self.names.extend(names)
            if writing is not None:
                self.waits.append(writing)
        if zarr:
            self.changes.update(note=ZARR_SKIPS)
            if cfg.spec.output.deliverables:
                self.inputs.warnings.append(Problem("[output] format", ZARR_SKIPS))
            self.timing["deliverables_s"] = round(time.perf_counter() - t_sum, 3)
            return
        units = {t.name: E_UNITS if t.name == "environmental_impact" else t.unit for t in targets}
        deliver = cfg.spec.output.deliverables
        # the pack beside the change, project, maps and report: its district drawings need no change,
        # its words wait for it (`then`); both sides wait on GDAL and zlib much of the time, which
        # free the interpreter
        with ThreadPoolExecutor(1, thread_name_prefix="minemap-pack") as pool:
            known: Future = Future()  # the change, once staged: for the pack's changes page
            pack = pool.submit(write_briefing_pack, staging, self.out_dir, sources, cfg, grid, self.inputs.layers,
                               legends, titles, units, tables, self.created, __version__,
                               then=known.result, kept=kept_pages(self.out_dir, self.previous),
                               pool=self._pool(), redone=self._redone(),
                               looks=(self.previous or {}).get("looks"),
                               hidden=hidden_maps(sources, cfg).get(_briefed(sources))) if deliver else None
            try:
                t_change = time.perf_counter()  # ΔP_c and zone changes since the previous run (see `change`)
                change, found = stage_change(staging, self.out_dir, sources, self.previous, list(legends),
                                             grid.cell_area_km2, cfg.spec.products.colour_range(CHANGE),
                                             targets[0].tags, grid.chunk, *self._left_alone(list(legends)))
                self.changes.update(found)
                self.timing["change_s"] = round(time.perf_counter() - t_change, 3)
                changed = staging / f"{CHANGE}.tif" if change is not None else None
                known.set_result({"changes": change_lines(self.changes) if self.changes.get("compared") else None,
                                  "change": (changed, change) if change is not None else None,
                                  "change_hidden": hidden_maps(sources, cfg, changed).get(CHANGE)})
            except BaseException as e:
                known.set_exception(e)  # the pack stops too
                raise
            maps, map_legends, map_titles = dict(sources), dict(legends), dict(titles)  # the products' maps,
            captions, map_units = {t.name: product_equation(t.name, cfg) for t in targets}, dict(units)
            if residual and "risk_class" in captions:  # the classes come from P_res
                captions["risk_class"] = captions["risk_class"].replace("P_c", "P_res")
            if change is not None:  # and the change's
                self.names.extend([f"{CHANGE}.tif", f"{CHANGE}.qml"])
                maps[CHANGE], map_legends[CHANGE], map_titles[CHANGE] = staging / f"{CHANGE}.tif", change, change.title
                captions[CHANGE], map_units[CHANGE] = f"new − previous {found['compared']}", "ΔP"
            if deliver:
                project = ({**styles, CHANGE: qml(change)}, map_titles) if change is not None else (styles, titles)
                kept = kept_files(self.out_dir, self.previous)  # unchanged maps and evidence are copied
                # the project and its evidence beside the maps (nothing below reads them): the maps start sooner
                self.waits.append(self.files.submit(
                    write_qgis_project, staging, self.out_dir, cfg, grid, self.inputs.layers, *project, self.created,
                    __version__, self.bundle_rasters or cfg.spec.output.bundle_rasters, input_files(self.inputs),
                    kept, self.made_from, hidden_maps(sources, cfg).get(_briefed(sources))))
                when = f"{self.created[:16].replace('T', ' ')} UTC"
                about = " · ".join(x for x in (f"grid {grid.name}", f"minemap {__version__}", cfg.spec.label) if x)
                self.names.extend(write_maps_and_report(staging, maps, grid, map_legends, map_titles, captions,
                                                        map_units, tables, about, dpi=cfg.spec.output.dpi,
                                                        sections=change_section(self.changes) + model_section(cfg),
                                                        pool=self._pool(), stamp=f"Drawn {when}", kept=kept,
                                                        made_from=self.made_from, run=f"Run {when}",
                                                        hidden=hidden_maps(sources, cfg, maps.get(CHANGE)),
                                                        as_of=newest_acquisition(cfg, self.inputs.layers),
                                                        classes=list(cfg.spec.products.risk_class.names),
                                                        changes=change_lines(self.changes)
                                                        if self.changes.get("compared") else None,
                                                        staged=lambda: [w.result() for w in self.waits]))
                if cfg.spec.model is not None:  # under the title, where a reader looks first (#21)
                    insert_banner(staging / "report.html", "model-banner", model_banner(cfg.spec.model))
                name, self.pages = pack.result()
                self.looks = self.pages.pop("looks", {})
                self.names.append(name)
        self.timing["deliverables_s"] = round(time.perf_counter() - t_sum, 3)

    def _pool(self) -> Executor | None:
        """Where the maps and the briefing's district drawings are drawn: the run's worker processes,
        idle once the chunks are done (a large grid's full run), beside the pack's words and the
        project here; None: threads and this process."""
        return self.processes.pool if self.processes is not None else None

    def _redone(self) -> list[tuple[float, float, float, float]] | None:
        """An update's redone chunks' bounds (left, bottom, right, top); None: a full run."""
        if self.changed is None:
            return None
        return [tuple(self.inputs.grid.tile_geobox(idx).boundingbox) for idx in sorted(self.changed)]

    def _left_alone(self, names: list[str]) -> tuple[dict | None, set[str], list | None]:
        """For an update (`changed` known): the compared product's valid cells in each chunk left
        alone (0: none), the product files the runner already checked by SHA-256 before patching
        them, and the chunks whose zones are compared: the redone ones (a full run: all, nothing else)."""
        grid, compared = self.inputs.grid, compared_product(names)
        if self.changed is None:
            return None, set(), [grid.tile_geobox(idx) for idx in grid.tile_ids() if grid.tile_in_region(idx)]
        parts = next((t.parts for t in self.targets if t.name == compared), {})
        same = {}
        for idx in grid.tile_ids():
            if idx in self.changed:
                continue
            if not grid.tile_in_region(idx):
                same[idx] = 0  # never computed: nodata in every run
            elif (part := parts.get(chunk_key(idx))) is not None:
                same[idx] = int(part[0])
        return same, {f"{n}.tif" for n in names}, [grid.tile_geobox(idx) for idx in sorted(self.changed)]

    def record(self, timings: dict, changed: set | None) -> dict:
        """The STAC item and run.json into staging (after the product files and `__call__`)."""
        cfg, grid, targets = self.inputs.cfg, self.inputs.grid, self.targets
        bands = {t.name: {"equation": product_equation(t.name, cfg),
                          "band": {"nodata": t.nodata, "dtype": str(t.array.dtype), "unit": t.unit,
                                   "statistics": t.stats.as_dict()}} for t in targets}
        titles = {t.name: product_title(t.name, cfg) for t in targets}
        if self.changes.get("compared"):
            bands[CHANGE] = {"equation": f"new − previous {self.changes['compared']}",
                             "band": {"nodata": -9999.0, "dtype": "float32", "unit": "ΔP"}}
            titles[CHANGE] = "Change since the previous run"
        self.names.append(write_catalogue_item(self.staging, grid, self.created, self.names + [RUN_RECORD], bands,
                                               titles, {
            "title": f"minemap products on grid {grid.name}", "minemap:version": __version__,
            "minemap:config_sha256": cfg.digest(), "minemap:grid": grid.name,
            "minemap:chunks_recomputed": len(changed) if changed is not None else None}))
        self.names.extend(stage_history(self.staging, self.out_dir, self.names[-1], self.created,
                                        newest_acquisition(cfg, self.inputs.layers), cfg.spec.output.keep_history,
                                        f"minemap runs on grid {grid.name}"))
        record = run_record(self.inputs, targets, self.created, timings)
        if changed is not None:
            record["chunks_recomputed"] = len(changed)
        record["changes"] = self.changes
        if self.tasking is not None:
            record["tasking"] = self.tasking
        if self.pages:
            record["briefing_pages"] = self.pages
        known = self.hashing.result() if self.hashing is not None else {}
        rest = file_hashes(self.staging, [n for n in self.names if n not in known])
        record["files"] = {n: known.get(n) or rest[n] for n in self.names}  # a reader can check the set is this run's
        (self.staging / RUN_RECORD).write_text(json.dumps(record, indent=2, default=str))
        return record


def _briefed(sources: dict[str, Path]) -> str:
    """The product the briefing pack maps (as `write_briefing_pack` picks it)."""
    return "residual_probability" if "residual_probability" in sources else "contamination_probability"


def run_record(inputs: Inputs, targets: list[RasterTarget], created: str, timings: dict) -> dict:
    hashes = input_files(inputs)
    files = {}
    for var, layer in inputs.layers.items():
        for f in layer.files:
            files.setdefault(str(f), {"sha256": hashes[str(f)], "variables": []})["variables"].append(var)
    return {
        "minemap_version": __version__,
        "created_utc": created,
        "config": {"path": str(inputs.cfg.path), "sha256": inputs.cfg.digest(),
                   "settings": inputs.cfg.spec.model_dump(mode="json")},
        "grid": inputs.grid.describe(),
        "inputs": files,
        "rejected": [str(p) for p in inputs.rejected],
        "warnings": [str(p) for p in inputs.warnings],
        "assessment": assessment_record(inputs.cfg, inputs.layers),
        "model": model_record(inputs.cfg.spec.model) if inputs.cfg.spec.model is not None else None,
        "products": {t.name: {**_where(t.name, inputs.cfg.spec.output.format),
                              "equation": product_equation(t.name, inputs.cfg),
                              "unit": PRODUCTS[t.name].unit, **t.stats.as_dict()} for t in targets},
        "timings": timings,
    }


def _where(name: str, fmt: str) -> dict:
    """Where a product's cells are: its GeoTIFF and style, or its variable in the Zarr store."""
    if fmt == "zarr":
        return {"file": STORE, "variable": name}
    return {"file": PRODUCTS[name].file, "style": f"{name}.qml"}
