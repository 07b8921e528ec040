"""Drone layers from STAC (issue #23 §3): a static catalogue or an API search gives the same V_i as
the files listed by a glob; items are dated by their datetime; `update` redoes only a new item's chunks."""

from __future__ import annotations

import json
import shutil
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import numpy as np
import pystac
import pytest
import rasterio
from click.testing import CliRunner
from pyproj import Transformer

from conftest import engine_only
from made import made_products
from pipeline.cli import main
from pipeline.errors import InputError, StoreMissingError, StoreUnreachableError
from pipeline import store
from pipeline.history import newest_acquisition
from pipeline.sources import file_sha256
from pipeline.runner import load_inputs, run, update
from pipeline.writers.project import _relative
from world import CRS, X0, Y1, make_world, write_raster

MAY, JUNE = datetime(2024, 5, 1, 10, tzinfo=timezone.utc), datetime(2024, 6, 1, 10, tzinfo=timezone.utc)
TO_LONLAT = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)


def second_drone(root: Path) -> Path:
    """b.tif: 0.2 over cells rows 0–9, cols 5–14 (half over a.tif's 0.6 at cols 5–9), flown in June."""
    return write_raster(root / "drone" / "b.tif", np.full((50, 50), 0.2, np.float32), X0 + 500, Y1, 20.0, CRS,
                        nodata=-1.0, tags={"TIFFTAG_DATETIME": "2024:06:01 10:00:00"})


def lonlat_bbox(path: Path) -> list[float]:
    with rasterio.open(path) as ds:
        b = ds.bounds
    xs, ys = TO_LONLAT.transform([b.left, b.right, b.left, b.right], [b.bottom, b.bottom, b.top, b.top])
    return [min(xs), min(ys), max(xs), max(ys)]


def feature(iid: str, when: datetime | None, href: str, bbox: list[float], asset: str = "anomaly") -> dict:
    return {"type": "Feature", "stac_version": "1.0.0", "id": iid, "bbox": bbox,
            "geometry": {"type": "Polygon", "coordinates": [[[bbox[0], bbox[1]], [bbox[2], bbox[1]], [bbox[2], bbox[3]],
                                                             [bbox[0], bbox[3]], [bbox[0], bbox[1]]]]},
            "properties": {"datetime": when.isoformat().replace("+00:00", "Z") if when else None},
            "assets": {asset: {"href": href, "type": "image/tiff; application=geotiff"}}, "links": []}


def write_catalogue(root: Path, dated: dict[str, datetime], asset: str = "anomaly") -> Path:
    """A self-contained catalog.json under root/stac: one item per drone file (relative asset hrefs)."""
    cat = pystac.Catalog("drones", "drone anomaly rasters")
    for name, when in dated.items():
        tif = root / "drone" / name
        bbox = lonlat_bbox(tif)
        item = pystac.Item(Path(name).stem, feature("x", None, "", bbox)["geometry"], bbox, when, {})
        item.add_asset(asset, pystac.Asset(str(tif), media_type=pystac.MediaType.GEOTIFF))
        cat.add_item(item)
    cat.normalize_hrefs(str(root / "stac"))
    cat.make_all_asset_hrefs_relative()
    cat.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "stac" / "catalog.json"


def stac_config(config: Path, source: str) -> Path:
    """The world's config with [inputs.V_i] replaced by `source` (TOML lines)."""
    text = config.read_text().replace('[inputs.V_i]\nkind = "raster"\npath = "drone/*.tif"\n', "[inputs.V_i]\n" + source)
    assert source in text
    out = config.with_name("stac.toml")
    out.write_text(text)
    return out


def v_i(config: Path) -> np.ndarray:
    return load_inputs(config).layers["V_i"].array.compute()


