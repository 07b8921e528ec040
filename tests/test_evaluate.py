"""`minemap evaluate` on the tiny world: hand-computed skill, and clean refusals (#14 §3).

P_c of the world (tests/world.py): H_m = 1 only on cell (50, 50) (100 mines, bandwidth 50 m),
else 0; S_t sand 0.8 (west half) / rock 0.2 (east); V_i 0.6 on rows 0–9, cols 0–9. So
P_c = 0.6 on (50, 50), 0.4667 on the north-west square, 0.4 on the rest of the west, 0.1 east.
"""

import json
from pathlib import Path

import geopandas as gpd
import pytest
from shapely.geometry import Point, box

from faults import assert_refused, run_cli
from world import X0, Y1, cell_box, write_gpkg


def centre(row: int, col: int) -> Point:
    return Point(X0 + 100 * col + 50, Y1 - 100 * row - 50)


POSITIVES = [(50, 50), (5, 5), (20, 80)]  # P_c 0.6, 0.4667, 0.1
NEGATIVES = [(30, 20), (70, 70), (90, 90)]  # P_c 0.4, 0.1, 0.1


@pytest.fixture(scope="module")
def ran(tmp_path_factory) -> tuple[Path, Path]:
    """The world, run once: (config, OUT). Read-only for the tests below."""
    from world import make_world

    root = tmp_path_factory.mktemp("evaluate")
    config = make_world(root / "world")
    out = root / "out"
    result = run_cli("run", config, "--out", out, "--quiet", "--workers", "1")
    assert result.exit_code == 0, result.output
    return config, out


def events(path: Path, rows: list[dict]) -> Path:
    return write_gpkg(path, rows)


def point_events(path: Path, field: str = "outcome") -> Path:
    return events(path, [{field: 1, "geometry": centre(*rc)} for rc in POSITIVES]
                  + [{field: 0, "geometry": centre(*rc)} for rc in NEGATIVES])


def test_evaluate_gives_the_hand_computed_auc_capture_and_class_rates(ran, tmp_path):
    config, out = ran
    ev = point_events(tmp_path / "events.gpkg")
    result = run_cli("evaluate", config, "--events", ev, "--out", out, "--cv-block-km", "2")
    assert result.exit_code == 0, result.output
    r = json.loads((out / "evaluation.json").read_text())
    pc = r["products"]["contamination_probability"]
    # pairs (positive, negative): 0.6 beats 3, 0.4667 beats 3, 0.1 loses to 0.4 and ties two 0.1s → 7/9
    assert pc["auc"] == pytest.approx(7 / 9)
    # riskiest 1 % = 100 cells: (50, 50) and 99 of the 100 tied north-west cells → (1 + 0.99 + 0) / 3;
    # from 5 % to 50 % the two stay in and the east (rock, 0.1: below 5 000 west cells) stays out
    assert pc["capture"]["1%"] == pytest.approx((1 + 0.99) / 3)
    assert [pc["capture"][k] for k in ("5%", "10%", "20%", "50%")] == pytest.approx([2 / 3] * 4)
    rows = {row["class"]: row for row in r["classes"]["rows"]}
    assert rows["low"]["area_km2"] == pytest.approx(49.99) and rows["low"]["positives"] == 1
    assert rows["very high"]["area_km2"] == pytest.approx(0.01) and rows["very high"]["positives"] == 1
    assert rows["medium"]["positives_per_km2"] == 0 and not r["classes"]["rises"]  # 0.02, 0, 1, 100 per km²
    assert r["region_km2"] == pytest.approx(100)
    html = (out / "report.html").read_text()
    assert html.count("Evaluation against known events") == 1 and "evaluation_capture.png" in html
    assert (out / "evaluation_roc.png").stat().st_size > 0 and (out / "evaluation_capture.png").stat().st_size > 0
    # evaluating again replaces the report's section, it does not add a second one
    assert run_cli("evaluate", config, "--events", ev, "--out", out, "--cv-block-km", "2").exit_code == 0
    assert (out / "report.html").read_text().count("Evaluation against known events") == 1


