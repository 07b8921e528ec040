"""pipeline/config.py: defaults, bad keys and out-of-range values named by file and key, paths resolved."""

from __future__ import annotations

import pytest

from pipeline.config import check_config, load_config
from pipeline.errors import ConfigError, Problem

from world import make_world


@pytest.fixture
def config(tmp_path):
    return make_world(tmp_path / "world", drone=False)


def test_defaults_are_the_papers_and_the_documented_ones(config):
    cfg, problems, refused = check_config(config)
    assert problems == [] and refused == set()
    p = cfg.spec.products
    assert p.contamination_probability.weights == (1 / 3, 1 / 3, 1 / 3) and p.contamination_probability.paper_weights
    assert p.contamination_probability.require_all is False and p.contamination_probability.range is None
    assert (p.risk_class.thresholds, p.risk_class.names, p.risk_class.min_evidence) == (
        [0.3, 0.45, 0.6], ["low", "medium", "high", "very high"], 2)
    assert (p.priority_zones.from_class, p.priority_zones.min_area_km2) == ("high", 0.0)
    o = cfg.spec.output
    assert (o.compress, o.level, o.dpi, o.deliverables, o.bundle_rasters, o.keep_history) == ("zstd", 1, 200, True,
                                                                                               False, 10)
    drone = cfg.spec.inputs["V_i"]
    assert (drone.band, drone.resampling, drone.scale, drone.time_tag) == (1, "auto", "auto", "TIFFTAG_DATETIME")
    assert cfg.spec.districts is None and cfg.spec.release is None and cfg.spec.label is None
    # paths are relative to the config's folder, wherever minemap is started from
    assert cfg.resolve(cfg.spec.grid) == (config.parent / "grid.toml").resolve()


def test_a_bad_key_is_named_and_the_other_inputs_kept(config):
    config.write_text(config.read_text().replace("bandwidth_m = 50", 'bandwidth_m = 50\ncolour = "red"'))
    cfg, problems, refused = check_config(config)
    assert problems == [Problem(f"{config}: inputs.L.density.colour", "Extra inputs are not permitted")]
    assert refused == {"L"}
    assert "L" not in cfg.spec.inputs and "S_t" in cfg.spec.inputs  # one bad table hides no other's problems


def test_an_unknown_variable_is_named_with_the_known_ones(config):
    config.write_text(config.read_text() + '[inputs.Q]\nkind = "constant"\nvalue = 1\n')
    _, problems, refused = check_config(config)
    assert [p.where for p in problems] == [f"{config}: inputs.Q"] and refused == {"Q"}
    assert problems[0].what.startswith("Input should be 'H_m', 'S_t', 'V_i', 'L',")


@pytest.mark.parametrize("edit, key, what", [
    (("L_sat = 50.0", "L_sat = 0"), "products.contamination_probability.L_sat", "Input should be greater than 0"),
    (("L_sat = 50.0", "L_sat = 50.0\nweights = [0.5, 0.5, 0.5]"), "products.contamination_probability.weights",
     "weights must be 3 non-negative numbers summing to 1 (w_H, w_S, w_V), got [0.5, 0.5, 0.5]"),
    (("L_sat = 50.0", "L_sat = 50.0\nrange = [1, 0]"), "products.contamination_probability.range",
     "range must be [lo, hi] with finite lo < hi, got [1.0, 0.0]"),
    (("[inputs.L]", "[products.risk_class]\nthresholds = [0.6, 0.3]\nnames = ['a', 'b', 'c']\n[inputs.L]"),
     "products.risk_class", "thresholds must increase"),
    (("[inputs.L]", "[output]\nlevel = 23\n[inputs.L]"), "output.level", "Input should be less than or equal to 22"),
])
def test_a_value_out_of_range_is_refused_naming_its_key(config, edit, key, what):
    config.write_text(config.read_text().replace(*edit))
    _, problems, refused = check_config(config)
    assert problems == [Problem(f"{config}: {key}", what)]
    assert refused == {key.split(".")[0]}  # the table is left at its defaults only to list other problems
    with pytest.raises(ConfigError) as e:
        load_config(config)
    assert e.value.problems == problems and e.value.exit_code == 2


def test_a_missing_or_unparsable_config_names_the_file(tmp_path):
    with pytest.raises(ConfigError) as e:
        check_config(tmp_path / "nope.toml")
    assert [str(p) for p in e.value.problems] == [f"{tmp_path / 'nope.toml'}: config file not found"]
    bad = tmp_path / "bad.toml"
    bad.write_text('grid = "g.toml"\n[inputs.L\n')
    with pytest.raises(ConfigError) as e:
        check_config(bad)
    (problem,) = e.value.problems
    assert problem.where == str(bad) and problem.what.startswith("not a valid TOML file: ")