def test_static_catalogue_gives_the_products_of_the_files(tmp_path):
    config = engine_only(make_world(tmp_path / "w"))
    second_drone(config.parent)
    write_catalogue(config.parent, {"a.tif": MAY, "b.tif": JUNE})
    assert json.loads((config.parent / "stac" / "a" / "a.json").read_text())["assets"]["anomaly"]["href"] == \
        "../../drone/a.tif"  # relative, resolved against the item
    stac = stac_config(config, f'kind = "stac"\ncatalog = "stac/catalog.json"\nasset = "anomaly"\n')
    files, items = tmp_path / "files", tmp_path / "items"
    run(config, files, workers=1)
    record = run(stac, items, workers=1)
    for name in ("a.tif", "b.tif"):  # the assets are inputs, as the glob's files are
        path = config.parent / "drone" / name
        assert record["inputs"][str(path)] == {"sha256": file_sha256(path), "variables": ["V_i"]}
    names = made_products(items)
    assert names == made_products(files) and "contamination_probability" in names
    for name in names:
        with rasterio.open(files / f"{name}.tif") as a, rasterio.open(items / f"{name}.tif") as b:
            assert np.array_equal(a.read(1), b.read(1), equal_nan=True), name
    with rasterio.open(items / "contamination_probability.tif") as ds:
        pc = ds.read(1)
    # cell (0, 7): sand S_t 0.8, no records (H_m 0), V_i from June's b.tif (0.2, on top of May's 0.6)
    assert pc[0, 7] == pytest.approx((0 + 0.8 + 0.2) / 3, abs=1e-6)
    assert pc[0, 2] == pytest.approx((0 + 0.8 + 0.6) / 3, abs=1e-6)  # a.tif alone


def test_the_items_datetime_orders_the_mosaic_not_the_files_tag(tmp_path):
    config = make_world(tmp_path / "w")
    second_drone(config.parent)  # its tag says June
    write_catalogue(config.parent, {"a.tif": JUNE, "b.tif": MAY})  # the catalogue says a.tif is the newer
    stac = stac_config(config, 'kind = "stac"\ncatalog = "stac/catalog.json"\nasset = "anomaly"\n')
    assert v_i(stac)[0, 7] == pytest.approx(0.6)  # a.tif on top where they overlap
    assert v_i(config)[0, 7] == pytest.approx(0.2)  # the files by their tags: b.tif on top
    inputs = load_inputs(stac)  # the run's STAC item is dated by the newest item's datetime, not by a tag
    assert newest_acquisition(inputs.cfg, {"V_i": inputs.layers["V_i"]}) == \
        ("2024-06-01T10:00:00+00:00", str(config.parent / "drone" / "a.tif"))


def test_datetime_and_the_region_limit_a_static_catalogue(tmp_path):
    config = make_world(tmp_path / "w")
    second_drone(config.parent)
    far = config.parent / "drone" / "far.tif"  # 30 km east: outside the region, kept out before it is opened
    write_raster(far, np.full((50, 50), 0.9, np.float32), X0 + 30_000, Y1, 20.0, CRS, nodata=-1.0)
    write_catalogue(config.parent, {"a.tif": MAY, "b.tif": JUNE, "far.tif": MAY})
    stac = stac_config(config, 'kind = "stac"\ncatalog = "stac/catalog.json"\nasset = "anomaly"\n'
                               'datetime = "2024-05-01/2024-05-31"\n')
    inputs = load_inputs(stac)
    assert [Path(f).name for f in inputs.layers["V_i"].files] == ["a.tif"]
    assert inputs.layers["V_i"].array.compute()[0, 7] == pytest.approx(0.6)


