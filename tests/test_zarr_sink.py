"""The Zarr sink (`[output] format = "zarr"`, issue #12): one products.zarr store, cell for cell
the COGs' values, georeferenced for xarray/odc-geo and GDAL, published atomically."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr

import pipeline
from conftest import REPO, engine_only
from faults import no_leftovers, run_cli, snapshot
from made import made_products, worker_tasks
from pipeline.grid import load_grid
from pipeline.outdir import JOURNAL, KILL_HOOK, output_lock, path_sha256
from pipeline.writers.zarr import ZarrSink
from world import CELL, CRS, X0, Y1, write_raster

def as_zarr(config: Path, *extra: str) -> Path:
    """`config` writing a Zarr store (and `extra` [output] lines)."""
    config.write_text(config.read_text() + "\n[output]\nformat = \"zarr\"\n" + "".join(f"{x}\n" for x in extra))
    return config


def cog_values(tif: Path) -> np.ndarray:
    """A product GeoTIFF's cells, float nodata as NaN (as the store holds them)."""
    with rasterio.open(tif) as ds:
        a = ds.read(1)
        if a.dtype.kind == "f":
            a[a == ds.nodata] = np.nan
        return a


def grids_in(store: xr.Dataset) -> list[str]:
    """The store's product arrays (not its 0-d grid-mapping variable)."""
    return sorted(name for name, v in store.data_vars.items() if v.ndim == 2)


def ok(result):
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    return result


@pytest.fixture
def zarr_out(world: Path) -> Path:
    """A zarr run of the tiny world, with the default deliverables setting (true)."""
    out = world.parent / "zarr-out"
    pipeline.run(as_zarr(world), out, workers=1)
    return out


def test_zarr_equals_the_cogs_cell_for_cell(zarr_out, tmp_path):
    config = tmp_path / "cog" / "config.toml"
    shutil.copytree(zarr_out.parent, config.parent, ignore=shutil.ignore_patterns("zarr-out"))
    config.write_text(config.read_text().replace('format = "zarr"', 'format = "cog"\ndeliverables = false'))
    cog = tmp_path / "cog-out"
    pipeline.run(config, cog, workers=1)
    ds = xr.open_zarr(zarr_out / "products.zarr")  # plain xarray: NaN where nodata
    names = made_products(zarr_out)
    assert sorted(names) == grids_in(ds)
    for name in names:
        stored, expected = ds[name].values, cog_values(cog / f"{name}.tif")
        if expected.dtype.kind == "f":
            assert stored.dtype == np.float32 and np.array_equal(stored, expected, equal_nan=True), name
        else:  # codes: CF masking makes floats of them; the raw store keeps uint8 and 255
            raw = xr.open_zarr(zarr_out / "products.zarr", mask_and_scale=False)[name].values
            assert raw.dtype == np.uint8 and np.array_equal(raw, expected), name
            assert np.array_equal(np.isnan(stored), expected == 255), name
    assert np.isnan(ds["clearance_sustainability"].values).sum() == 100 * 100 - 2  # CSC: 2 cleared cells only
    cog_record, zarr_record = (json.loads((d / "run.json").read_text()) for d in (cog, zarr_out))
    for name in names:  # the same statistics, from the same chunk parts
        assert zarr_record["products"][name]["mean"] == cog_record["products"][name]["mean"], name
        assert zarr_record["products"][name]["variable"] == name
    assert zarr_record["products"]["risk_class"]["file"] == "products.zarr"


def test_the_mine_record_peak_is_on_its_cell(zarr_out):
    """100 mines in cell (50, 50) (rock, no drone): H_m = 1, S_t = 0.2 → P_c = 0.6, the only maximum."""
    pc = xr.open_zarr(zarr_out / "products.zarr")["contamination_probability"]
    assert np.unravel_index(int(np.nanargmax(pc.values)), pc.shape) == (50, 50)
    assert float(pc.sel(x=X0 + 5050, y=Y1 - 5050)) == pytest.approx(0.6, abs=1e-6)
    assert float(pc.sel(x=X0 + 50, y=Y1 - 50)) == pytest.approx(1.4 / 3, abs=1e-6)  # drone corner, sand


def test_the_store_is_on_the_runs_grid(zarr_out, world):
    grid = load_grid(world.parent / "grid.toml")
    ds = xr.open_zarr(zarr_out / "products.zarr")
    assert ds.odc.geobox == grid.geobox
    assert float(ds.x[0]) == X0 + CELL / 2 and float(ds.y[0]) == Y1 - CELL / 2  # cell centres
    assert ds["contamination_probability"].encoding["chunks"] == (grid.chunk, grid.chunk)
    assert ds["contamination_probability"].encoding["compressors"][0].codec_id == "zstd"
    opened = pipeline.open_products(zarr_out)  # the API reads it as it reads COGs
    assert opened.odc.geobox == grid.geobox and opened["risk_class"].dtype == np.uint8
    assert opened["risk_class"].attrs["nodata"] == 255
    assert opened["contamination_probability"].attrs["units"] == "probability (0–1)"


