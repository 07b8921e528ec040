"""minemap: landmine-contamination evidence onto a grid, fused into the source paper's products.

Data flows one way: config -> grid -> sources (evidence onto the grid) -> formulas -> writers.
The Python API: `pipeline.run`, `pipeline.update`, `pipeline.validate`, `pipeline.evaluate` (see `pipeline.api`),
`pipeline.open_products(OUT)`: a finished run's products as a lazy xarray.Dataset, and `pipeline.lazy(CONFIG)`:
a config's products as one, computed on use, nothing written (`pipeline.dataset`).
"""

__version__ = "0.2.0"

import warnings as _warnings

# rasterio 1.4's rasterize and reproject of arrays build their in-memory rasters before giving
# them the transforms we pass, and warn about the moment in between; the cells are placed
# correctly (tests check), and the warning only cluttered users' logs.
_warnings.filterwarnings("ignore", message="Dataset has no geotransform", module=r"rasterio\.(features|warp)")

__all__ = ["Result", "run", "update", "validate", "evaluate", "open_products", "lazy", "__version__"]


def __getattr__(name: str):
    """The API on first use: `import pipeline` stays cheap for the command and worker processes."""
    if name in ("Result", "run", "update", "validate"):
        from . import api

        return getattr(api, name)
    if name == "evaluate":  # the subpackage, callable as the API's evaluate (see pipeline/evaluate/__init__.py)
        import importlib

        return importlib.import_module(f"{__name__}.evaluate")
    if name in ("open_products", "lazy"):
        from . import dataset

        return getattr(dataset, name)
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
