"""pipeline.open_products: a finished run's products as a lazy, georeferenced xarray.Dataset."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import rasterio

import pipeline
from conftest import engine_only
from pipeline.errors import InputError
from world import CELL, X0, Y1


def test_products_open_lazily_on_the_grid(world):
    out = world.parent / "out"
    pipeline.run(engine_only(world), out, workers=1)
    ds = pipeline.open_products(out)
    assert set(ds.data_vars) == {"contamination_probability", "evidence_count", "risk_class", "environmental_impact",
                                 "recovery_rate", "clearance_sustainability"}
    pc = ds["contamination_probability"]
    assert isinstance(pc.data, da.Array) and pc.shape == (100, 100)
    assert ds.odc.geobox.crs == "EPSG:32638" and ds.odc.geobox.resolution.x == CELL
    # cell (0, 0): centre (X0 + 50, Y1 − 50); H_m 0, S_t 0.8 (sand), V_i 0.6 (drone) → P_c 1.4 / 3
    assert float(pc.x[0]) == X0 + CELL / 2 and float(pc.y[0]) == Y1 - CELL / 2
    assert float(pc.sel(x=X0 + 50, y=Y1 - 50)) == pytest.approx(1.4 / 3, abs=1e-6)
    assert pc.attrs["units"] == "probability (0–1)" and pc.attrs["equation"].startswith("Eq. (2)")
    with rasterio.open(out / "clearance_sustainability.tif") as src:
        csc = src.read(1, masked=True)
    values = ds["clearance_sustainability"].values  # float nodata reads as NaN
    assert np.array_equal(np.isnan(values), csc.mask) and np.allclose(values[~csc.mask], csc.compressed())
    assert ds["evidence_count"].dtype == np.uint8 and ds["evidence_count"].attrs["nodata"] == 255


def test_a_folder_without_a_run_record_is_refused(tmp_path):
    with pytest.raises(InputError) as e:
        pipeline.open_products(tmp_path)
    assert e.value.problems[0].where == str(tmp_path / "run.json")
    assert "not the output folder of a finished minemap run" in e.value.problems[0].what


def test_lazy_products_equal_the_published_ones_and_write_nothing(world, tmp_path, monkeypatch):
    """pipeline.lazy(config): the run's per-chunk jobs, computed for a window only; no file written."""
    from faults import snapshot

    empty = tmp_path / "cwd"
    empty.mkdir()
    monkeypatch.chdir(empty)
    inputs = snapshot(engine_only(world).parent)
    ds = pipeline.lazy(world)
    assert isinstance(ds["contamination_probability"].data, da.Array)
    assert ds.odc.geobox.crs.epsg == 32638 and tuple(ds.odc.geobox.affine)[:6] == (100, 0, X0, 0, -100, Y1)
    assert ds["recovery_rate"].attrs["equation"].startswith("Eq. (4)")
    # the cleared cell (10, 10) and the mines' cell (50, 50), in one window; CSC: 2 cleared cells
    window = {"y": slice(5, 55), "x": slice(5, 55)}
    lazy = {name: ds[name].isel(window).compute().values for name in ds.data_vars}
    assert snapshot(world.parent) == inputs and not any(empty.iterdir())  # nothing written anywhere we can see
    assert float(ds["contamination_probability"][50, 50]) == pytest.approx(0.6, abs=1e-6)  # H_m 1, S_t 0.2 (rock)
    out = tmp_path / "out"
    pipeline.run(world, out, workers=1)
    published = pipeline.open_products(out)
    for name, values in lazy.items():
        expected = published[name].isel(window).values
        assert values.dtype == expected.dtype, name
        assert np.array_equal(values, expected, equal_nan=values.dtype.kind == "f"), name
    assert np.isfinite(lazy["clearance_sustainability"]).sum() == 2
