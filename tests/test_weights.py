"""`[products.contamination_probability] weights`: the weighted variant of eq. (2) (#14 §3)."""

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio

from faults import assert_refused, run_cli
from pipeline import formulas as f


def arr(*v):
    return np.array(v, dtype=np.float32)


nan = np.nan


def test_weighted_mean_over_the_layers_with_data():
    w = (0.5, 0.3, 0.2)
    # all three: 0.5·0.2 + 0.3·0.6 + 0.2·1 = 0.48; drone missing: (0.1 + 0.18) / 0.8 = 0.35;
    # only V_i: 1.0; nothing: nodata
    out = f.contamination_probability(arr(0.2, 0.2, nan, nan), arr(0.6, 0.6, nan, nan), arr(1.0, nan, 1.0, nan),
                                      weights=w)
    np.testing.assert_allclose(out, [0.48, 0.35, 1.0, nan], rtol=1e-6)
    # a layer of weight 0 alone is no evidence: nodata, not its value
    out = f.contamination_probability(arr(nan), arr(0.9), arr(nan), weights=(1.0, 0.0, 0.0))
    assert np.isnan(out).all()
    # require_all: any missing layer gives nodata, whatever its weight
    out = f.contamination_probability(arr(0.2, 0.2), arr(0.6, 0.6), arr(1.0, nan), require_all=True, weights=w)
    np.testing.assert_allclose(out, [0.48, nan], rtol=1e-6)


def test_equal_weights_are_the_paper_equation_exactly():
    h, s, v = arr(0.3, 0.1, nan), arr(0.6, nan, 0.2), arr(0.9, 0.5, nan)
    np.testing.assert_array_equal(f.contamination_probability(h, s, v, weights=(1 / 3, 1 / 3, 1 / 3)),
                                  f.contamination_probability(h, s, v))


@pytest.mark.parametrize("weights, needle", [
    ("[0.5, 0.5, 0.5]", "summing to 1"), ("[1.2, -0.2, 0.0]", "non-negative"), ("[0.5, 0.5]", "weights")])
def test_bad_weights_are_a_config_error_naming_the_key(world: Path, weights: str, needle: str):
    text = world.read_text().replace("L_sat = 50.0", f"L_sat = 50.0\nweights = {weights}")
    world.write_text(text)
    assert_refused(["validate", world], None, 2, "products.contamination_probability.weights", needle)


def test_other_weights_are_named_the_weighted_variant_in_tags(world: Path, tmp_path: Path):
    world.write_text(world.read_text().replace("L_sat = 50.0", "L_sat = 50.0\nweights = [0.5, 0.25, 0.25]"))
    out = tmp_path / "out"
    result = run_cli("run", world, "--out", out, "--quiet", "--workers", "1")
    assert result.exit_code == 0, result.output
    with rasterio.open(out / "contamination_probability.tif") as ds:
        tag = ds.tags()["MINEMAP_EQUATION"]
        pc = ds.read(1)
    assert tag.startswith("weighted variant of eq. (2)") and "0.5·H_m + 0.25·S_t + 0.25·V_i" in tag
    # cell (50, 50): H_m = 1 (100 mines in 0.01 km² ≫ L_sat), rock S_t = 0.2 (east half), no drone
    # → (0.5·1 + 0.25·0.2) / 0.75
    assert pc[50, 50] == pytest.approx((0.5 * 1 + 0.25 * 0.2) / 0.75, rel=1e-6)
    # cell (5, 5): H_m = 0, sand 0.8, drone 0.6 → 0.25·0.8 + 0.25·0.6 = 0.35
    assert pc[5, 5] == pytest.approx(0.35, rel=1e-6)
    html = (out / "report.html").read_text()
    assert "Contamination probability (P_c), weighted variant of eq. (2)</strong>" in html  # the map's title
    assert "0.5·H_m + 0.25·S_t + 0.25·V_i" in html  # its caption
    run_record = json.loads((out / "run.json").read_text())
    assert run_record["products"]["contamination_probability"]["equation"] == tag