@pytest.mark.parametrize("change, says", [
    ("asset", "has no asset 'anomaly' (its assets: visual): set `asset` in the source"),
    ("datetime", "has no datetime"),
    ("missing", "not found"),
    ("empty", "no STAC item for the region (bbox 45.000000, 39.749848, 45.116879, 39.840009, datetime 2025-01-01/..; "
              "inputs.V_i in stac.toml)"),
])
def test_catalogue_problems_name_the_item_or_catalogue(tmp_path, change, says):
    config = make_world(tmp_path / "w")
    catalogue = write_catalogue(config.parent, {"a.tif": MAY}, asset="visual" if change == "asset" else "anomaly")
    item_file = config.parent / "stac" / "a" / "a.json"
    if change == "datetime":
        doc = json.loads(item_file.read_text())
        doc["properties"]["datetime"] = None
        doc["properties"]["start_datetime"] = doc["properties"]["end_datetime"] = "2024-05-01T00:00:00Z"
        item_file.write_text(json.dumps(doc))
    when = 'datetime = "2025-01-01/.."\n' if change == "empty" else ""
    if change == "missing":  # the asset's file is not there
        doc = json.loads(item_file.read_text())
        doc["assets"]["anomaly"]["href"] = "../../drone/gone.tif"
        item_file.write_text(json.dumps(doc))
    stac = stac_config(config, f'kind = "stac"\ncatalog = "stac/catalog.json"\nasset = "anomaly"\n{when}')
    with pytest.raises(InputError) as e:
        load_inputs(stac)
    [problem] = e.value.problems
    assert says in problem.what
    assert problem.where == {"empty": str(catalogue), "missing": f"{config.parent / 'drone' / 'gone.tif'} (asset of "
                             f"{item_file} (item a))"}.get(change, f"{item_file} (item a)")
    result = CliRunner().invoke(main, ["validate", str(stac)])
    assert result.exit_code == InputError.exit_code and says.split(":")[0] in " ".join(result.output.split())


# --- a STAC API search, paginated, against a local HTTP server -------------------------------------------

class SearchServer:
    """GET /search over `features`, filtered by the request's bbox and datetime as an API would, `limit` a
    page, with a `next` link (a page token) while more remain. Records every query it was sent."""

    def __init__(self, features: list[dict]) -> None:
        self.features, self.queries = features, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                parts = urlsplit(self.path)
                if parts.path != "/search":
                    self.send_error(404)
                    return
                q = {k: v[0] for k, v in parse_qs(parts.query).items()}
                server.queries.append(q)
                body = json.dumps(server.page(q, f"http://127.0.0.1:{self.server.server_port}/search")).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/geo+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def page(self, q: dict, here: str) -> dict:
        w, s, e, n = map(float, q["bbox"].split(","))
        lo, hi = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in q["datetime"].split("/"))
        match = [f for f in self.features
                 if q["collections"] == "drones" and not (f["bbox"][2] < w or f["bbox"][0] > e or f["bbox"][3] < s
                                                          or f["bbox"][1] > n)
                 and lo <= datetime.fromisoformat(f["properties"]["datetime"].replace("Z", "+00:00")) <= hi]
        start, limit = int(q.get("token", 0)), int(q["limit"])
        links = []
        if start + limit < len(match):
            rest = {k: v for k, v in q.items() if k != "token"}
            links.append({"rel": "next", "href": here + "?" + urlencode({**rest, "token": start + limit}),
                          "type": "application/geo+json"})
        return {"type": "FeatureCollection", "features": match[start:start + limit], "links": links}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_api_search_reads_every_page_for_the_region_and_datetime(tmp_path):
    config = make_world(tmp_path / "w")
    second_drone(config.parent)
    a, b = (config.parent / "drone" / n for n in ("a.tif", "b.tif"))
    shutil.copy(a, config.parent / "drone" / "far.tif")  # an item elsewhere (its bbox a degree east)
    far = lonlat_bbox(a)
    far = [far[0] + 1, far[1], far[2] + 1, far[3]]
    server = SearchServer([
        feature("may", MAY, str(a), lonlat_bbox(a)),
        feature("2023", datetime(2023, 7, 1, tzinfo=timezone.utc), str(a), lonlat_bbox(a)),  # before `datetime`
        feature("far", MAY, str(config.parent / "drone" / "far.tif"), far),
        feature("june", JUNE, str(b), lonlat_bbox(b)),
    ])
    try:
        stac = stac_config(config, f'kind = "stac"\napi = "{server.url}"\ncollection = "drones"\n'
                                   f'datetime = "2024-01-01/2024-12-31"\nasset = "anomaly"\nlimit = 1\n'
                                   f'query = {{ "eo:cloud_cover" = {{ lt = 10 }} }}\nfilter = "platform = \'uav-3\'"\n')
        inputs = load_inputs(stac)
    finally:
        server.close()
    assert inputs.layers["V_i"].files == [a, b]  # oldest first: June's on top
    assert inputs.layers["V_i"].array.compute()[0, 7] == pytest.approx(0.2)
    assert len(server.queries) == 2 and server.queries[1]["token"] == "1"  # page 2 through the `next` link
    q = server.queries[0]
    assert (q["collections"], q["datetime"], q["limit"]) == ("drones", "2024-01-01T00:00:00Z/2024-12-31T23:59:59Z", "1")
    assert (q["query"], q["filter"], q["filter-lang"]) == ('{"eo:cloud_cover":{"lt":10}}', "platform = 'uav-3'",
                                                           "cql2-text")
    # the region (UTM 38N x 500–510 km, y 4400–4410 km) in lon/lat, rounded outward: not typed by the user
    assert [float(v) for v in q["bbox"].split(",")] == pytest.approx([45.0, 39.749848, 45.116879, 39.840009], abs=2e-6)


