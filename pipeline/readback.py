"""Reading a chunk of a product file back (dask tasks of `minemap.open_products` and of an
update's reused chunks): its own module, so reading products imports no writer or engine (#22 §7)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import rasterio
from rasterio.windows import Window


@dataclass(frozen=True)
class ReadBack:
    """A chunk of a previous product file, nodata back to NaN as if just computed."""

    path: str
    window: tuple[slice, slice]
    nodata: float

    def __call__(self) -> np.ndarray:
        with rasterio.open(self.path) as ds:
            block = ds.read(1, window=Window.from_slices(*self.window))
        if block.dtype.kind == "f":
            block[block == block.dtype.type(self.nodata)] = np.nan
        return block
