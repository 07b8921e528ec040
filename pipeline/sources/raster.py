"""Raster evidence (drone anomaly rasters, coefficient rasters) reprojected onto grid chunks.

Each chunk job opens the files it needs inside the task, reads only the window under the
chunk, converts to float32 (nodata → NaN, optional scaling to [0, 1]) and warps onto the
chunk. Several files are mosaicked in acquisition order, newest on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import rasterio
from odc.geo.geobox import GeoBox
from odc.geo.geom import Geometry
from odc.geo.overlap import compute_reproject_roi
from odc.geo.roi import roi_is_empty
from rasterio.enums import Resampling
from rasterio.warp import reproject
from rasterio.windows import Window

TIME_FORMATS = ("%Y:%m:%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")


@dataclass(frozen=True)
class RasterFile:
    """What a chunk job needs to know of one file: plain values, no open handle."""

    path: str
    band: int
    nodata: float | None
    offset: float  # value = (raw - offset) / span, then clipped by the range check
    span: float
    acquired: float  # POSIX seconds: newer files are drawn on top
    footprint: Geometry  # in the grid CRS
    sha256: str

    def read_onto(self, dst: GeoBox, resampling: str, out: np.ndarray) -> None:
        """Warp this file's window under `dst` into `out` where it has data."""
        with rasterio.open(self.path) as ds:
            src = GeoBox(ds.shape, ds.transform, ds.crs)
            info = compute_reproject_roi(src, dst)
            if roi_is_empty(info.roi_src) or roi_is_empty(info.roi_dst):
                return
            rows, cols = info.roi_src
            data = ds.read(self.band, window=Window.from_slices(rows, cols)).astype(np.float32)
        if self.nodata is not None and not np.isnan(self.nodata):
            data[data == np.float32(self.nodata)] = np.nan
        if self.offset or self.span != 1:
            data = (data - np.float32(self.offset)) / np.float32(self.span)
        method = resampling
        if method == "auto":
            method = "average" if info.scale > 1.0 else "bilinear"
        warped = np.full(tuple(dst.shape), np.nan, dtype=np.float32)
        # rasterio directly, not odc's rio_reproject: that pins XSCALE=1, which stops GDAL's
        # average from averaging every source pixel under a coarser cell
        reproject(data, warped, src_transform=src[info.roi_src].affine, src_crs=src.crs.wkt,
                  dst_transform=dst.affine, dst_crs=dst.crs.wkt, resampling=Resampling[method],
                  src_nodata=np.nan, dst_nodata=np.nan, num_threads=1)
        have = np.isfinite(warped)
        out[have] = warped[have]


@dataclass(frozen=True)
class MosaicJob:
    files: tuple[RasterFile, ...]  # oldest first
    gbox: GeoBox
    resampling: str

    def __call__(self) -> np.ndarray:
        out = np.full(tuple(self.gbox.shape), np.nan, dtype=np.float32)
        for f in self.files:
            f.read_onto(self.gbox, self.resampling, out)
        return out


def acquisition_time(tags: dict[str, str], tag: str, path: Path | str, modified: float | None = None) -> float:
    """Acquisition time from a tag (EXIF-style or ISO), else the file's modification time (`modified`
    for an object in a store)."""
    text = tags.get(tag, "").strip()
    for fmt in TIME_FORMATS:
        try:
            t = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return (t if t.tzinfo else t.replace(tzinfo=timezone.utc)).timestamp()
    return modified if modified is not None else Path(path).stat().st_mtime