# --- update: a new, changed or removed item redoes the chunks under it only ------------------------------

def ten_metre_world(root: Path) -> Path:
    """The tiny world at 10 m: 1000 × 1000 cells in 2 × 2 chunks of 512."""
    config = engine_only(make_world(root))
    grid = config.parent / "grid.toml"
    grid.write_text(grid.read_text().replace("resolution = 100.0", "resolution = 10"))
    return config


def same_products(a: Path, b: Path) -> None:
    names = made_products(a)
    assert names == made_products(b)
    for name in names:
        with rasterio.open(a / f"{name}.tif") as x, rasterio.open(b / f"{name}.tif") as y:
            assert np.array_equal(x.read(1), y.read(1), equal_nan=True), name


def test_update_redoes_only_the_chunks_of_a_new_changed_or_removed_item(tmp_path):
    config = ten_metre_world(tmp_path / "w")
    root = config.parent
    b = second_drone(root)
    write_catalogue(root, {"a.tif": MAY, "b.tif": JUNE})
    stac = stac_config(config, 'kind = "stac"\ncatalog = "stac/catalog.json"\nasset = "anomaly"\n')
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    run(stac, out, workers=1)
    assert update(stac, out, workers=1)["status"] == "up to date"

    # a flight in the south-east: x 508–509 km, y 4401–4402 km, cells rows 800–899, cols 800–899: chunk (1, 1)
    c = write_raster(root / "drone" / "c.tif", np.full((50, 50), 0.9, np.float32), X0 + 8000, Y1 - 8000, 20.0, CRS,
                     nodata=-1.0)
    write_catalogue(root, {"a.tif": MAY, "b.tif": JUNE, "c.tif": datetime(2024, 7, 1, tzinfo=timezone.utc)})
    s = update(stac, out, workers=1)
    assert (s["status"], s["added"], s["changed"], s["removed"]) == ("updated", [str(c)], [], [])
    assert (s["chunks_recomputed"], s["chunks_total"]) == (1, 4)
    run(stac, fresh, workers=1)
    same_products(out, fresh)

    write_raster(c, np.full((50, 50), 0.5, np.float32), X0 + 8000, Y1 - 8000, 20.0, CRS, nodata=-1.0)  # re-flown
    s = update(stac, out, workers=1)
    assert (s["added"], s["changed"], s["chunks_recomputed"]) == ([], [str(c)], 1)

    write_catalogue(root, {"a.tif": MAY, "c.tif": datetime(2024, 7, 1, tzinfo=timezone.utc)})  # b withdrawn
    shutil.rmtree(root / "stac" / "b")
    s = update(stac, out, workers=1)
    assert (s["added"], s["changed"], s["removed"], s["chunks_recomputed"]) == ([], [], [str(b)], 1)
    shutil.rmtree(fresh)
    run(stac, fresh, workers=1)
    same_products(out, fresh)
    with rasterio.open(out / "contamination_probability.tif") as ds:
        pc = ds.read(1)
    assert pc[50, 70] == pytest.approx((0 + 0.8 + 0.6) / 3, abs=1e-6)  # a.tif's again where b.tif lay
    assert pc[850, 850] == pytest.approx((0 + 0.2 + 0.5) / 3, abs=1e-6)  # rock S_t 0.2, c.tif re-flown 0.5

    write_catalogue(root, {"a.tif": datetime(2024, 8, 1, tzinfo=timezone.utc),  # a's item re-dated only
                           "c.tif": datetime(2024, 7, 1, tzinfo=timezone.utc)})
    s = update(stac, out, workers=1)
    assert (s["added"], s["changed"], s["removed"], s["chunks_recomputed"]) == ([], [], [], 1)

    item = root / "stac" / "a" / "a.json"  # only the item's `updated` changes: its chunk is redone (conservative)
    doc = json.loads(item.read_text())
    doc["properties"]["updated"] = "2024-09-01T00:00:00Z"
    item.write_text(json.dumps(doc))
    s = update(stac, out, workers=1)
    assert (s["added"], s["changed"], s["removed"], s["chunks_recomputed"]) == ([], [], [], 1)

    # a's asset renamed: update leaves the item out, says why, goes on
    item.write_text(item.read_text().replace('"anomaly"', '"visual"'))
    s = update(stac, out, workers=1)
    assert (s["removed"], s["chunks_recomputed"]) == ([str(root / "drone" / "a.tif")], 1)
    assert s["rejected"] == [f"{item} (item a): has no asset 'anomaly' (its assets: visual): set `asset` in the source"]


