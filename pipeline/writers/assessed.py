"""Land not assessed (too few evidence layers behind P_c): the mask, its words, and how the
deliverables draw it — a grey hatch on a light grey face, never a colour of a ramp, and never
the white-and-light-lines hatch of "no data / outside the region".

The mask is risk_class.tif code 0 (issue #20, contract §2), or evidence_count.tif below the
run's effective minimum when the risk classes are not made. P_c and P_res are nodata there, so
their GeoTIFFs alone show nothing (transparent in QGIS); maps, pages and layouts draw the hatch
over those cells, so nobody reads "not assessed" as "no data" or as a low probability.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.features
import shapely
from affine import Affine
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.patches import Patch
from rasterio.enums import Resampling

from ..assessment import min_evidence, too_little_words
from .paths import polygon_paths

FACE = "#e0e0e0"  # light grey: distinct from white "no data" and from every ramp (all saturated)
LINE = "#6e6e6e"  # dark grey hatch lines: the no-data hatch is light grey (#c8c8c8) on white
HATCH = "\\\\\\\\"  # backslashes, dense: the no-data hatch runs the other way ("////")
RISK_INSUFFICIENT, RISK_NODATA, COUNT_NODATA = 0, 255, 255


def not_assessed_words(cfg, when: str = "") -> str:
    """The legend entry in words, e.g. "Not assessed: fewer than 2 of: mine records, soil map,
    drone survey" (the run's effective minimum and evidence layers; `when` e.g. " in either run")."""
    return f"Not assessed{when}: {too_little_words(cfg)}"


def hidden_maps(sources: dict[str, Path], cfg, change: Path | None = None) -> dict[str, "NotAssessed"]:
    """Which maps hide not-assessed land, and how: P_c and P_res from the run's risk classes
    (code 0; evidence_count.tif below the effective minimum when no classes are made), the change
    map (`change`) also where it is nodata inside the region (either run had no P there)."""
    minimum = min_evidence(cfg)
    if minimum <= 0:
        return {}
    if "risk_class" in sources:
        source, below = sources["risk_class"], None
    elif "evidence_count" in sources:
        source, below = sources["evidence_count"], minimum
    else:
        return {}
    label = not_assessed_words(cfg)
    out = {n: NotAssessed(Path(source), label, below)
           for n in ("contamination_probability", "residual_probability") if n in sources}
    if change is not None:
        out["change_since_previous"] = NotAssessed(Path(source), not_assessed_words(
            cfg, " in this run or the previous one"), below, in_region_nodata=True)
    return out


@dataclass(frozen=True)
class NotAssessed:
    """Where a map's cells were not assessed: `source` is risk_class.tif (code 0) or, with
    `below`, evidence_count.tif (fewer layers than `below`). `in_region_nodata`: also the cells
    inside the region (valid in `source`) where the drawn raster is nodata — the change map,
    nodata where either run had no P (not assessed in that run)."""

    source: Path
    label: str
    below: int | None = None
    in_region_nodata: bool = False

    def mask(self, data: np.ma.MaskedArray, cells: np.ndarray) -> np.ndarray:
        """Boolean mask over `data` (the drawn raster) from `cells`, this mask's source read on
        the same cells."""
        cells = np.ma.getdata(cells)
        nodata = RISK_NODATA if self.below is None else COUNT_NODATA
        if self.below is None:
            hidden = cells == RISK_INSUFFICIENT
        else:
            hidden = (cells < self.below) & (cells != nodata)
        if self.in_region_nodata:
            hidden |= np.ma.getmaskarray(data) & (cells != nodata)
        return hidden

    def read(self, data: np.ma.MaskedArray) -> np.ndarray:
        """The mask over the whole raster `data` was read from (decimated by nearest, as maps
        read their raster: same grid, same shape)."""
        with rasterio.open(self.source) as ds:
            cells = ds.read(1, out_shape=data.shape, resampling=Resampling.nearest)
        return self.mask(data, cells)


