"""The same graph on a Dask distributed cluster (worker processes) gives the threaded run's outputs."""

import re

import numpy as np
import pytest
import rasterio
from PIL import Image

from conftest import REPO
from made import made_products, worker_tasks

from pipeline.runner import run


@pytest.mark.slow
def test_local_cluster_with_two_worker_processes_matches_threads(tmp_path, engine_sample):
    distributed = pytest.importorskip("distributed")
    config = engine_sample
    run(config, tmp_path / "threads", workers=2)
    # worker processes, not threads: anything unpicklable in the graph (an open dataset, a lock) fails here
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, worker_tasks(cluster.scheduler_address) as tasks:
        record = run(config, tmp_path / "cluster", scheduler_address=cluster.scheduler_address)
    assert record["grid"]["shape"] == [1461, 1212]
    # the cluster computed it: every chunk of L (3 × 3 chunks of 512) on one of its two workers
    ran = tasks.chunks("density-L")
    assert sorted(ran) == [(i, j) for i in range(3) for j in range(3)] and set(ran.values()) <= tasks.workers
    assert len(tasks.workers) == 2
    names = made_products(tmp_path / "threads")
    assert "released_share" in names and "residual_probability" in names  # the sample releases land
    for name in names:
        with rasterio.open(tmp_path / "threads" / f"{name}.tif") as a, \
                rasterio.open(tmp_path / "cluster" / f"{name}.tif") as b:
            assert np.array_equal(a.read(1), b.read(1)), name
            assert a.tags(1) == b.tags(1), name


def test_worker_processes_match_threads(tmp_path, monkeypatch, engine_sample):
    """Large grids compute their chunks in spawned worker processes that stage their own blocks;
    forced here on the sample, every product, overview, statistic and summary equals threads'."""
    from pipeline.writers import chunks

    config = engine_sample
    run(config, tmp_path / "threads", workers=2)
    spawned = []
    real_spawn = chunks._spawn
    monkeypatch.setattr(chunks, "PROCESS_MIN_CELLS", 0)
    monkeypatch.setattr(chunks, "spawn_is_harmless", lambda: True)  # pytest's main is safe to re-run
    monkeypatch.setattr(chunks, "_spawn", lambda n: spawned.append(n) or real_spawn(n))
    run(config, tmp_path / "processes", workers=2)
    assert spawned == [2]  # started once, early, and used for the chunks
    for name in made_products(tmp_path / "threads"):
        with rasterio.open(tmp_path / "threads" / f"{name}.tif") as a, \
                rasterio.open(tmp_path / "processes" / f"{name}.tif") as b:
            assert np.array_equal(a.read(1), b.read(1)), name
            assert a.overviews(1) == b.overviews(1) == [2, 4]
            small = (a.height // 4, a.width // 4)
            assert np.array_equal(a.read(1, out_shape=small), b.read(1, out_shape=small)), name
            assert a.tags(1) == b.tags(1), name  # statistics
    assert (tmp_path / "threads" / "districts.csv").read_text() == (tmp_path / "processes" / "districts.csv").read_text()


def test_maps_and_district_drawings_drawn_in_worker_processes_equal_threads(tmp_path, monkeypatch, sample_out):
    """A large grid's full run draws its PNG maps and the briefing's district drawings in the idle
    worker processes (beside the pack's words here); forced on the sample, they are the drawings a
    threads-only run makes: the same kept district drawings (named by their content's SHA-256), and
    maps of the same size."""
    from pipeline.writers import chunks

    sent = []
    real_spawn = chunks._spawn

    def spawn(n):
        pool = real_spawn(n)
        submit = pool.submit
        pool.submit = lambda fn, *a, **k: sent.append(getattr(getattr(fn, "func", fn), "__name__", "")) or submit(fn, *a, **k)
        return pool

    monkeypatch.setattr(chunks, "PROCESS_MIN_CELLS", 0)
    monkeypatch.setattr(chunks, "spawn_is_harmless", lambda: True)
    monkeypatch.setattr(chunks, "_spawn", spawn)
    record = run(REPO / "sample_data" / "minemap.toml", tmp_path / "processes", workers=2)
    def drawings(out):  # key (what the drawing shows) → its PDF bytes, but for the time they were made
        return {p.name.split("-")[0]: re.sub(rb"/CreationDate \(D:[^)]*\)", b"", p.read_bytes())
                for p in (out / ".minemap" / "pages").iterdir()}

    here = drawings(sample_out)
    assert len(here) == 9  # one per district of the sample
    assert sent.count("drawing_bytes") == 9 and sent.count("render_map") == len(record["products"])
    assert drawings(tmp_path / "processes") == here
    for name in record["products"]:
        with Image.open(sample_out / f"{name}.png") as a, Image.open(tmp_path / "processes" / f"{name}.png") as b:
            assert a.size == b.size, name


def test_worker_processes_only_where_a_spawn_cannot_rerun_a_script(monkeypatch):
    import sys
    import types

    from pipeline.writers.chunks import spawn_is_harmless

    script = types.ModuleType("__main__")
    script.__file__ = "/home/analyst/make_maps.py"  # might call pipeline.run unguarded
    monkeypatch.setitem(sys.modules, "__main__", script)
    assert not spawn_is_harmless()
    script.__file__ = "/opt/venv/bin/minemap"  # the command
    assert spawn_is_harmless()
    script.__file__ = "/opt/venv/lib/python3.11/site-packages/pipeline/cli/__main__.py"  # python -m pipeline.cli:
    script.__spec__ = types.SimpleNamespace(name="pipeline.cli.__main__")  # guarded, so a spawn re-runs nothing
    assert spawn_is_harmless()
    script.__spec__ = types.SimpleNamespace(name="tools.__main__")  # another package's, maybe unguarded
    script.__file__ = "/home/analyst/tools/__main__.py"
    assert not spawn_is_harmless()
    del script.__file__  # a notebook or the interactive interpreter
    assert spawn_is_harmless()


def test_user_errors_survive_the_trip_back_from_a_worker_process():
    import pickle

    from pipeline.errors import InputError, Problem

    err = InputError("unknown soil class 'peat'", "soil.gpkg")
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is InputError and back.problems == [Problem("soil.gpkg", "unknown soil class 'peat'")]
    assert str(back) == "soil.gpkg: unknown soil class 'peat'"
