"""What a run writes, in no format: each product's lazy array and statistics (RasterTarget), the
per-chunk side results (ChunkParts), the Zarr store's name. Neutral ground, so the planner, the
sinks and the readers of products import it, not each other (issue #22 §7)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import dask.array as da

from .grid import Grid
from .tiles import Index, chunk_key

STORE = "products.zarr"  # the Zarr sink's store, in OUT


@dataclass
class BandStats:
    """Running min / max / mean / std of valid cells, filled chunk by chunk."""

    count: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    cells: int = 0  # all cells of the grid, valid or not: the base of the valid share

    def merge(self, part) -> None:
        """Add one block's (count, sum, sum of squares, min, max)."""
        count, total, total_sq, lo, hi = (float(x) for x in part)
        if count:
            self.count += int(count)
            self.total += total
            self.total_sq += total_sq
            self.minimum = min(self.minimum, lo)
            self.maximum = max(self.maximum, hi)

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    @property
    def std(self) -> float | None:
        if not self.count:
            return None
        return math.sqrt(max(self.total_sq / self.count - self.mean**2, 0.0))

    @property
    def valid_percent(self) -> float:
        """Valid cells as a share (%) of all the grid's cells (GDAL's STATISTICS_VALID_PERCENT)."""
        return 100.0 * self.count / self.cells if self.cells else 0.0

    def as_dict(self) -> dict:
        if not self.count:
            return {"valid_cells": 0, "valid_percent": 0.0, "min": None, "mean": None, "max": None, "std": None}
        return {"valid_cells": self.count, "valid_percent": self.valid_percent, "min": self.minimum,
                "mean": self.mean, "max": self.maximum, "std": self.std}

    def gdal_tags(self) -> dict[str, str]:
        """Band statistics as GDAL stores them, so QGIS and gdalinfo need not recompute."""
        if not self.count:
            return {}
        return {"STATISTICS_MINIMUM": repr(self.minimum), "STATISTICS_MAXIMUM": repr(self.maximum),
                "STATISTICS_MEAN": repr(self.mean), "STATISTICS_STDDEV": repr(self.std),
                "STATISTICS_VALID_PERCENT": f"{self.valid_percent:.6g}"}


@dataclass
class RasterTarget:
    """One product to write: its lazy array and what goes in the file besides pixels."""

    name: str
    array: da.Array
    nodata: float
    description: str
    unit: str
    tags: dict[str, str]
    overview_resampling: str = "AVERAGE"
    stats: BandStats = field(default_factory=BandStats)
    parts: dict[str, list[float]] = field(default_factory=dict)  # per chunk: count, sum, sum², min, max

    def total(self, grid: Grid) -> None:
        """Statistics from the chunks' parts, always summed in the same order (identical floats)."""
        self.stats = BandStats(cells=grid.shape[0] * grid.shape[1])
        for idx in grid.tile_ids():
            if (part := self.parts.get(chunk_key(idx))) is not None:
                self.stats.merge(part)


@dataclass
class ChunkParts:
    """A lazy array of one object per chunk (e.g. summaries), computed in the same computes as
    the products so they share the work; results land in `parts` by chunk key. Only the chunks
    in `only` are computed (None: all that are computed for the products)."""

    array: da.Array
    parts: dict[str, object] = field(default_factory=dict)
    only: set[Index] | None = None