@pytest.mark.skipif(shutil.which("gdalinfo") is None, reason="GDAL command-line tools not installed")
def test_gdal_reads_crs_and_geotransform(zarr_out):
    def info(name: str) -> dict:
        proc = subprocess.run(["gdalinfo", "-json", f'ZARR:"{zarr_out / "products.zarr"}":/{name}'],
                              capture_output=True, text=True, check=True)
        return json.loads(proc.stdout)

    pc = info("contamination_probability")
    assert pc["geoTransform"] == [X0, CELL, 0.0, Y1, 0.0, -CELL]  # origin and pixel size
    assert pc["size"] == [100, 100]
    assert 'ID["EPSG",32638]' in pc["coordinateSystem"]["wkt"]
    assert pc["bands"][0]["noDataValue"] == "NaN" and pc["bands"][0]["unit"] == "probability (0–1)"
    assert info("risk_class")["bands"][0]["noDataValue"] == 255


def test_run_record_stac_and_skipped_deliverables(zarr_out):
    record = json.loads((zarr_out / "run.json").read_text())
    assert "products.zarr" in record["files"] and not list(zarr_out.glob("*.tif"))
    assert record["files"]["products.zarr"] == path_sha256(zarr_out / "products.zarr")
    assert any(w.startswith('[output] format: "zarr" writes products.zarr only') for w in record["warnings"])
    assert not (zarr_out / "minemap.qgz").exists() and not (zarr_out / "briefing.pdf").exists()
    assert (zarr_out / "priority_zones.gpkg").exists()  # summaries come from the chunk parts
    item = json.loads((zarr_out / "item.json").read_text())
    asset = item["assets"]["products_zarr"]
    assert (asset["href"], asset["type"], asset["roles"]) == ("./products.zarr", "application/vnd+zarr", ["data"])
    assert "risk_class (" in asset["description"]


def test_update_patches_the_store_equal_to_a_fresh_run(zarr_out, world, tmp_path):
    write_raster(world.parent / "drone" / "b.tif", np.full((50, 50), 0.9, np.float32), X0 + 3000, Y1, 20.0, CRS,
                 nodata=-1.0, tags={"TIFFTAG_DATETIME": "2025:01:01 00:00:00"})
    result = pipeline.update(world, zarr_out, workers=1)
    assert result.status == "updated" and result.summary["reason"] is None
    fresh = tmp_path / "fresh"
    pipeline.run(world, fresh, workers=1)
    assert_same_store(zarr_out, fresh)
    assert float(xr.open_zarr(zarr_out / "products.zarr")["contamination_probability"][0, 35]) == \
        pytest.approx((0 + 0.8 + 0.9) / 3)  # the new tile
    assert pipeline.update(world, zarr_out, workers=1).status == "up to date"


def test_update_of_a_few_chunks_of_the_sample(engine_sample, tmp_path):
    """9 chunks: a drone flight over Khojavend rewrites only the chunks under it, in a copy of the store."""
    from test_update import drone_near

    engine_sample.write_text(engine_sample.read_text() + 'format = "zarr"\n')  # into its [output]
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    pipeline.run(engine_sample, out, workers=2)
    drone_near(engine_sample, "2026-01-01_khojavend.tif", 46.95, 39.70, 0.9)
    s = pipeline.update(engine_sample, out, workers=2).summary
    assert s["status"] == "updated" and 1 <= s["chunks_recomputed"] < s["chunks_total"] == 9
    pipeline.run(engine_sample, fresh, workers=2)
    assert_same_store(out, fresh)
    assert (out / "districts.csv").read_text() == (fresh / "districts.csv").read_text()
    record = json.loads((out / "run.json").read_text())
    assert record["files"]["products.zarr"] == path_sha256(out / "products.zarr")


def assert_same_store(out: Path, fresh: Path) -> None:
    """Cell for cell (NaN where NaN) and statistics: the store in `out` is the one in `fresh`."""
    a, b = (xr.open_zarr(d / "products.zarr", mask_and_scale=False) for d in (out, fresh))
    names = made_products(fresh)
    assert sorted(names) == grids_in(a) == grids_in(b)
    for name in names:
        assert np.array_equal(a[name].values, b[name].values, equal_nan=a[name].dtype.kind == "f"), name
        stats = [k for k in b[name].attrs if k.startswith("STATISTICS_")]
        assert stats and all(a[name].attrs[k] == b[name].attrs[k] for k in stats), name


