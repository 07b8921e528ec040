"""OUT/item.json: a STAC Item describing one run's files, so catalogues can index them.

Asset links are relative to the item, so the folder can be moved or uploaded as it is.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pystac
import shapely
from pystac.extensions.projection import ProjectionExtension
from pystac.extensions.raster import DataType, RasterBand, RasterExtension, Statistics
from pyproj import CRS
from shapely.geometry import mapping

from ..grid import Grid

ITEM = "item.json"
MEDIA = {".tif": pystac.MediaType.COG, ".qml": "application/xml", ".gpkg": pystac.MediaType.GEOPACKAGE,
         ".csv": "text/csv", ".png": pystac.MediaType.PNG, ".html": pystac.MediaType.HTML,
         ".json": pystac.MediaType.JSON, ".qgz": "application/x-qgis-project", ".zarr": "application/vnd+zarr",
         ".geojson": pystac.MediaType.GEOJSON, ".kml": "application/vnd.google-earth.kml+xml",
         ".gpx": "application/gpx+xml"}


@dataclass
class AssetInfo:
    """One file of the run: its name in OUT, a title, STAC roles; products add their band."""

    file: str
    title: str
    roles: list[str]
    description: str = ""
    band: dict = field(default_factory=dict)  # nodata, dtype, unit, statistics (min/mean/max/std/valid_cells)


def write_stac_item(staging: Path, grid: Grid, item_id: str, created: str, assets: list[AssetInfo],
                    properties: dict) -> str:
    """item.json in `staging`, its asset links relative (./NAME); returns its file name."""
    footprint = grid.region.to_crs("EPSG:4326")
    geometry = mapping(shapely.set_precision(footprint.geom, 1e-7))  # ~1 cm: no float noise in the JSON
    when = datetime.fromisoformat(created)
    item = pystac.Item(id=item_id, geometry=geometry, bbox=list(footprint.boundingbox), datetime=when,
                       properties=dict(properties))
    proj = ProjectionExtension.ext(item, add_if_missing=True)
    authority = CRS.from_wkt(grid.crs.to_wkt()).to_authority()
    proj.code = ":".join(authority) if authority else None
    if not authority:
        proj.wkt2 = grid.crs.to_wkt()
    proj.shape = list(grid.shape)
    proj.transform = list(grid.geobox.affine)[:6]
    proj.bbox = list(grid.geobox.extent.boundingbox)
    RasterExtension.add_to(item)
    for a in assets:
        asset = pystac.Asset(href=f"./{a.file}", title=a.title, description=a.description or None,
                             media_type=MEDIA.get(Path(a.file).suffix), roles=a.roles)
        if a.band:
            stats = a.band.get("statistics") or {}
            RasterExtension.ext(asset).bands = [RasterBand.create(
                nodata=a.band["nodata"], data_type=DataType(a.band["dtype"]), unit=a.band.get("unit"),
                statistics=Statistics.create(minimum=stats.get("min"), maximum=stats.get("max"),
                                             mean=stats.get("mean"), stddev=stats.get("std"),
                                             valid_percent=stats.get("valid_percent")) if stats.get("valid_cells")
                else None)]
        stem, suffix = Path(a.file).stem, Path(a.file).suffix
        key = stem if suffix == ".tif" else f"{stem}_{suffix[1:]}"
        folder = Path(a.file).parent.name  # evidence/x.tif: "evidence-x", apart from any product's key
        item.add_asset(f"{folder}-{key}" if folder else key, asset)
    tmp = staging / f".{ITEM}.tmp"
    item.save_object(include_self_link=False, dest_href=str(tmp))
    os.replace(tmp, staging / ITEM)
    return ITEM