def legend_patch(label: str) -> Patch:
    return Patch(facecolor=FACE, edgecolor=LINE, hatch=HATCH, linewidth=0.6, label=label)


def outlines(mask: np.ndarray, transform: Affine) -> list:
    """The mask's cells as polygons (exact cell edges, holes kept) in the transform's CRS."""
    if not mask.any():
        return []
    return [shapely.geometry.shape(g) for g, _ in
            rasterio.features.shapes(mask.astype(np.uint8), mask=mask, transform=transform, connectivity=4)]


def extent_transform(extent: tuple[float, float, float, float], shape: tuple[int, int]) -> Affine:
    """The transform of `shape` cells covering `extent` (left, right, bottom, top)."""
    left, right, bottom, top = extent
    return Affine((right - left) / shape[1], 0, left, 0, -(top - bottom) / shape[0], top)


def draw(ax: Axes, mask: np.ndarray, extent: tuple[float, float, float, float], zorder: float = 2,
         rasterized: bool = False) -> int:
    """The not-assessed cells of `mask` (covering `extent`) as a grey hatch over what is drawn
    below; returns how many polygons were drawn."""
    paths = polygon_paths(outlines(mask, extent_transform(extent, mask.shape)))
    if paths:
        ax.add_collection(PathCollection(paths, facecolors=FACE, edgecolors=LINE, hatch=HATCH, linewidths=0,
                                         zorder=zorder, rasterized=rasterized), autolim=False)
    return len(paths)


def read_window(source: Path, level: int | None, window: tuple[int, int, int, int],
                shape: tuple[int, int]) -> np.ndarray:
    """`source`'s cells at an overview `level`, in `window` (col, row, width, height), thinned to
    `shape` by the nearest cell (as the briefing pages read their raster)."""
    from rasterio.windows import Window

    with rasterio.open(source, **({} if level is None else {"overview_level": level})) as ds:
        data = ds.read(1, window=Window(*window), boundless=True, fill_value=RISK_NODATA)
    rows, cols = (np.minimum(((np.arange(n) + 0.5) * size / n).astype(np.intp), size - 1)
                  for n, size in zip(shape, data.shape))
    return data[rows][:, cols]


def overview_read(source: Path, max_cells: int) -> tuple[np.ndarray, Affine, object]:
    """`source` at most `max_cells` across (its overviews by nearest), its transform and CRS."""
    with rasterio.open(source) as ds:
        scale = max(1.0, max(ds.width, ds.height) / max_cells)
        shape = (max(1, math.ceil(ds.height / scale)), max(1, math.ceil(ds.width / scale)))
        cells = ds.read(1, out_shape=shape, resampling=Resampling.nearest)
        transform = ds.transform @ Affine.scale(ds.width / shape[1], ds.height / shape[0])
        return cells, transform, ds.crs


OUTLINES = "not_assessed.gpkg"
OUTLINE_CELLS = 4096  # polygons from at most this many cells across (the overviews beyond: a 10 m grid
# of 110 km gives 2.7 cells of 10 m per polygon step; the GeoTIFFs stay exact, this is the drawing)


def write_outlines(hidden: NotAssessed, path: Path) -> bool:
    """`path`: the not-assessed land as polygons (GeoPackage 1.2, layer "not_assessed", one
    feature per connected patch, with the rule in words); False (nothing written) when none."""
    import geopandas as gpd

    from ..summaries import write_vector

    cells, transform, crs = overview_read(hidden.source, OUTLINE_CELLS)
    mask = hidden.mask(np.ma.MaskedArray(np.zeros(cells.shape, np.float32)), cells)
    polys = outlines(mask, transform)
    if not polys:
        return False
    frame = gpd.GeoDataFrame({"status": ["not assessed"] * len(polys), "rule": [hidden.label] * len(polys)},
                             geometry=polys, crs=crs.to_wkt())
    frame["area_km2"] = frame.geometry.area / 1e6
    write_vector(frame, path, "not_assessed", crs)
    return True