# --- object storage: a catalogue and its assets in a bucket ------------------------------------------------

@pytest.fixture
def aws_env(local_s3, monkeypatch):
    """The local server's AWS environment in this process (GDAL and boto3 read it there)."""
    for k, v in local_s3.env.items():
        monkeypatch.setenv(k, v)
    store.client.cache_clear()
    yield local_s3
    store.client.cache_clear()


def test_a_catalogue_in_a_bucket_with_relative_asset_hrefs(tmp_path, aws_env):
    config = make_world(tmp_path / "w")
    second_drone(config.parent)
    write_catalogue(config.parent, {"a.tif": MAY, "b.tif": JUNE})
    aws_env.upload_tree(config.parent / "drone", "survey/drone")
    url = aws_env.upload_tree(config.parent / "stac", "survey/stac")
    stac = stac_config(config, f'kind = "stac"\ncatalog = "{url}/catalog.json"\nasset = "anomaly"\n')
    inputs = load_inputs(stac)
    bucket = f"s3://{aws_env.bucket}/survey/drone"
    assert inputs.layers["V_i"].files == [f"{bucket}/a.tif", f"{bucket}/b.tif"]
    head = aws_env.client().head_object(Bucket=aws_env.bucket, Key="survey/drone/a.tif")
    etag, size = head["ETag"].strip('"'), (config.parent / "drone" / "a.tif").stat().st_size
    identity = f"etag {etag} size {size} modified {head['LastModified'].isoformat()}"
    assert inputs.raster_checks[f"{bucket}/a.tif"]["sha256"] == identity  # not read in full to hash
    np.testing.assert_array_equal(inputs.layers["V_i"].array.compute(), v_i(config))
    # what is remembered of an object counts only while its ETag is the same (size and last-modified, to
    # the second, may be too): a remembered check with another ETag is read again
    from pipeline.sources.loaders import inspect_raster
    from pipeline.variables import VARIABLES

    checks = {f"{bucket}/a.tif": {**inputs.raster_checks[f"{bucket}/a.tif"], "etag": "old", "sha256": "old",
                                  "max": 0.99}}
    f = inspect_raster(f"{bucket}/a.tif", load_inputs(config).cfg.spec.inputs["V_i"], VARIABLES["V_i"], inputs.grid,
                       [], checks)
    assert f.sha256 == identity and checks[f"{bucket}/a.tif"]["max"] == pytest.approx(0.6)
    # a run with every deliverable: the bundled rasters are the objects' bytes; unbundled, the QGIS
    # project reads them through GDAL's /vsis3/ (with the same AWS environment)
    record = run(stac, tmp_path / "out", workers=1, bundle_rasters=True)
    assert record["inputs"][f"{bucket}/b.tif"]["sha256"].startswith("etag ")
    assert (tmp_path / "out" / "evidence" / "b.tif").read_bytes() == (config.parent / "drone" / "b.tif").read_bytes()
    assert _relative(store.Url(f"{bucket}/b.tif"), tmp_path / "out", None) == \
        f"/vsis3/{aws_env.bucket}/survey/drone/b.tif"


