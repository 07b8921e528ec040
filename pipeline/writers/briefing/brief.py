"""What a briefing pack shows (`Briefing`), gathered by `deliverables` and drawn by the page modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas

from .. import assessed
from ..styles import Legend

if TYPE_CHECKING:
    import geopandas


CAVEAT = ("A model of the evidence listed, not a survey result. P_c is the estimated probability of "
          "contamination from mine records, soil and drone data; where evidence is thin (see "
          "evidence_count.tif) a low value is not proof that land is safe. Confirm on the ground "
          "before any land is released or entered.")


@dataclass
class Briefing:
    """What the pack shows; geometries are in the raster's CRS."""

    title: str
    region: str
    created: str  # ISO UTC
    version: str
    label: str
    inputs: dict[str, list[str]]  # file → the variables it feeds (as in run.json "inputs")
    raster: Path  # P_c, or the residual risk: a readable file with overviews
    raster_title: str
    unit: str
    legend: Legend
    districts: geopandas.GeoDataFrame | None = None  # the district table, with geometry
    zones: geopandas.GeoDataFrame | None = None
    records: np.ndarray = field(default_factory=lambda: np.empty(0, object))  # mine-record points
    cleared: np.ndarray = field(default_factory=lambda: np.empty(0, object))  # cleared-area polygons
    evaluation: dict | None = None
    evaluation_written: str = ""  # when evaluation.json was written (it may predate this run)
    caveat: str = CAVEAT
    changes: list[str] | None = None  # zone changes since the previous run, in words (None: first run)
    change: tuple[Path, Legend] | None = None  # change_since_previous.tif and its colours
    redone: list[tuple[float, float, float, float]] | None = None  # an update's redone chunks (None: all new)
    looks: dict[str, str] = field(default_factory=dict)  # the last run's page cells: window → digest
    model: tuple[str, str | None] | None = None  # a fitted [model]: what was applied, and its banner (#21)
    hidden: assessed.NotAssessed | None = None  # land not assessed on `raster` (a grey hatch)
    paged: np.ndarray | None = None  # which districts have a page (the others lie outside the region)
    change_hidden: assessed.NotAssessed | None = None  # and on the change map
    as_of: tuple[str, str] | None = None  # the newest input's time (ISO UTC) and file: what the map is "as of"
    tasks: pandas.DataFrame | None = None  # the top field tasks (`pipeline.tasks.top_tasks`), for the summary
    classes: list[tuple[str, str]] = field(default_factory=list)  # risk classes, lowest first: name, km² column
    grid_crs: str = ""  # the grid's CRS in words (`mapgrid.crs_words`), named under each district map's grid
