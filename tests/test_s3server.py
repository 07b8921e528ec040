"""The local S3 server the object-storage tests stand on: GDAL and boto3 both reach it with the standard
AWS environment only."""
import numpy as np
import rasterio
from rasterio.transform import from_origin


def test_gdal_reads_what_boto3_uploaded(local_s3, tmp_path, monkeypatch):
    src = tmp_path / "a.tif"
    with rasterio.open(src, "w", driver="GTiff", width=4, height=3, count=1, dtype="float32", crs="EPSG:32638",
                       transform=from_origin(600000, 4400000, 10, 10)) as d:
        d.write(np.arange(12, dtype="float32").reshape(1, 3, 4))
    url = local_s3.upload_tree(tmp_path, "in")
    assert local_s3.keys("in/") == ["in/a.tif"]
    for k, v in local_s3.env.items():
        monkeypatch.setenv(k, v)
    with rasterio.open(f"{url}/a.tif") as d:
        assert d.read(1)[2, 3] == 11.0
        assert d.transform.c == 600000