def test_polygon_events_score_their_riskiest_cell(ran, tmp_path):
    config, out = ran
    # a positive polygon over cells (50, 49)–(50, 51): its riskiest cell is (50, 50), P_c 0.6; a negative
    # polygon smaller than a cell and holding no centre scores the cell holding it (east: 0.1)
    ev = events(tmp_path / "polys.gpkg", [
        {"outcome": 1, "geometry": box(X0 + 4900, Y1 - 5100, X0 + 5200, Y1 - 5000)},
        {"outcome": 0, "geometry": box(X0 + 8010, Y1 - 8090, X0 + 8040, Y1 - 8060)},
        {"outcome": 0, "geometry": cell_box(30, 20)}])  # west, 0.4
    result = run_cli("evaluate", config, "--events", ev, "--out", out, "--cv-block-km", "2")
    assert result.exit_code == 0, result.output
    r = json.loads((out / "evaluation.json").read_text())
    assert r["counts"]["polygons"] == 3
    assert r["products"]["contamination_probability"]["auc"] == 1.0  # 0.6 above 0.1 and 0.4


def test_cross_validation_scores_each_setting_on_held_out_blocks(ran, tmp_path):
    config, out = ran
    ev = point_events(tmp_path / "events.gpkg")
    result = run_cli("evaluate", config, "--events", ev, "--out", out, "--cv-block-km", "2",
                     "--bandwidths", "50,3000", "--l-sat", "25,50", "--fit-weights")
    assert result.exit_code == 0, result.output
    cv = json.loads((out / "evaluation.json").read_text())["cross_validation"]
    # 2 km blocks: the six events lie in six different blocks → 5 folds, whole blocks each
    assert cv["blocks"] == 6 and cv["folds"] == 5
    assert [(s["bandwidth_m"], s["L_sat"]) for s in cv["settings"]] == [(50, 25), (50, 50), (3000, 25), (3000, 50)]
    assert cv["best"]["heldout_auc"] == max(s["heldout_auc"] for s in cv["settings"] if s["heldout_auc"] is not None)
    w = cv["weights"]
    assert all(sum(f["weights"]) == pytest.approx(1) and min(f["weights"]) >= 0 for f in w["per_fold"])


def test_density_at_events_equals_the_run_with_that_bandwidth(ran):
    """The CV's L at a cell is the density source's own value there (not a second kernel)."""
    import numpy as np
    import rasterio

    from pipeline.config import load_config
    from pipeline.evaluate.cv import density_at
    from pipeline.grid import load_grid
    from pipeline.sources import load_layer

    config, _ = ran
    cfg = load_config(config)
    grid = load_grid(cfg.resolve(cfg.spec.grid))
    rows, cols = np.array([50, 52, 60, 5]), np.array([50, 55, 50, 5])
    got = density_at(cfg, grid, rows, cols, [300.0])[300.0]
    full = load_layer("L", cfg.spec.inputs["L"].model_copy(update={"bandwidth_m": 300.0}), cfg, grid).array.compute()
    np.testing.assert_allclose(got, full[rows, cols], rtol=1e-6)
    assert got[0] > 0 and got[3] == 0  # the record's cell has mines, a cell 4.5 km away none


@pytest.mark.parametrize("rows, needles", [
    ([{"result": 1}, {"result": 0}], ["no outcome field 'outcome'", "result", "--outcome-field"]),
    ([{"outcome": 1}, {"outcome": 2}], ["must be 1", "first at row 1: 2"]),
    ([{"outcome": 1}, {"outcome": 1}], ["no negative"]),
    ([{"outcome": 0}, {"outcome": 0}], ["no positive"]),
])
def test_bad_events_are_refused_naming_the_file(ran, tmp_path, rows, needles):
    config, out = ran
    ev = events(tmp_path / "bad.gpkg", [{**r, "geometry": centre(10 + i, 10)} for i, r in enumerate(rows)])
    assert_refused(["evaluate", config, "--events", ev, "--out", out], out, 2, "bad.gpkg", *needles)


