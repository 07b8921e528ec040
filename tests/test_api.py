"""The Python API: pipeline.run / update / validate return a Result; user errors raise MinemapError."""

import importlib
import json

import pytest

import pipeline
from pipeline.errors import InputError


def test_run_update_validate(world):
    out = world.parent / "out"
    result = pipeline.run(world, out, workers=1)
    assert result.status == "complete"
    assert result.products["contamination_probability"] == out / "contamination_probability.tif"
    assert result.products["contamination_probability"].exists()
    assert result.record == json.loads((out / "run.json").read_text())
    again = pipeline.update(world, out, workers=1)
    assert again.status == "up to date" and again.summary["chunks_recomputed"] == 0
    assert again.record["created_utc"] == result.record["created_utc"]  # nothing was rewritten
    checked = pipeline.validate(world)
    assert checked.status == "valid" and checked.out is None
    assert checked.record["grid"]["shape"] == [100, 100]


def test_validate_raises_with_every_problem(world):
    (world.parent / "mines.gpkg").unlink()
    with pytest.raises(InputError) as e:
        pipeline.validate(world)
    assert any("mines.gpkg" in p.where and "file not found" in p.what for p in e.value.problems)
    assert e.value.exit_code == 2


def test_unknown_attribute():
    with pytest.raises(AttributeError):
        pipeline.nothing_here  # noqa: B018


def test_evaluate_returns_the_evaluation(world, tmp_path):
    # P_c 0.6 on cell (50, 50), 0.4 on (30, 20), 0.1 on (90, 90) (see test_evaluate): one mine event
    # on the riskiest cell, two clear ones below it → AUC 1
    from shapely.geometry import Point

    from world import X0, Y1, write_gpkg

    out = world.parent / "out"
    pipeline.run(world, out, workers=1)
    events = write_gpkg(tmp_path / "events.gpkg", [
        {"outcome": o, "geometry": Point(X0 + 100 * c + 50, Y1 - 100 * r - 50)}
        for o, (r, c) in [(1, (50, 50)), (0, (30, 20)), (0, (90, 90))]])
    result = pipeline.evaluate(world, events, out, cv_block_km=2)
    assert result.status == "evaluated" and result.out == out
    written = json.loads((out / "evaluation.json").read_text())
    assert result.record["created_utc"] == written["created_utc"] and result.record["counts"] == written["counts"]
    assert result.record["products"]["contamination_probability"]["auc"] == pytest.approx(1.0)
    assert result.products["contamination_probability"] == out / "contamination_probability.tif"
    importlib.import_module("pipeline.evaluate.metrics")  # the subpackage imported: still callable as the API
    assert pipeline.evaluate(world, events, out, cv_block_km=2).status == "evaluated"