def test_a_failed_run_leaves_the_previous_store(zarr_out, world, monkeypatch):
    before = snapshot(zarr_out)
    monkeypatch.setattr(ZarrSink, "write", lambda self, blocks: (_ for _ in ()).throw(RuntimeError("injected")))
    with pytest.raises(RuntimeError, match="injected"):
        pipeline.run(world, zarr_out, workers=1)
    assert snapshot(zarr_out) == before and no_leftovers(zarr_out)


def killed_run(config: Path, out: Path, renames: int) -> dict:
    """`minemap run` SIGKILLed right after `renames` files were moved into OUT; its journal."""
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", str(config), "--out", str(out), "--quiet",
                           "--workers", "1"], env={**os.environ, KILL_HOOK: str(renames)}, cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return json.loads((out / ".minemap" / JOURNAL).read_text())


def test_publish_killed_after_the_store_moved_is_completed(zarr_out, world):
    old = json.loads((zarr_out / "run.json").read_text())
    journal = killed_run(world, zarr_out, 1)
    assert next(iter(journal["files"])) == "products.zarr"  # the store moved first, run.json still the old one
    assert path_sha256(zarr_out / "products.zarr") == journal["files"]["products.zarr"]
    assert json.loads((zarr_out / "run.json").read_text()) == old
    result = ok(run_cli("run", world, "--out", zarr_out))
    assert "an interrupted publish was completed" in result.output
    record = json.loads((zarr_out / "run.json").read_text())
    for name, sha in record["files"].items():  # one consistent set
        assert path_sha256(zarr_out / name) == sha, name
    assert no_leftovers(zarr_out)


def test_publish_that_cannot_complete_puts_the_old_store_back(zarr_out, world):
    before = {k: v for k, v in snapshot(zarr_out).items() if not k.startswith(".minemap")}
    journal = killed_run(world, zarr_out, 1)
    assert path_sha256(zarr_out / "products.zarr") == journal["files"]["products.zarr"]  # the new store in place
    (zarr_out / journal["staging"] / "run.json").unlink()  # a staged file lost: no way forward
    with output_lock(zarr_out) as notes:  # the next lock holder recovers, and writes nothing else
        assert "the previous files were put back" in notes[0].what
    assert {k: v for k, v in snapshot(zarr_out).items() if not k.startswith(".minemap")} == before


def test_lzw_is_refused_for_zarr(world):
    as_zarr(world, 'compress = "lzw"')
    result = run_cli("validate", world)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "output" in result.output and 'format "zarr" takes compress "zstd"' in result.output


def test_engine_only_zarr_run_writes_no_warning(world):
    engine_only(world)
    world.write_text(world.read_text() + 'format = "zarr"\n')
    out = world.parent / "out"
    record = pipeline.run(world, out, workers=1).record
    assert not any("products.zarr only" in w for w in record["warnings"])
    assert record["changes"]["note"].startswith('"zarr" writes products.zarr only')


def test_evaluate_on_a_zarr_folder_says_it_reads_geotiffs(zarr_out, world):
    from faults import assert_refused
    from shapely.geometry import Point
    from world import write_gpkg

    events = write_gpkg(world.parent / "events.gpkg", [{"outcome": 1, "geometry": Point(X0 + 5050, Y1 - 5050)},
                                                       {"outcome": 0, "geometry": Point(X0 + 150, Y1 - 150)}])
    assert_refused(["evaluate", world, "--events", events, "--out", zarr_out], zarr_out, 2,
                   "contamination_probability.tif", 'evaluate reads GeoTIFFs; run `minemap run` with [output] format')


def test_the_command_names_each_products_variable(world):
    out = world.parent / "out"
    result = ok(run_cli("run", as_zarr(world), "--out", out))
    assert f"{out / 'products.zarr'}:/risk_class  (1 … 4" in result.output
    assert 'warning: [output] format: "zarr" writes products.zarr only;' in result.output


@pytest.mark.slow
def test_a_cluster_run_writes_the_same_store(engine_sample, tmp_path):
    """Chunks computed on Dask distributed worker processes come back to the caller, which writes them."""
    distributed = pytest.importorskip("distributed")
    engine_sample.write_text(engine_sample.read_text() + 'format = "zarr"\n')  # into its [output]
    pipeline.run(engine_sample, tmp_path / "threads", workers=2)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, worker_tasks(cluster.scheduler_address) as tasks:
        pipeline.run(engine_sample, tmp_path / "cluster", scheduler=cluster.scheduler_address)
    # the cluster computed it: every chunk of L (3 × 3 chunks of 512) on one of its two workers
    ran = tasks.chunks("density-L")
    assert sorted(ran) == [(i, j) for i in range(3) for j in range(3)] and set(ran.values()) <= tasks.workers
    assert len(tasks.workers) == 2
    assert "residual_probability" in made_products(tmp_path / "threads")  # the sample releases land
    assert_same_store(tmp_path / "cluster", tmp_path / "threads")