def test_a_catalogue_missing_from_the_bucket_ends_with_the_stores_exit_code(tmp_path, aws_env):
    config = make_world(tmp_path / "w")
    url = f"s3://{aws_env.bucket}/nowhere/catalog.json"
    stac = stac_config(config, f'kind = "stac"\ncatalog = "{url}"\nasset = "anomaly"\n')
    with pytest.raises(StoreMissingError) as e:  # HTTP 404: exit 66, as for a raster by URL
        load_inputs(stac)
    assert [p.where for p in e.value.problems] == [url]
    assert CliRunner().invoke(main, ["validate", str(stac)]).exit_code == 66


# --- watch: new items in a catalogue, new objects under an S3 prefix ---------------------------------------

class Watching:
    """`watch` in a thread with a stand-in update that counts its calls; no settle, a short poll."""

    def __init__(self, config: Path, poll) -> None:
        from pipeline.watch import watch

        self.calls, self.polls, self.lines, self.stop = 0, 0, [], threading.Event()
        self.called = threading.Semaphore(0)

        def counted():
            self.polls += 1
            return poll()

        def fake_update() -> dict:
            self.calls += 1
            self.called.release()
            return {"status": "updated", "added": [], "changed": [], "removed": [], "rejected": [],
                    "chunks_recomputed": 1, "chunks_total": 1, "seconds": 0.0}

        self.thread = threading.Thread(target=watch, args=(config, Path("out"), fake_update, self.lines.append),
                                       kwargs={"settle": 0.0, "interval": 0.02, "stop": self.stop, "poll": counted})
        self.thread.start()

    def next_update(self) -> None:
        assert self.called.acquire(timeout=60), self.lines

    def polled(self, polls: int) -> None:
        """Wait until `polls` more polls have been made (counted, not timed)."""
        until = self.polls + polls
        for _ in range(3000):
            if self.polls >= until:
                return
            self.stop.wait(0.02)
        raise AssertionError(f"fewer than {polls} polls: {self.lines}")

    def quiet(self, polls: int = 5) -> None:
        """Let `polls` more polls pass and check no update came of them."""
        calls = self.calls
        self.polled(polls)
        assert self.calls == calls, self.lines

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


