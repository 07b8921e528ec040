"""Inputs by URL (issue #23): every input of the tiny world read from a local S3 server gives the products a
local run gives, cell for cell; `update` sees a re-uploaded drone raster by its ETag; a missing, denied or
silent store ends in its own exit code naming the URL (redacted) and touching nothing; signatures are never
written or printed."""
from __future__ import annotations

import json
import re
import zipfile
from urllib.parse import quote, unquote
from pathlib import Path

import numpy as np
import rasterio
from click.testing import CliRunner

from made import made_products
from pipeline.cli import main
from pipeline.runner import run, update
from world import CRS, X1, Y0, make_world, write_raster

URL_KEYS = re.compile(r'^(grid|path|table|extent) = "([^"]+)"', re.M)


def aws_env(s3, monkeypatch) -> None:
    """The server's AWS environment in this process (GDAL takes credentials from it, not rasterio.Env)."""
    for k, v in s3.env.items():
        monkeypatch.setenv(k, v)
    from pipeline import store

    store.client.cache_clear()


def world_in_bucket(s3, tmp_path: Path, monkeypatch, resolution: float | None = None) -> tuple[Path, Path]:
    """The tiny world (local config) and the same config with every path an s3:// URL of its upload."""
    config = make_world(tmp_path / "world")
    if resolution is not None:  # several chunks (512 cells each)
        grid = config.parent / "grid.toml"
        grid.write_text(grid.read_text().replace("resolution = 100.0", f"resolution = {resolution}"))
    config.write_text(config.read_text() + "\n[output]\ndeliverables = false\n")
    url = s3.upload_tree(config.parent, "world")
    cloud = tmp_path / "cloud" / "config.toml"
    cloud.parent.mkdir()
    cloud.write_text(URL_KEYS.sub(lambda m: f'{m.group(1)} = "{url}/{m.group(2)}"', config.read_text()))
    aws_env(s3, monkeypatch)
    return config, cloud


def assert_same_products(a: Path, b: Path) -> list[str]:
    names = made_products(a)
    assert names == made_products(b) and len(names) >= 6
    for name in names:
        with rasterio.open(a / f"{name}.tif") as x, rasterio.open(b / f"{name}.tif") as y:
            assert np.array_equal(x.read(1), y.read(1), equal_nan=True), name
            assert x.transform == y.transform and x.crs == y.crs, name
    return names


def test_all_inputs_in_the_bucket_give_the_local_products(local_s3, tmp_path, monkeypatch):
    config, cloud = world_in_bucket(local_s3, tmp_path, monkeypatch)
    for gdal_own in ("AWS_S3_ENDPOINT", "AWS_HTTPS", "AWS_VIRTUAL_HOSTING"):  # AWS_ENDPOINT_URL alone is enough
        monkeypatch.delenv(gdal_own)
    assert "s3://minemap-test/world/drone/*.tif" in cloud.read_text()
    assert 'grid = "s3://minemap-test/world/grid.toml"' in cloud.read_text()  # its region beside it, in the bucket
    local, remote = tmp_path / "local", tmp_path / "remote"
    run(config, local, workers=1)
    record = run(cloud, remote, workers=1)
    assert_same_products(local, remote)
    with rasterio.open(remote / "contamination_probability.tif") as ds:  # the drone square: 0.6 reaches V_i
        assert np.nanmax(ds.read(1)) > 0
    inputs = record["inputs"]
    drone = inputs["s3://minemap-test/world/drone/a.tif"]
    assert drone["variables"] == ["V_i"] and drone["sha256"].startswith("etag ")  # no download to hash
    assert {k.rsplit("/", 1)[-1] for k in inputs} == {"a.tif", "mines.gpkg", "soil.gpkg", "soil.csv",
                                                      "cleared.gpkg", "methods.csv"}
    assert record["grid"]["definition"] == "s3://minemap-test/world/grid.toml"


