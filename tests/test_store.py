"""pipeline.store (issue #23): URLs resolved, shown redacted, listed by glob, GDAL's settings derived from the
standard AWS environment, and GDAL's and HTTP failures mapped to the store's own errors."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pipeline import store
from pipeline.cli import main
from pipeline.errors import StoreDeniedError, StoreError, StoreMissingError, StoreUnreachableError

SIGNED = "https://user:pw@host.example:8443/b/drone/a.tif?X-Amz-Credential=AKIA1&X-Amz-Signature=abc123"


def test_url_prints_redacted_but_reaches_gdal_whole():
    u = store.Url(SIGNED)
    bare = "https://host.example:8443/b/drone/a.tif"
    assert (str(u), f"{u}", f"{u:>45}".strip(), repr(u)) == (bare, bare, bare, f"Url({bare!r})")
    assert f"{u}: missing" == f"{bare}: missing" and "%s" % u == bare
    assert store.gdal_path(u) == "/vsicurl/" + SIGNED  # the signature goes to GDAL, nowhere else
    assert store.gdal_path(store.Url(u)) == "/vsicurl/" + SIGNED  # a Url of a Url keeps it too
    assert (u.name, u.stem, u.suffix) == ("a.tif", "a", ".tif")
    assert store.gdal_path("s3://bkt/k/x.gpkg") == "/vsis3/bkt/k/x.gpkg"


def test_resolve_keeps_urls_and_local_paths_as_before(tmp_path):
    assert store.resolve(tmp_path, "a/b.tif") == (tmp_path / "a" / "b.tif").resolve()
    assert isinstance(store.resolve(tmp_path, "s3://b/k.tif"), store.Url)
    grid_dir = store.parent("s3://bkt/grids/g.toml")
    assert grid_dir == "s3://bkt/grids"
    assert store.resolve(grid_dir, "../regions/r.gpkg") == "s3://bkt/regions/r.gpkg"
    assert store.resolve(grid_dir, "r.gpkg") == "s3://bkt/grids/r.gpkg"


def test_redact_all_walks_records_and_descriptions():
    rec = {"inputs": {"V_i": {"path": SIGNED, "band": 1}}, "list": [SIGNED, "plain"],
           "text": f"kind=raster, path={SIGNED}, band=2"}
    out = store.redact_all(rec)
    assert out["inputs"]["V_i"] == {"path": "https://host.example:8443/b/drone/a.tif", "band": 1}
    assert out["list"] == ["https://host.example:8443/b/drone/a.tif", "plain"]
    assert out["text"] == "kind=raster, path=https://host.example:8443/b/drone/a.tif, band=2"
    assert "abc123" not in repr(out) and "pw" not in repr(out)


def test_gdal_options_derive_the_endpoint_from_aws_endpoint_url():
    opts = store.gdal_options({"AWS_ENDPOINT_URL": "http://minio.local:9000"})
    assert (opts["AWS_S3_ENDPOINT"], opts["AWS_HTTPS"], opts["AWS_VIRTUAL_HOSTING"]) == ("minio.local:9000", "NO",
                                                                                         "FALSE")
    assert opts["GDAL_HTTP_MAX_RETRY"] == "4" and opts["GDAL_HTTP_RETRY_DELAY"] == "1"
    https = store.gdal_options({"AWS_ENDPOINT_URL": "https://ceph.example/"})
    assert (https["AWS_S3_ENDPOINT"], https["AWS_HTTPS"]) == ("ceph.example", "YES")
    own = store.gdal_options({"AWS_ENDPOINT_URL": "http://a:1", "AWS_S3_ENDPOINT": "b:2", "GDAL_HTTP_MAX_RETRY": "9"})
    assert "AWS_S3_ENDPOINT" not in own and "AWS_HTTPS" not in own and "GDAL_HTTP_MAX_RETRY" not in own
    assert "AWS_S3_ENDPOINT" not in store.gdal_options({})  # AWS itself: GDAL's default endpoint


@pytest.mark.parametrize("message, kind", [
    ("HTTP response code: 403", StoreDeniedError),
    ("'/vsis3/b/k.tif' does not exist in the file system, and is not recognized as a supported dataset name.",
     StoreMissingError),
    ("HTTP response code: 404", StoreMissingError),
    ("Couldn't connect to server", StoreUnreachableError),
    ("Connection timed out after 10001 milliseconds", StoreUnreachableError),
    ("HTTP response code: 503", StoreUnreachableError),
])
def test_gdal_messages_map_to_the_stores_errors(message, kind):
    with pytest.raises(kind) as e:
        store.raise_gdal("https://h/b/k.tif?sig=1", RuntimeError(message))
    assert e.value.problems[0].where == "https://h/b/k.tif"


def test_a_format_problem_is_not_the_stores(local_s3, monkeypatch):
    for k, v in local_s3.env.items():
        monkeypatch.setenv(k, v)
    store.client.cache_clear()
    local_s3.client().put_object(Bucket=local_s3.bucket, Key="k.tif", Body=b"not a tiff")
    words = RuntimeError("not recognized as being in a supported file format")
    store.raise_gdal(f"s3://{local_s3.bucket}/k.tif", words)  # readable: a format problem, returns
    with pytest.raises(StoreMissingError):  # the same words on an object that is not there: the store's
        store.raise_gdal(f"s3://{local_s3.bucket}/gone.tif", words)


def test_listing_matches_a_glob_within_one_folder(local_s3, monkeypatch):
    for k, v in local_s3.env.items():
        monkeypatch.setenv(k, v)
    store.client.cache_clear()
    c = local_s3.client()
    for key in ("in/drone/a.tif", "in/drone/b.tif", "in/drone/b.tiff", "in/drone/old/c.tif", "in/dronex/d.tif"):
        c.put_object(Bucket=local_s3.bucket, Key=key, Body=b"x")
    found = store.listing(f"s3://{local_s3.bucket}/in/drone/*.tif")
    assert found == [f"s3://{local_s3.bucket}/in/drone/a.tif", f"s3://{local_s3.bucket}/in/drone/b.tif"]
    assert store.listing(f"s3://{local_s3.bucket}/in/drone/?.tif*") == found + [
        f"s3://{local_s3.bucket}/in/drone/b.tiff"]
    assert store.listing(f"s3://{local_s3.bucket}/in/*/*.tif") == found + [f"s3://{local_s3.bucket}/in/dronex/d.tif"]
    h = store.head(f"s3://{local_s3.bucket}/in/drone/a.tif")
    assert h.size == 1 and len(h.etag) == 32 and h.modified  # the MD5 of b"x"
    # over HTTP, by a presigned URL (signed for GET: a HEAD would be refused): a one-byte GET tells the size
    c.put_object(Bucket=local_s3.bucket, Key="in/t.csv", Body=b"a,b\n1,2\n")

    def signed(key):
        return c.generate_presigned_url("get_object", Params={"Bucket": local_s3.bucket, "Key": key}, ExpiresIn=60)

    web = store.head(signed("in/t.csv"))
    assert web.size == 8 and web.etag == store.head(f"s3://{local_s3.bucket}/in/t.csv").etag
    assert store.read_bytes(signed("in/t.csv")) == b"a,b\n1,2\n"
    with pytest.raises(StoreMissingError):
        store.head(signed("in/none.csv"))
    with pytest.raises(StoreDeniedError):  # unsigned: this server serves no anonymous reader
        store.head(f"{local_s3.endpoint}/{local_s3.bucket}/in/t.csv")


def _config(tmp_path: Path, raster: str) -> Path:
    from world import make_world

    config = make_world(tmp_path / "w")
    config.write_text(config.read_text().replace('path = "drone/*.tif"', f'path = "{raster}"'))
    return config


def test_https_glob_and_gs_are_refused_with_a_reason(tmp_path):
    for raster, words, code in [("https://example.org/drone/*.tif?sig=secret", "cannot hold a glob", 2),
                                ("gs://bkt/drone/a.tif", "gs:// is not supported yet", 2)]:
        result = CliRunner().invoke(main, ["run", str(_config(tmp_path / raster[:2], raster)), "--out",
                                           str(tmp_path / "out"), "--quiet"])
        assert result.exit_code == code, result.output
        assert words in result.stderr and "secret" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "out").exists()


def test_store_errors_have_their_own_exit_codes():
    assert (StoreDeniedError.exit_code, StoreMissingError.exit_code, StoreUnreachableError.exit_code) == (77, 66, 69)
    assert StoreError.exit_code == 2


def test_boto3_and_http_failures_map_to_the_stores_errors():
    import urllib.error

    from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

    def client_error(code, status):
        return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")

    cases = [(client_error("AccessDenied", 403), StoreDeniedError, "HTTP 403"),
             (client_error("403", 403), StoreDeniedError, "HTTP 403"),  # a HEAD's error has no body: its status
             (client_error("NoSuchKey", 404), StoreMissingError, "HTTP 404"),
             (client_error("404", 404), StoreMissingError, "HTTP 404"),
             (client_error("SlowDown", 503), StoreUnreachableError, "HTTP 503"),
             (EndpointConnectionError(endpoint_url="http://x"), StoreUnreachableError,
              "did not answer (could not connect)"),
             (ReadTimeoutError(endpoint_url="http://x"), StoreUnreachableError, "did not answer (timed out)"),
             (urllib.error.HTTPError("https://h/k?sig=s", 401, "Unauthorized", {}, None), StoreDeniedError, "403"),
             (urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")), StoreUnreachableError,
              "did not answer (connection refused)")]
    for exc, kind, words in cases:
        err = store.store_error("https://h/k?sig=s", exc)
        assert type(err) is kind and words in err.problems[0].what, (exc, err)
        assert err.problems[0].where == "https://h/k"
    bug = ValueError("a bug")
    assert store.store_error("s3://b/k", bug) is bug  # not the store's: raised as it is


def test_qgis_project_points_at_an_input_left_in_its_store_without_signature(tmp_path):
    from pipeline.writers.project import _relative

    assert _relative(store.Url(SIGNED), tmp_path, None) == "/vsicurl/https://host.example:8443/b/drone/a.tif"
    assert _relative(store.Url("s3://b/soil.gpkg"), tmp_path, "soil") == "/vsis3/b/soil.gpkg|layername=soil"
    assert _relative(tmp_path / "evidence" / "a.tif", tmp_path, None) == "./evidence/a.tif"


def test_a_shapefile_in_a_bucket_is_read_with_its_sidecars(local_s3, tmp_path, monkeypatch):
    import geopandas as gpd
    from shapely.geometry import box

    from pipeline.vector import read_vector

    for k, v in local_s3.env.items():
        monkeypatch.setenv(k, v)
    store.client.cache_clear()
    gpd.GeoDataFrame({"v": [7]}, geometry=[box(0, 0, 1, 1)], crs="EPSG:32638").to_file(tmp_path / "s.shp")
    url = local_s3.upload_tree(tmp_path, "shp")
    frame = read_vector(f"{url}/s.shp")  # .dbf for the field, .prj for the CRS, found beside it
    assert frame["v"].tolist() == [7] and frame.crs.to_epsg() == 32638


def test_csv_records_in_a_bucket_are_read_as_points(local_s3, tmp_path, monkeypatch):
    from pipeline.vector import PointColumns, read_vector

    for k, v in local_s3.env.items():
        monkeypatch.setenv(k, v)
    store.client.cache_clear()
    (tmp_path / "mines.csv").write_text("id,lon,lat,count\n1,46.95,39.70,3\n2,47.10,39.80,5\n")
    url = local_s3.upload_tree(tmp_path, "rec")
    frame = read_vector(f"{url}/mines.csv", columns=["count"], points=PointColumns())
    assert frame["count"].tolist() == [3, 5] and frame.crs.to_epsg() == 4326
    assert [(round(p.x, 2), round(p.y, 2)) for p in frame.geometry] == [(46.95, 39.70), (47.10, 39.80)]
