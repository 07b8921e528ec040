"""Mine records as a density in items per km².

Points spread their count with a quartic (biweight) kernel of radius `bandwidth`, discretised
on the grid and normalised so that each record's count is kept exactly; polygons (minefield
records) spread their count evenly over their area, using exact cell coverage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from odc.geo.geobox import GeoBox
from scipy import fft as sfft

from .coverage import weighted_coverage


@lru_cache(maxsize=8)
def quartic_kernel(bandwidth: float, cell: float) -> np.ndarray:
    """Weights (summing to 1) of a quartic kernel of radius `bandwidth` on cells of size `cell`."""
    r = int(math.floor(bandwidth / cell))
    offsets = np.arange(-r, r + 1) * cell
    d2 = offsets[:, None] ** 2 + offsets[None, :] ** 2
    w = np.where(d2 < bandwidth**2, (1.0 - d2 / bandwidth**2) ** 2, 0.0)
    return w / w.sum()


def point_density(xy: np.ndarray, counts: np.ndarray, gbox: GeoBox, bandwidth: float) -> np.ndarray:
    """Items per km² on `gbox` from points `xy` (grid CRS) with `counts`."""
    cell = abs(gbox.affine.a)
    kernel = quartic_kernel(bandwidth, cell)
    r = kernel.shape[0] // 2
    ny, nx = gbox.shape
    a = gbox.affine
    col = np.floor((xy[:, 0] - a.c) / a.a).astype(np.int64) + r
    row = np.floor((xy[:, 1] - a.f) / a.e).astype(np.int64) + r
    ok = (col >= 0) & (col < nx + 2 * r) & (row >= 0) & (row < ny + 2 * r)
    mass = np.zeros((ny + 2 * r, nx + 2 * r), dtype=np.float32)  # the chunk with r cells of margin
    np.add.at(mass, (row[ok], col[ok]), counts[ok])
    if r == 0:
        spread = mass
    else:
        rows, cols = np.nonzero(mass)
        # records are sparse (hundreds per chunk): stamping the kernel on each costs
        # points × kernel cells, far below an FFT of the whole chunk until points are dense
        if len(rows) * kernel.size < DIRECT_LIMIT * mass.size:
            spread = _stamp(mass, rows, cols, kernel.astype(np.float32), (ny, nx))
        else:
            spread = _convolve_valid(mass, kernel.astype(np.float32))
    # FFT round-off leaves ~1e-7 everywhere; below a millionth of a mine per cell is zero (and
    # zeros compress: without this the product files were several times larger)
    spread[spread < 1e-6] = 0.0
    return (spread / (cell * cell / 1e6)).astype(np.float32)


DIRECT_LIMIT = 25  # stamp while points × kernel cells < this × chunk cells (measured: ~1.5 ns per stamped
# cell against ~39 ns per chunk cell for the float32 FFT; break-even near 28)


def _convolve_valid(mass: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """scipy.signal.fftconvolve(mass, kernel, mode="valid") on scipy.fft alone (scipy.signal
    costs 1.3 s to import, scipy.fft 0.3 s); float32 in, float32 transforms: 2× faster."""
    full = [m + k - 1 for m, k in zip(mass.shape, kernel.shape)]
    size = [sfft.next_fast_len(n, real=True) for n in full]
    spread = sfft.irfft2(sfft.rfft2(mass, size) * sfft.rfft2(kernel, size), size)
    k0, k1 = kernel.shape
    return spread[k0 - 1:mass.shape[0], k1 - 1:mass.shape[1]]


def _stamp(mass: np.ndarray, rows: np.ndarray, cols: np.ndarray, kernel: np.ndarray,
           shape: tuple[int, int]) -> np.ndarray:
    """The kernel added around each nonzero cell of `mass` (padded by the kernel radius r),
    cut to the unpadded `shape`: the same sum as a "valid" convolution, without round-off."""
    ny, nx = shape
    k = kernel.shape[0]
    out = np.zeros((mass.shape[0] + k - 1, mass.shape[1] + k - 1), dtype=np.float32)  # every stamp fits
    for i, j, m in zip(rows.tolist(), cols.tolist(), mass[rows, cols].tolist()):
        out[i:i + k, j:j + k] += np.float32(m) * kernel
    r = k // 2
    return out[2 * r:2 * r + ny, 2 * r:2 * r + nx]


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