def test_update_after_reupload_redoes_only_that_rasters_chunks(local_s3, tmp_path, monkeypatch):
    config, cloud = world_in_bucket(local_s3, tmp_path, monkeypatch, resolution=10)  # 1000² cells, 2 × 2 chunks
    b = write_raster(tmp_path / "b.tif", np.full((50, 50), 0.3, np.float32), X1 - 2000, Y0 + 2000, 20.0, CRS,
                     nodata=-1.0, tags={"TIFFTAG_DATETIME": "2024:06:01 10:00:00"})  # south-east: chunk (1, 1)
    c = local_s3.client()
    c.upload_file(str(b), local_s3.bucket, "world/drone/b.tif")
    out = tmp_path / "out"
    run(cloud, out, workers=1)
    assert update(cloud, out, workers=1)["status"] == "up to date"  # same ETags: nothing to redo
    under_b = (1000 - 150, 1000 - 150)  # a cell under b.tif (rows and columns 800–999 are chunk (1, 1))
    with rasterio.open(out / "contamination_probability.tif") as ds:
        before = ds.read(1)[under_b]

    write_raster(b, np.full((50, 50), 0.9, np.float32), X1 - 2000, Y0 + 2000, 20.0, CRS, nodata=-1.0,
                 tags={"TIFFTAG_DATETIME": "2024:06:01 10:00:00"})
    c.upload_file(str(b), local_s3.bucket, "world/drone/b.tif")  # re-uploaded: a new ETag, the same key
    s = update(cloud, out, workers=1)
    url = "s3://minemap-test/world/drone/b.tif"
    assert s["status"] == "updated" and s["changed"] == [url] and s["added"] == s["removed"] == []
    assert (s["chunks_recomputed"], s["chunks_total"]) == (1, 4)
    with rasterio.open(out / "contamination_probability.tif") as ds:
        after = ds.read(1)[under_b]
    # P_c = (H_m + S_t + V_i) / 3 there (no records: H_m 0; rock S_t 0.2): V_i 0.3 → 0.9 is +0.2
    assert (round(float(before), 4), round(float(after), 4)) == (round(0.5 / 3, 4), round(1.1 / 3, 4))
    fresh = tmp_path / "fresh"
    run(cloud, fresh, workers=1)
    assert_same_products(out, fresh)
    state = json.loads((out / ".minemap" / "state.json").read_text())
    check = state["raster_checks"][url]
    assert check["etag"] and check["size"] > 0 and check["modified"] and "ino" not in check


# --- faults: one line naming the URL, the exit code of the kind, OUT untouched ------------------

def cli_run(config: Path, out: Path, *extra: str):
    return CliRunner().invoke(main, ["run", str(config), "--out", str(out), "--quiet", *extra])


def refusal(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    return lines[0].removeprefix("error: ")


def test_missing_object_exits_66_naming_it(local_s3, tmp_path, monkeypatch):
    _, cloud = world_in_bucket(local_s3, tmp_path, monkeypatch)
    local_s3.client().delete_object(Bucket=local_s3.bucket, Key="world/soil.csv")
    out = tmp_path / "out"
    result = cli_run(cloud, out)
    assert result.exit_code == 66, result.output
    line = refusal(result)
    assert line.startswith("s3://minemap-test/world/soil.csv: no such object in the store (HTTP 404)"), line
    assert not out.exists()


def test_denied_object_exits_77_naming_it(local_s3, tmp_path, monkeypatch):
    _, cloud = world_in_bucket(local_s3, tmp_path, monkeypatch)
    policy = {"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "s3:GetObject",
        "Resource": f"arn:aws:s3:::{local_s3.bucket}/world/drone/a.tif"}]}
    local_s3.client().put_bucket_policy(Bucket=local_s3.bucket, Policy=json.dumps(policy))
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("previous")
    result = cli_run(cloud, out)
    assert result.exit_code == 77, result.output
    line = refusal(result)
    assert line.startswith("s3://minemap-test/world/drone/a.tif: the store refused access (HTTP 403)"), line
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_stopped_server_exits_69_naming_the_url(local_s3, tmp_path, monkeypatch):
    _, cloud = world_in_bucket(local_s3, tmp_path, monkeypatch)
    local_s3.stop()
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")  # boto3's retries, bounded (a refused connection is quick)
    out = tmp_path / "out"
    result = cli_run(cloud, out)
    assert result.exit_code == 69, result.output
    line = refusal(result)
    assert line.startswith("s3://minemap-test/world/grid.toml: the store did not answer (could not connect)"), line
    assert not out.exists()


def test_store_stopped_mid_run_exits_69_and_publishes_nothing(local_s3, tmp_path, monkeypatch):
    """The store goes away once the inputs are checked: the chunks' raster reads fail, mapped by GDAL's message."""
    _, cloud = world_in_bucket(local_s3, tmp_path, monkeypatch)
    monkeypatch.setenv("CPL_VSIL_CURL_NON_CACHED", "/vsis3/")  # the chunk reads go to the server, not a cache
    import pipeline.runner as runner

    real = runner.load_inputs

    def load_then_stop(*a, **k):
        inputs = real(*a, **k)
        local_s3.stop()
        return inputs

    monkeypatch.setattr(runner, "load_inputs", load_then_stop)
    out = tmp_path / "out"
    result = cli_run(cloud, out)
    assert result.exit_code == 69, result.output
    line = refusal(result)
    assert line.startswith("s3://minemap-test/world/drone/a.tif: the store did not answer"), line
    assert not any(p.suffix == ".tif" for p in out.glob("*")) and not (out / "run.json").exists()