def test_watch_updates_when_a_new_item_is_catalogued(tmp_path):
    from pipeline.watch import watched

    config = make_world(tmp_path / "w")
    second_drone(config.parent)
    write_catalogue(config.parent, {"a.tif": MAY})
    stac = stac_config(config, 'kind = "stac"\ncatalog = "stac/catalog.json"\nasset = "anomaly"\n')
    poller = watched(stac)
    assert poller.names() == [f"STAC {config.parent / 'stac' / 'catalog.json'}"]
    w = Watching(stac, poll=poller)
    try:
        w.next_update()  # the first look: an update (a full run when OUT is new)
        w.quiet()
        write_catalogue(config.parent, {"a.tif": MAY, "b.tif": JUNE})  # b.tif catalogued
        w.next_update()
        w.quiet()
    finally:
        w.close()
    assert w.calls == 2 and w.polls > 10
    assert w.lines[0] == "watching → out" and w.lines[-1] == "stopped"


def test_watch_updates_when_an_object_lands_under_the_prefix(tmp_path, aws_env):
    from pipeline.watch import watched

    config = make_world(tmp_path / "w")
    url = aws_env.upload_tree(config.parent / "drone", "flights")
    s3 = config.with_name("s3.toml")
    s3.write_text(config.read_text().replace('path = "drone/*.tif"', f'path = "{url}/*.tif"'))
    poller = watched(s3)
    assert poller.objects == (f"{url}/*.tif",) and list(poller()) == [f"{url}/a.tif"]
    w = Watching(s3, poll=poller)
    try:
        w.next_update()
        c = aws_env.client()
        c.put_object(Bucket=aws_env.bucket, Key="flights/notes.txt", Body=b"not a raster")  # not the glob's
        c.put_object(Bucket=aws_env.bucket, Key="flights/old/x.tif", Body=b"deeper: `*` stays in one folder")
        w.quiet()
        c.upload_file(str(config.parent / "drone" / "a.tif"), aws_env.bucket, "flights/2024-06-01.tif")
        w.next_update()
        w.quiet()
        c.put_object(Bucket=aws_env.bucket, Key="flights/a.tif", Body=b"re-flown")  # the same key, new bytes
        w.next_update()
        w.quiet()
        assert w.calls == 3
        aws_env.stop()  # the store goes away (moto may list nothing as it stops: an update then is right)
        for _ in range(3000):  # until a poll has failed (it retries for a few seconds first)
            if any(line.startswith("poll failed: ") for line in w.lines):
                break
            w.stop.wait(0.02)
        w.polled(3)  # two more polls fail the same way
        assert w.thread.is_alive()  # still watching
    finally:
        w.close()
    failed = [line for line in w.lines if line.startswith("poll failed: ")]
    assert len(failed) == 1 and w.lines[-1] == "stopped"  # logged once, not at every poll
    assert failed[0].startswith(f"poll failed: s3://{aws_env.bucket}/flights/: the store did not answer")


def test_relative_hrefs_resolve_against_the_items_own_document():
    from pipeline.stacread import item_of, join

    f = feature("x", MAY, "./x.tif", [45, 39, 46, 40])  # beside the item, not beside the search page
    f["links"] = [{"rel": "self", "href": "https://stac.example.org/v1/collections/c/items/x.json"}]
    problems = []
    item = item_of(f, "https://stac.example.org/v1/search?token=2", "anomaly", problems)
    assert (item.href, item.id, item.acquired, problems) == (
        "https://stac.example.org/v1/collections/c/items/x.tif", "x", MAY.timestamp(), [])
    assert item.identity == "x@2024-05-01T10:00:00Z"  # no `updated`: the datetime stands for it
    assert join("s3://b/stac/a/a.json", "../../drone/a.tif") == "s3://b/drone/a.tif"
    assert join("/x/stac/a/a.json", "../../drone/a.tif") == "/x/drone/a.tif"
    assert join("/x/stac/catalog.json", "file:///data/a.tif") == "/data/a.tif"
    assert join("/x/stac/catalog.json", "s3://b/a.tif") == "s3://b/a.tif"