def test_events_outside_the_region_and_missing_run_are_refused(ran, tmp_path):
    config, out = ran
    ev = events(tmp_path / "far.gpkg", [{"outcome": 1, "geometry": centre(10, 10)},
                                        {"outcome": 0, "geometry": Point(X0 - 500, Y1 - 500)}])
    assert_refused(["evaluate", config, "--events", ev, "--out", out], out, 2, "far.gpkg", "outside the region",
                   "first at row 1")
    wgs = tmp_path / "wgs.gpkg"
    gpd.read_file(point_events(tmp_path / "ok.gpkg")).to_crs(4326).to_file(wgs)  # any CRS is fine
    empty = tmp_path / "empty"
    assert_refused(["evaluate", config, "--events", wgs, "--out", empty], None, 2,
                   "contamination_probability.tif", "minemap run")
    assert not empty.exists() or not any(empty.iterdir())
    assert run_cli("evaluate", config, "--events", wgs, "--out", out, "--cv-block-km", "2").exit_code == 0


def test_extent_limits_the_area_to_where_events_were_surveyed(ran, tmp_path):
    config, out = ran
    west = write_gpkg(tmp_path / "west.gpkg", [{"geometry": box(X0, Y1 - 10_000, X0 + 5000, Y1)}])
    ev = events(tmp_path / "west_events.gpkg", [{"outcome": 1, "geometry": centre(5, 5)},  # 0.4667
                                                {"outcome": 1, "geometry": centre(40, 10)},  # 0.4
                                                {"outcome": 0, "geometry": centre(30, 20)}])  # 0.4
    result = run_cli("evaluate", config, "--events", ev, "--out", out, "--extent", west, "--cv-block-km", "2")
    assert result.exit_code == 0, result.output
    r = json.loads((out / "evaluation.json").read_text())
    assert r["region_km2"] == pytest.approx(50)  # the west half only
    cap = r["products"]["contamination_probability"]["capture"]
    # 1 % = 50 cells, all among the 100 tied 0.4667 cells: half of the first event, none of the second;
    # 5 % = 250 cells: the 100, then 150 of the 4 900 tied 0.4 cells
    assert cap["1%"] == pytest.approx(0.5 / 2)
    assert cap["5%"] == pytest.approx((1 + 150 / 4900) / 2)
    areas = {row["class"]: row["area_km2"] for row in r["classes"]["rows"]}
    assert areas == pytest.approx({"medium": 49.0, "high": 1.0})  # the east's low cells are not counted
    # an event outside the extent is refused
    outside = point_events(tmp_path / "all.gpkg")
    assert_refused(["evaluate", config, "--events", outside, "--out", out, "--extent", west], out, 2,
                   "west.gpkg", "outside this extent")


def test_bad_lists_are_refused_by_the_command_line(ran, tmp_path):
    config, out = ran
    ev = point_events(tmp_path / "events.gpkg")
    assert_refused(["evaluate", config, "--events", ev, "--out", out, "--bandwidths", "500,abc"], out, 2,
                   "comma-separated list")
    assert_refused(["evaluate", config, "--events", ev, "--out", out, "--l-sat", "0,50"], out, 2, "positive numbers")


def test_nearest_record_baseline_beside_the_map(ran, tmp_path):
    """#21 §5: the baseline ranks by distance to the record at cell (50, 50): the positives lie 0,
    63.6 and 42.4 cells away, the negatives 36.1, 28.3 and 56.6; only (50, 50) beats every
    negative, (20, 80) beats (90, 90): 4 of 9 pairs. P_c's 7/9 beats it by more than 0.03."""
    from pipeline.evaluate.baseline import verdict

    config, out = ran
    ev = point_events(tmp_path / "events.gpkg")
    assert run_cli("evaluate", config, "--events", ev, "--out", out, "--cv-block-km", "2").exit_code == 0
    r = json.loads((out / "evaluation.json").read_text())
    assert r["baseline"]["auc"] == pytest.approx(4 / 9)
    assert r["skill"]["beats_baseline"] is True and r["skill"]["banner"] is None
    assert "Beside the nearest-record baseline" in (out / "report.html").read_text()
    assert "class='banner'" not in (out / "report.html").read_text()
    # a map 0.02 above the baseline does not beat it: the banner says so, with both figures
    v = verdict(0.64, 0.62)
    assert v["beats_baseline"] is False and "0.640 against 0.620" in v["banner"]