def test_signed_url_is_never_written_or_printed(local_s3, tmp_path, monkeypatch):
    config, _ = world_in_bucket(local_s3, tmp_path, monkeypatch)
    signed = local_s3.client().generate_presigned_url(
        "get_object", Params={"Bucket": local_s3.bucket, "Key": "world/drone/a.tif"}, ExpiresIn=600)
    assert "Signature=" in signed and signed.startswith("http://127.0.0.1")
    text = config.read_text().replace('path = "drone/*.tif"', f'path = "{signed}"')
    text = text.replace('path = "soil.gpkg"', f'path = "s3://{local_s3.bucket}/world/soil.gpkg"')  # and local ones
    table = local_s3.client().generate_presigned_url(  # a class table by a signed URL too
        "get_object", Params={"Bucket": local_s3.bucket, "Key": "world/soil.csv"}, ExpiresIn=600)
    text = text.replace('table = "soil.csv"', f'table = "{table}"')
    config.write_text(text.replace("deliverables = false", "deliverables = true\nbundle_rasters = true"))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["run", str(config), "--out", str(out)])
    assert result.exit_code == 0, result.output
    secret, bare = signed.split("?", 1)[1], signed.split("?", 1)[0]
    sig = re.search(r"Signature=([^&]+)", signed).group(1)
    assert len(sig) >= 20
    written = [p for p in out.rglob("*") if p.is_file()]
    assert len(written) > 10
    table_sig = unquote(re.search(r"Signature=([^&]+)", table).group(1)).encode()
    for p in written:
        data = p.read_bytes()
        if p.suffix == ".qgz":  # a zip: its project text, uncompressed
            with zipfile.ZipFile(p) as z:
                data = b"".join(z.read(n) for n in z.namelist())
                assert b"./evidence/a.tif" in data  # the drone layer, bundled
        assert sig.encode() not in data and unquote(sig).encode() not in data and b"AWSAccessKeyId" not in data, p
        assert table_sig not in data and quote(table_sig).encode() not in data, p
    assert sig not in result.output and unquote(sig) not in result.output and secret not in result.output
    record = json.loads((out / "run.json").read_text())
    bare = signed.split("?", 1)[0]
    assert record["inputs"][bare]["variables"] == ["V_i"]
    assert record["config"]["settings"]["inputs"]["V_i"]["path"] == bare
    with rasterio.open(out / "contamination_probability.tif") as ds:
        assert np.nanmax(ds.read(1)) > 0  # the signed raster was read
    # bundled: downloaded into OUT byte for byte
    assert (out / "evidence" / "a.tif").read_bytes() == (config.parent / "drone" / "a.tif").read_bytes()


class FlakyProxy:
    """An HTTP proxy in front of the local S3 server answering 503 to the first request for each object
    (`always`: to every request for keys holding that text): a store with transient failures."""

    def __init__(self, upstream_port: int, always: str | None = None) -> None:
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.failed: list[str] = []
        seen: set[tuple[str, str]] = set()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self):
                path = self.path.split("?", 1)[0]
                first = (self.command, path) not in seen
                seen.add((self.command, path))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if (first and path.count("/") >= 2) or (always and always in path):  # objects, not buckets
                    proxy.failed.append(f"{self.command} {path}")
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=30)
                conn.request(self.command, self.path, body, dict(self.headers))
                r = conn.getresponse()
                data = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                conn.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _any

            def log_message(self, *a):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def through(proxy: FlakyProxy, monkeypatch) -> None:
    """boto3 (HEAD, listing, small files) through the proxy; GDAL still straight to the server (GDAL's
    range reads through this simple proxy stall: GDAL's own retries are not tested here)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{proxy.port}")
    from pipeline import store

    store.client.cache_clear()


def test_transient_failures_are_retried(local_s3, tmp_path, monkeypatch):
    config, cloud = world_in_bucket(local_s3, tmp_path, monkeypatch)
    proxy = FlakyProxy(local_s3.port)
    try:
        through(proxy, monkeypatch)
        local, remote = tmp_path / "local", tmp_path / "remote"
        run(config, local, workers=1)
        run(cloud, remote, workers=1)
        assert_same_products(local, remote)
        # each object's first request failed (HEAD, GET) and was tried again
        assert {"HEAD /minemap-test/world/drone/a.tif", "GET /minemap-test/world/soil.csv",
                "GET /minemap-test/world/grid.toml", "HEAD /minemap-test/world/mines.gpkg"} <= set(proxy.failed)
    finally:
        proxy.close()


def test_a_store_failing_every_time_is_given_up_after_bounded_retries(local_s3, tmp_path, monkeypatch):
    _, cloud = world_in_bucket(local_s3, tmp_path, monkeypatch)
    proxy = FlakyProxy(local_s3.port, always="cleared.gpkg")
    try:
        through(proxy, monkeypatch)
        out = tmp_path / "out"
        result = cli_run(cloud, out)
        assert result.exit_code == 69, result.output
        assert refusal(result).startswith("s3://minemap-test/world/cleared.gpkg: the store answered HTTP 503")
        assert proxy.failed.count("HEAD /minemap-test/world/cleared.gpkg") == 4  # boto3's 4 attempts, no more
        assert not out.exists()
    finally:
        proxy.close()