@pytest.mark.parametrize("link, says", [
    ({"rel": "next", "href": "https://api.example.org/search", "method": "POST", "body": {"token": 2}},
     "the search's `next` link asks for a POST"),
    ({"rel": "next", "href": "https://api.example.org/search?a=1"}, "points back at a page already read"),
])
def test_a_search_whose_next_link_cannot_be_followed_is_refused(monkeypatch, link, says):
    from pipeline import stacread

    page = {"type": "FeatureCollection", "features": [feature("x", MAY, "x.tif", [45, 39, 46, 40])], "links": [link]}
    monkeypatch.setattr(stacread, "read_json", lambda url: page)
    with pytest.raises(InputError) as e:
        stacread.search_items("https://api.example.org", {"a": "1"})
    assert says in e.value.problems[0].what and e.value.problems[0].where == "https://api.example.org/search"


def test_an_asset_on_a_web_server_without_etag_is_known_by_last_modified_and_size(tmp_path):
    import functools
    from email.utils import formatdate
    from http.server import SimpleHTTPRequestHandler

    config = make_world(tmp_path / "w")
    a = config.parent / "drone" / "a.tif"
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(config.parent))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{httpd.server_port}/drone/a.tif"
        stat = store.head(url)
        with pytest.raises(StoreMissingError):  # a 404 from a web server: exit 66, as from a bucket
            store.head(url.replace("a.tif", "gone.tif"))
    finally:
        httpd.shutdown()
        httpd.server_close()
    size, modified = a.stat().st_size, formatdate(int(a.stat().st_mtime), usegmt=True)
    assert stat == store.Stat(size, "", modified)  # http.server sends no ETag
    assert stat.fingerprint() == f"etag  size {size} modified {modified}"  # a same-size rewrite still changes it


def test_a_signed_asset_href_is_read_whole_and_recorded_without_its_query_string(tmp_path, aws_env):
    config = make_world(tmp_path / "w")
    write_catalogue(config.parent, {"a.tif": MAY})
    url = aws_env.upload_tree(config.parent / "drone", "signed")
    bucket, key = store.split(f"{url}/a.tif")
    signed = aws_env.client().generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key})
    plain = store.redact(signed)
    assert "?" in signed and "?" not in plain and plain.startswith("http")
    item_file = config.parent / "stac" / "a" / "a.json"
    doc = json.loads(item_file.read_text())
    doc["assets"]["anomaly"]["href"] = signed
    item_file.write_text(json.dumps(doc))
    inputs = load_inputs(stac_config(config, 'kind = "stac"\ncatalog = "stac/catalog.json"\nasset = "anomaly"\n'))
    assert inputs.layers["V_i"].array.compute()[0, 7] == pytest.approx(0.6)  # read through the signed URL
    [f] = inputs.layers["V_i"].files
    assert str(f) == plain and list(inputs.raster_checks) == [plain]  # what run.json and the state record
    assert newest_acquisition(inputs.cfg, {"V_i": inputs.layers["V_i"]}) == ("2024-05-01T10:00:00+00:00", plain)


def test_a_signed_asset_href_is_named_without_its_query_string(tmp_path):
    config = make_world(tmp_path / "w")
    write_catalogue(config.parent, {"a.tif": MAY})
    item_file = config.parent / "stac" / "a" / "a.json"
    doc = json.loads(item_file.read_text())
    doc["assets"]["anomaly"]["href"] = "https://127.0.0.1:9/flights/a.tif?sig=SECRET"  # nothing listens there
    item_file.write_text(json.dumps(doc))
    stac = stac_config(config, 'kind = "stac"\ncatalog = "stac/catalog.json"\nasset = "anomaly"\n')
    with pytest.raises(StoreUnreachableError) as e:  # the store's own error (exit 69), as for any input by URL
        load_inputs(stac)
    [problem] = e.value.problems
    assert problem.where == f"https://127.0.0.1:9/flights/a.tif (asset of {item_file} (item a))"
    assert problem.what.startswith("the store did not answer (connection refused)") and "SECRET" not in str(e.value)
    result = CliRunner().invoke(main, ["validate", str(stac)])
    assert result.exit_code == 69 and "SECRET" not in result.output
