"""Mine records as a density in items per km².

Each point record spreads its count with a quartic (biweight) kernel K(d) = 3/(π h²)·(1 − d²/h²)²
for d < h (h = `bandwidth`), evaluated at the distance d from the record's true position to
each cell centre, and normalised over every cell the kernel reaches so that the record's count
is kept exactly. The normalisation depends only on the record and the grid's cell lattice, not
on the chunk, so a chunked grid gives the same density as one chunk. Polygons (minefield
records) spread their count evenly over their area, using exact cell coverage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from odc.geo.geobox import GeoBox

from .coverage import weighted_coverage


def point_density(xy: np.ndarray, counts: np.ndarray, gbox: GeoBox, bandwidth: float) -> np.ndarray:
    """Items per km² on `gbox` from points `xy` (grid CRS) with `counts`.

    Records are stamped one by one (they are sparse: hundreds to a few thousand per chunk);
    an FFT convolution would need them snapped to cell centres, which moves them by up to
    0.7 cells. A record whose kernel reaches no cell centre (possible when the bandwidth is under
    0.71 cell) puts its whole count in the cell holding it.
    """
    a = gbox.affine
    cell = abs(a.a)
    ny, nx = gbox.shape
    cell_km2 = cell * cell / 1e6
    out = np.zeros((ny, nx), dtype=np.float32)
    east = (xy[:, 0] - a.c) * math.copysign(1.0, a.a)  # metres from the chunk's top-left corner
    south = (xy[:, 1] - a.f) * math.copysign(1.0, a.e)
    r = int(math.ceil(bandwidth / cell))  # every cell centre within h lies within r cells of the record's cell
    centres = (np.arange(-r, r + 1) + 0.5) * cell  # the window's cell centres from its middle cell's corner
    for x, y, n in zip(east.tolist(), south.tolist(), counts.tolist()):
        col, row = math.floor(x / cell), math.floor(y / cell)
        if col + r < 0 or row + r < 0 or col - r >= nx or row - r >= ny:
            continue
        # offsets within the record's own cell: exact, so every chunk computes the same weights
        u = ((centres - (x - col * cell)) / bandwidth) ** 2  # (dx / h)² of the window's columns
        v = ((centres - (y - row * cell)) / bandwidth) ** 2
        w = np.subtract((1.0 - v).astype(np.float32)[:, None], u.astype(np.float32)[None, :])  # 1 − d²/h²
        np.maximum(w, 0, out=w)
        flat = w.ravel()
        total = float(np.dot(flat, flat))  # Σ (1 − d²/h²)²: the 3/(π h²) factor cancels in the normalisation
        if total == 0.0:
            if 0 <= row < ny and 0 <= col < nx:
                out[row, col] += n / cell_km2
            continue
        r0, r1 = max(row - r, 0), min(row + r + 1, ny)
        c0, c1 = max(col - r, 0), min(col + r + 1, nx)
        piece = w[r0 - row + r:r1 - row + r, c0 - col + r:c1 - col + r]
        piece *= np.float32(math.sqrt(n / (total * cell_km2)))  # squared below: n · K / Σ K per km²
        np.square(piece, out=piece)
        out[r0:r1, c0:c1] += piece
    return out


@dataclass(frozen=True)
class DensityJob:
    xy: np.ndarray  # (n, 2) point coordinates, grid CRS, within bandwidth of the chunk
    counts: np.ndarray
    polygons: np.ndarray  # minefield polygons touching the chunk
    polygon_density: np.ndarray  # their count / area in km²
    gbox: GeoBox
    bandwidth: float

    def __call__(self) -> np.ndarray:
        out = np.zeros(tuple(self.gbox.shape), dtype=np.float32)
        if len(self.xy):
            out += point_density(self.xy, self.counts, self.gbox, self.bandwidth)
        if len(self.polygons):
            out += weighted_coverage(self.polygons, self.polygon_density, self.gbox)
        return out
