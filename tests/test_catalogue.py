"""The STAC item: valid against the STAC core schema, every asset there, the grid's place and facts."""

import json
from datetime import datetime

import geopandas as gpd
import pystac
import rasterio
from pystac import STACObjectType
from pystac.validation import JsonSchemaSTACValidator

from conftest import REPO


def test_stac_item_describes_the_run(sample_out):
    raw = json.loads((sample_out / "item.json").read_text())
    JsonSchemaSTACValidator().validate_core(raw, STACObjectType.ITEM, raw["stac_version"], None)  # raises if invalid
    item = pystac.Item.from_file(str(sample_out / "item.json"))
    record = json.loads((sample_out / "run.json").read_text())
    assert item.properties["minemap:run_utc"] == record["created_utc"]  # datetime: the newest input's acquisition
    assert item.datetime <= datetime.fromisoformat(record["created_utc"])
    # every asset link is relative and points at a file of the run; every product is an asset
    assert all(a.href.startswith("./") for a in item.assets.values())
    assert all((sample_out / a.href[2:]).is_file() for a in item.assets.values())
    for name in record["products"]:
        asset = item.assets[name]
        assert asset.media_type == pystac.MediaType.COG and asset.roles == ["data"]
        band = asset.extra_fields["raster:bands"][0]
        stats = record["products"][name]
        assert band["statistics"]["mean"] == stats["mean"] and band["statistics"]["maximum"] == stats["max"]
    assert {"districts_gpkg", "districts_csv", "priority_zones_gpkg", "minemap_qgz", "run_json"} <= set(item.assets)
    # the footprint is the region, in lon/lat; the projection facts are the grid's
    districts = gpd.read_file(REPO / "sample_data" / "districts.gpkg").to_crs(4326).total_bounds
    west, south, east, north = item.bbox
    assert abs(west - districts[0]) < 1e-6 and abs(north - districts[3]) < 1e-6
    assert south <= districts[1] + 1e-6 and east >= districts[2] - 1e-6
    with rasterio.open(sample_out / "contamination_probability.tif") as ds:
        assert item.properties["proj:code"] == "EPSG:32638"
        assert item.properties["proj:shape"] == [ds.height, ds.width]
        assert item.properties["proj:transform"] == list(ds.transform)[:6]
