"""The Python API: pipeline.run / update / validate return a Result; user errors raise MinemapError."""

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
