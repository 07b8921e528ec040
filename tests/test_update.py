"""Scheduled regeneration: `update` redoes only changed chunks and equals a fresh run, cell for cell."""

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from PIL import Image
from pyproj import Transformer

from conftest import REPO
from made import made_products
from pipeline.change import zone_changes
from pipeline.cli import main
from pipeline.runner import run, update
from pipeline.outdir import output_lock
from world import write_raster



@pytest.fixture
def sample(engine_sample) -> Path:
    """A private copy of the sample to change drone files in; products, summaries and the output
    folder are tested here, so no maps or report (see test_deliver)."""
    return engine_sample


def drone_near(config: Path, name: str, lon: float, lat: float, value: float) -> Path:
    """A 2 × 2 km float32 drone raster in UTM 38N centred on (lon, lat)."""
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:32638", always_xy=True).transform(lon, lat)
    return write_raster(config.parent / "drone" / name, np.full((100, 100), value, np.float32), x - 1000, y + 1000,
                        20.0, "EPSG:32638", nodata=-1.0, tags={"TIFFTAG_DATETIME": "2026:01:01 00:00:00"})


def assert_same_as_fresh_run(config: Path, out: Path, fresh: Path) -> None:
    shutil.rmtree(fresh, ignore_errors=True)
    run(config, fresh, workers=2)
    names = made_products(fresh)
    assert names == made_products(out)
    for name in names:
        with rasterio.open(out / f"{name}.tif") as a, rasterio.open(fresh / f"{name}.tif") as b:
            assert np.array_equal(a.read(1), b.read(1)), name
            assert a.overviews(1) == b.overviews(1)
            assert np.array_equal(a.read(1, out_shape=(a.height // 4, a.width // 4)),
                                  b.read(1, out_shape=(b.height // 4, b.width // 4))), name
            assert a.tags(1) == b.tags(1), name  # statistics
    # the district table and the zones come from per-chunk parts: old parts + new ones = a fresh run
    assert (out / "districts.csv").read_text() == (fresh / "districts.csv").read_text()
    zones, fresh_zones = (gpd.read_file(d / "priority_zones.gpkg") for d in (out, fresh))
    assert zones.drop(columns="geometry").equals(fresh_zones.drop(columns="geometry"))
    assert zones.geometry.geom_equals(fresh_zones.geometry).all()


def test_add_replace_remove_drone_layer(sample, tmp_path):
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    run(sample, out, workers=2)
    before = (out / "districts.csv").read_text()

    new = drone_near(sample, "2026-01-01_khojavend.tif", 46.95, 39.70, 0.9)
    s = update(sample, out, workers=2)
    assert s["status"] == "updated" and s["added"] == [str(new)]
    changed = set((out / "districts.csv").read_text().splitlines()) - set(before.splitlines())
    assert [line.split(",")[0] for line in changed] == ["Khojavend"]  # the new drone layer lies there
    assert 1 <= s["chunks_recomputed"] < s["chunks_total"] == 9
    assert_same_as_fresh_run(sample, out, fresh)

    drone_near(sample, "2026-01-01_khojavend.tif", 46.95, 39.70, 0.1)  # replaced: same name, new pixels
    s = update(sample, out, workers=2)
    assert s["changed"] == [str(new)] and 1 <= s["chunks_recomputed"] < 9
    assert_same_as_fresh_run(sample, out, fresh)

    new.unlink()
    s = update(sample, out, workers=2)
    assert s["removed"] == [str(new)] and 1 <= s["chunks_recomputed"] < 9
    assert_same_as_fresh_run(sample, out, fresh)


def test_unchanged_inputs_are_up_to_date_and_touch_nothing(sample, tmp_path):
    out = tmp_path / "out"
    run(sample, out, workers=2)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}
    result = CliRunner().invoke(main, ["update", str(sample), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["status"] == "up to date" and summary["chunks_recomputed"] == 0
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()} == before


def test_update_reads_no_unchanged_published_file_to_trust_it(sample, tmp_path, monkeypatch):
    """Before reading products back, an update checks they are the last run's files: by the size,
    modification and change times and inode the state recorded once they were in OUT (a ctime
    cannot be set back), not by hashing 100s of MB each time (the SHA-256 when those differ)."""
    import pipeline.outdir

    out = tmp_path / "out"
    run(sample, out, workers=2)
    state = json.loads((out / ".minemap" / "state.json").read_text())
    for name, entry in state["published"].items():
        st = (out / name).stat()
        assert entry["stat"] == [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino], name
    hashed = []
    real = pipeline.outdir.path_sha256
    monkeypatch.setattr(pipeline.outdir, "path_sha256", lambda p: hashed.append(Path(p)) or real(p))
    drone_near(sample, "2026-01-01_khojavend.tif", 46.95, 39.70, 0.9)
    assert update(sample, out, workers=2)["status"] == "updated"
    assert hashed and not [p for p in hashed if p.parent == out]  # the staged files only, for the record
    assert_same_as_fresh_run(sample, out, tmp_path / "fresh")


def test_update_without_previous_run_does_a_full_run(sample, tmp_path):
    s = update(sample, tmp_path / "out", workers=2)
    assert s["status"] == "full run" and s["chunks_recomputed"] == 9
    assert (tmp_path / "out" / "contamination_probability.tif").exists()


def test_bad_drone_file_is_rejected_and_the_rest_used(sample, tmp_path):
    out = tmp_path / "out"
    run(sample, out, workers=2)
    (sample.parent / "drone" / "2026-02-02_corrupt.tif").write_bytes(b"II*\x00not a tiff at all")
    good = drone_near(sample, "2026-02-03_shusha.tif", 46.75, 39.76, 0.7)
    result = CliRunner().invoke(main, ["update", str(sample), "--out", str(out), "--json"])
    assert result.exit_code == 3, result.output
    assert "rejected" in result.stderr and "2026-02-02_corrupt.tif: corrupt or unreadable raster" in result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["added"] == [str(good)] and len(summary["rejected"]) == 1
    record = json.loads((out / "run.json").read_text())
    assert any("corrupt" in r for r in record["rejected"])
    # `run` stays strict: the same folder fails it with exit 2 and nothing written
    assert CliRunner().invoke(main, ["run", str(sample), "--out", str(out), "--quiet"]).exit_code == 2


def test_second_writer_is_refused_while_one_holds_the_lock(sample, tmp_path):
    out = tmp_path / "out"
    with output_lock(out):
        result = CliRunner().invoke(main, ["run", str(sample), "--out", str(out), "--quiet"])
        assert result.exit_code == 75
        assert "another minemap run or update is writing this folder" in result.stderr
        assert CliRunner().invoke(main, ["update", str(sample), "--out", str(out), "--quiet"]).exit_code == 75
    assert not (out / "contamination_probability.tif").exists()


def test_sigkill_mid_update_leaves_previous_outputs_and_next_update_completes(sample, tmp_path):
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    run(sample, out, workers=2)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    drone_near(sample, "2026-03-03_fuzuli.tif", 47.15, 39.60, 0.95)
    env = {**os.environ, "MINEMAP_TEST_BATCH_DELAY": "30"}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "update", str(sample), "--out", str(out),
                             "--quiet", "--workers", "1"], env=env, cwd=REPO)
    deadline = time.monotonic() + 60
    while not any(out.glob(".staging-*/*.tif")):  # it is writing
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    with rasterio.open(out / "contamination_probability.tif") as ds:
        ds.read(1)
    s = update(sample, out, workers=2)
    assert s["status"] == "updated" and s["added"]
    assert not list(out.glob(".staging-*"))
    assert_same_as_fresh_run(sample, out, fresh)


def test_grown_files_are_rewritten_in_full(sample, tmp_path):
    """Patched files grow (rewritten tiles are appended); past 1.5× their size a full rewrite follows."""
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    run(sample, out, workers=2)
    state_file = out / ".minemap" / "state.json"
    state = json.loads(state_file.read_text())
    state["sizes"] = {name: 1 for name in state["sizes"]}  # as if the files had grown a lot
    state_file.write_text(json.dumps(state))
    drone_near(sample, "2026-05-05_jabrayil.tif", 47.03, 39.40, 0.5)
    s = update(sample, out, workers=2)
    assert s["status"] == "updated" and s["chunks_recomputed"] < 9
    assert json.loads(state_file.read_text())["sizes"]["recovery_rate"] == (out / "recovery_rate.tif").stat().st_size
    assert_same_as_fresh_run(sample, out, fresh)
    if shutil.which("gdalinfo"):  # the full rewrite restores a strict COG layout
        proc = subprocess.run(["/usr/bin/python3", "-m", "osgeo_utils.samples.validate_cloud_optimized_geotiff",
                               str(out / "contamination_probability.tif")], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def levels(path: Path) -> list[np.ndarray]:
    """Band 1 at full resolution and at every overview level, as stored."""
    with rasterio.open(path) as ds:
        n = len(ds.overviews(1))
    out = []
    for level in [None, *range(n)]:
        with rasterio.open(path, **({} if level is None else {"overview_level": level})) as ds:
            out.append(ds.read(1))
    return out


def test_update_change_map_and_zone_changes_equal_a_full_runs(sample, tmp_path, monkeypatch):
    """The update writes ΔP only where it redid chunks (0 or nodata elsewhere, read from no file)
    and compares only the zones meeting them: the same as a full run against the same previous run."""
    import pipeline.outdir

    out, again = tmp_path / "out", tmp_path / "again"
    run(sample, out, workers=2)
    shutil.copytree(out, again)  # the same previous run, for a full run to compare with
    previous_zones = shutil.copy(out / "priority_zones.gpkg", tmp_path / "previous_zones.gpkg")
    drone_near(sample, "2026-01-01_khojavend.tif", 46.95, 39.70, 0.9)
    hashed = []
    real = pipeline.outdir.path_sha256
    monkeypatch.setattr(pipeline.outdir, "path_sha256", lambda p: hashed.append(Path(p)) or real(p))
    s = update(sample, out, workers=2)
    # the previous product and zones compared are the last run's by their recorded size, times and
    # inode: neither is read whole to be trusted (see test_update_reads_no_unchanged_published_file…)
    assert not [p.name for p in hashed if p.parent == out]
    monkeypatch.undo()
    assert s["status"] == "updated" and 1 <= s["chunks_recomputed"] < s["chunks_total"] == 9
    full = run(sample, again, workers=2)
    assert full["changes"]["compared"] == "residual_probability"  # the sample releases land
    mine, theirs = levels(out / "change_since_previous.tif"), levels(again / "change_since_previous.tif")
    assert len(mine) == len(theirs) >= 1 and all(np.array_equal(a, b) for a, b in zip(mine, theirs))
    delta = mine[0]
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:32638", always_xy=True).transform(46.95, 39.70)
    far = Transformer.from_crs("EPSG:4326", "EPSG:32638", always_xy=True).transform(46.55, 39.85)  # Kalbajar
    with rasterio.open(out / "change_since_previous.tif") as ds:
        (r, c), (fr, fc) = ds.index(x, y), ds.index(*far)
    assert delta[r, c] not in (0.0, -9999.0)  # the new drone changed P_c there
    assert delta[fr, fc] == 0.0  # a chunk the update left alone: valid and unchanged
    record = json.loads((out / "run.json").read_text())
    assert record["changes"] == json.loads((again / "run.json").read_text())["changes"]
    zones = record["changes"]["zones"]
    assert sum(len(zones[k]) for k in ("appeared", "grew", "shrank", "vanished")) >= 1
    # pair by pair over all zones (100 m cells): the same answers
    assert zones == zone_changes(Path(previous_zones), out / "priority_zones.gpkg", 0.01)


def test_update_redraws_only_the_district_pages_whose_map_changed(tmp_path, monkeypatch):
    """The briefing's district drawings are kept in OUT/.minemap/pages; an update redraws those
    whose view holds changed cells (the new drone lies in Khojavend) and reuses the others byte
    for byte, stamping this run's words (run, page number, ranks, figures) over every page. A
    page whose cells lie clear of the redone chunks is not even read: the last run's digest of
    them stands in (the state's `looks`)."""
    import pipeline.writers.briefing.pack as pack
    shutil.copytree(REPO / "sample_data", tmp_path / "sample_data", ignore=shutil.ignore_patterns("*.py", "*.md"))
    shutil.copytree(REPO / "grids", tmp_path / "grids")
    config, out = tmp_path / "sample_data" / "minemap.toml", tmp_path / "out"
    first = run(config, out, workers=2)
    assert sorted(first["briefing_pages"]["drawn"]) == sorted(gpd.read_file(out / "districts.gpkg")["district"])
    kept = out / ".minemap" / "pages"
    before = {p.name: p.read_bytes() for p in kept.iterdir()}
    assert len(before) == 9
    maps_before = {p.name: p.read_bytes() for p in [*out.glob("*.png"), out / "evidence.gpkg"]}
    drone_near(config, "2026-01-01_khojavend.tif", 46.95, 39.70, 0.9)
    looks, real_look = {}, pack.district_look

    def look(b, row):
        looks[row["district"]] = real_look(b, row)
        return looks[row["district"]]

    monkeypatch.setattr(pack, "district_look", look)
    assert update(config, out, workers=2)["status"] == "updated"
    record = json.loads((out / "run.json").read_text())
    # the one redone chunk is the middle one of 3 × 3: Zangilan's page (the south) lies clear of it
    assert [name for name, look in looks.items() if look.data is None] == ["Zangilan"]
    assert "Zangilan" in record["briefing_pages"]["reused"]
    # the maps of products the drone does not feed (E, R_e: its P_c is the pollution factor, CSC,
    # released land), and evidence.gpkg (its vector files are the same), are copied as the first
    # run made them; P_c's is drawn again
    same = {name for name, data in maps_before.items() if (out / name).read_bytes() == data}
    assert same == {"environmental_impact.png", "recovery_rate.png", "clearance_sustainability.png",
                    "released_share.png", "evidence.gpkg"}
    assert f"Drawn {first['created_utc'][:16].replace('T', ' ')} UTC" in Image.open(out / "environmental_impact.png").text["Description"]
    assert f"Drawn {record['created_utc'][:16].replace('T', ' ')} UTC" in Image.open(out / "contamination_probability.png").text["Description"]
    assert ("Kept as drawn by an earlier run (the date on the map), as their cells, colours and outlines have not "
            "changed since: Environmental impact index (E), Ecological recovery rate (R_e), Clearance sustainability "
            "coefficient (CSC), Released land"
            ) in (out / "report.html").read_text()
    drawn, reused = record["briefing_pages"]["drawn"], record["briefing_pages"]["reused"]
    assert "Khojavend" in drawn and "Kalbajar" in reused and len(drawn) + len(reused) == 9 and len(reused) >= 5
    after = {p.name: p.read_bytes() for p in kept.iterdir()}
    assert len(after) == 9 and len(set(after) - set(before)) == len(drawn)  # the old drawings of those went
    assert all(after[name] == before[name] for name in set(after) & set(before))
    if shutil.which("pdftotext"):  # a reused page reads as this run's
        briefed = gpd.read_file(out / "districts.gpkg").sort_values("priority", kind="stable")  # the pages' order
        k = 3 + list(briefed["district"]).index("Kalbajar")  # after the summary and the changes page
        page = subprocess.run(["pdftotext", "-f", str(k), "-l", str(k), str(out / "briefing.pdf"), "-"],
                              capture_output=True, text=True, check=True).stdout
        when = record["created_utc"][:16].replace("T", " ")
        assert "District: Kalbajar" in page and f"run {when} UTC" in page and f"page {k} of 11" in page
    assert_same_as_fresh_run(config, out, tmp_path / "fresh")
    # a kept drawing is used only with the bytes the state recorded: one edited is drawn again
    state = json.loads((out / ".minemap" / "state.json").read_text())
    assert sorted(state["pages"]) == sorted(after)
    victim = next(iter(set(after) & set(before)))
    edited = after[victim][:-10] + b"%%EOF edit"
    (kept / victim).write_bytes(edited)
    assert set(state["made_from"]) == {*(p.name for p in out.glob("*.png")), "evidence.gpkg"}
    edited_map = (out / "environmental_impact.png").read_bytes()  # a kept map too (its size kept): drawn again
    edited_map = edited_map[:-40] + b"edit" + edited_map[-36:]
    (out / "environmental_impact.png").write_bytes(edited_map)
    drone_near(config, "2026-01-01_khojavend.tif", 46.95, 39.70, 0.1)  # the same district again
    assert update(config, out, workers=2)["status"] == "updated"
    pages = json.loads((out / "run.json").read_text())["briefing_pages"]
    assert len(pages["drawn"]) == len(drawn) + 1
    assert not (kept / victim).exists() or (kept / victim).read_bytes() != edited
    redrawn = out / "environmental_impact.png"  # (the same bytes as the first run's within the same minute)
    assert redrawn.read_bytes() != edited_map and Image.open(redrawn).size == Image.open(io.BytesIO(edited_map)).size
    assert f"Drawn {json.loads((out / 'run.json').read_text())['created_utc'][:16].replace('T', ' ')} UTC" in \
        Image.open(redrawn).text["Description"]
    assert (out / "clearance_sustainability.png").read_bytes() == maps_before["clearance_sustainability.png"]


def test_page_cells_are_the_same_from_the_staged_file_and_the_published_file(tmp_path, monkeypatch):
    """A full run draws the pack from the staged files, an update from the patched files: a
    district's cells, read at a coarse print resolution (overview level 2, then thinned), must be
    the same from both, or no drawing could ever be reused after a full run."""
    import pipeline.writers.briefing.district as district
    from pipeline.writers.briefing.drawing import Window

    shutil.copytree(REPO / "sample_data", tmp_path / "sample_data", ignore=shutil.ignore_patterns("*.py", "*.md"))
    shutil.copytree(REPO / "grids", tmp_path / "grids")
    config, out = tmp_path / "sample_data" / "minemap.toml", tmp_path / "out"
    monkeypatch.setattr(district, "DPI", 20)  # ~140 px across a district of ~300–500 cells: decimated
    seen, of = [], Window.of

    def where(tif, view, n):
        window = of(tif, view, n)
        if view is not None:  # a district's view (the cover reads the whole region)
            seen.append((Path(tif), view, n, window, window.read(tif)))
        return window

    monkeypatch.setattr(Window, "of", staticmethod(where))
    run(config, out, workers=2)
    staged = [s for s in seen if s[0].parent.name.startswith(".staging-")]  # gone now
    assert len(staged) == 9  # one view per district
    for tif, view, n, window, data in staged:
        with rasterio.open(out / f"{tif.stem}.tif") as ds:
            assert ds.overviews(1) == [2, 4]
        published = of(out / f"{tif.stem}.tif", view, n)
        again = published.read(out / f"{tif.stem}.tif")
        assert max(data.shape) <= n < max(view[2] - view[0], view[3] - view[1]) / 100  # fewer pixels than cells
        assert published == window and again.shape == data.shape
        assert np.array_equal(np.ma.getmaskarray(again), np.ma.getmaskarray(data))
        assert np.array_equal(again.filled(-1), data.filled(-1))
