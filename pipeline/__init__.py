"""minemap: landmine-contamination evidence onto a grid, fused into the source paper's products.

Data flows one way: config -> grid -> sources (evidence onto the grid) -> formulas -> writers.
"""

__version__ = "0.1.0"

import warnings as _warnings

# rasterio 1.4's rasterize builds its in-memory raster before giving it the transform we pass,
# and warns about the moment in between; the burnt cells are placed correctly (tests check).
_warnings.filterwarnings("ignore", message="Dataset has no geotransform", module="rasterio.features")
