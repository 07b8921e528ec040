"""`minemap calibrate` (#21) on a synthetic world where the right kernel bandwidth is known.

10 × 10 km at 100 m (tests/world.py's square). Records: a cluster C of 20 mines at (1, 5) km and
a lone record S at (8, 5) km (x east, y north of the square's south-west corner). Positives lie
3 km from C (over 6 km from S); negatives 1 km from S (over 6 km from C). So:
- bandwidth 2 km: positives get no density, negatives some → AUC 0;
- bandwidth 5 km: positives get C's 20 mines at 3 km, (1 − 0.36)² × 20 = 8.2 kernel units, and
  negatives S's one mine at 1 km, (1 − 0.04)² = 0.92 → AUC 1;
- nearest-record baseline and any distance decay: negatives are nearer (1 km < 3 km) → AUC 0.
P_c = H_m (weights [1, 0, 0], S_t and V_i constants), so only the form of H_m matters.
"""

import math
import tomllib
from pathlib import Path

import numpy as np
import pytest
from shapely.geometry import Point, box

from faults import assert_refused, run_cli
from world import X0, Y0, X1, Y1, write_gpkg

C, S = (X0 + 1000, Y0 + 5000), (X0 + 8000, Y0 + 5000)
POSITIVE = [(C[0] + 3000 * math.cos(a), C[1] + 3000 * math.sin(a)) for a in np.radians([-80, -40, 0, 40, 80])]
NEGATIVE = [(S[0] + 1000 * math.cos(a), S[1] + 1000 * math.sin(a)) for a in np.radians([0, 72, 144, 216, 288])]

CONFIG = """grid = "grid.toml"
label = "synthetic calibration world"
[products.contamination_probability]
L_sat = 50.0
weights = [1.0, 0.0, 0.0]
[products.environmental_impact]
enabled = false
[products.recovery_rate]
enabled = false
[products.clearance_sustainability]
enabled = false
[inputs.L]
kind = "density"
path = "mines.gpkg"
bandwidth_m = 1000
[inputs.S_t]
kind = "constant"
value = 0.0
[inputs.V_i]
kind = "constant"
value = 0.0
"""


@pytest.fixture
def world(tmp_path) -> Path:
    write_gpkg(tmp_path / "region.gpkg", [{"name": "square", "geometry": box(X0, Y0, X1, Y1)}])
    write_gpkg(tmp_path / "mines.gpkg", [{"count": 20, "geometry": Point(*C)}, {"count": 1, "geometry": Point(*S)}])
    (tmp_path / "grid.toml").write_text('name = "square"\ncrs = "EPSG:32638"\nresolution = 100\nchunk = 512\n'
                                        '[region]\npath = "region.gpkg"\n')
    (tmp_path / "config.toml").write_text(CONFIG)
    write_gpkg(tmp_path / "events.gpkg", [{"outcome": 1, "geometry": Point(*p)} for p in POSITIVE]
               + [{"outcome": 0, "geometry": Point(*p)} for p in NEGATIVE])
    return tmp_path


def calibrate(world: Path, *extra) -> tuple[dict, str]:
    result = run_cli("calibrate", world / "config.toml", "--events", world / "events.gpkg", "--cv-block-km", "2",
                     "--bandwidths", "2000,5000", "--decays", "1000,3000", "--write", world / "fitted.toml", *extra)
    assert result.exit_code == 0, result.output
    return tomllib.loads((world / "fitted.toml").read_text())["model"], result.output


def test_calibrate_picks_the_bandwidth_that_ranks_the_events(world):
    model, output = calibrate(world)
    assert model["h_m_form"] == "kernel" and model["bandwidth_m"] == 5000 and model["weights"] == [1, 0, 0]
    assert model["L_sat"] == 100  # the L_sats tie (no cell near 25 mines/km²): the least saturating is kept
    cv = model["cv"]
    assert cv["heldout_auc"] == 1.0 and cv["baseline_auc"] == 0.0 and cv["beats_baseline"]
    # 2 km blocks: the positives fall in 5 different ones, the negatives (within 1 km of S) in 2
    assert cv["blocks"] == 7 and cv["folds"] == 5
    ev = model["events"][0]
    assert (ev["count"], ev["positives"], ev["negatives"], ev["path"]) == (10, 5, 5, "events.gpkg")
    # the calibration is monotone and separates the classes: 0 below the positives, 1 at them
    x, p = model["calibration_scores"], model["calibration_probability"]
    assert p[0] == 0 and p[-1] == 1 and all(b >= a for a, b in zip(p, p[1:]))
    assert "held-out (nested) AUC 1.000 pooled" in output and "baseline 0.000 pooled" in output
    # the fitted config is the original text plus [model]
    text = (world / "fitted.toml").read_text()
    assert text.startswith(CONFIG.rstrip("\n")) and text.count("[model]") == 1


def test_calibrating_a_fitted_config_replaces_its_model(world):
    calibrate(world)
    fitted = world / "fitted.toml"
    result = run_cli("calibrate", fitted, "--events", world / "events.gpkg", "--cv-block-km", "2",
                     "--bandwidths", "2000,5000", "--write", world / "again.toml")
    # the config parser must accept [model] (#21 step 3); until then this is refused as an unknown key
    text = (world / "again.toml").read_text() if result.exit_code == 0 else None
    if text is not None:
        assert text.count("[model]") == 1 and text.count("[model.cv]") == 1


@pytest.mark.parametrize("rows, needle", [
    ([], "holds no features: 0 events"),
    ([(1, (X0 + 500, Y0 + 500)), (1, (X0 + 9500, Y0 + 9500))], "no negative"),
    ([(0, (X0 + 500, Y0 + 500)), (0, (X0 + 9500, Y0 + 9500))], "no positive"),
    ([(1, (X0 + 500, Y0 + 500)), (0, (X1 + 5000, Y0 + 500))], "1 of its events lie outside the region"),
])
def test_refusals_name_the_file_and_write_nothing(world, rows, needle):
    bad = world / "bad.gpkg"
    if rows:
        write_gpkg(bad, [{"outcome": y, "geometry": Point(*p)} for y, p in rows])
    else:
        import geopandas as gpd
        gpd.GeoDataFrame({"outcome": []}, geometry=[], crs="EPSG:32638").to_file(bad, driver="GPKG")
    assert_refused(["calibrate", world / "config.toml", "--events", bad, "--write", world / "fitted.toml"],
                   None, 2, "bad.gpkg", needle)
    assert not (world / "fitted.toml").exists()


def test_fitted_config_beside_the_config_only(world, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "fitted.toml"
    assert_refused(["calibrate", world / "config.toml", "--events", world / "events.gpkg", "--write", elsewhere],
                   None, 2, "beside the config")
    assert not elsewhere.exists()


def test_run_applies_the_fitted_model_and_warns_when_the_events_change(world):
    """The fitted config runs: its first line says so, L is the 5 km kernel, calibrated_probability
    is P_c through the knots, run.json and the report carry the model; a changed events file is warned of."""
    import json

    import rasterio

    from pipeline.calibrate.isotonic import apply

    model, _ = calibrate(world)
    out = world / "out"
    result = run_cli("run", world / "fitted.toml", "--out", out, "--workers", "1")
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert "applying the fitted model" in first and "H_m kernel 5 km" in first
    with rasterio.open(out / "contamination_probability.tif") as a, rasterio.open(out / "calibrated_probability.tif") as b:
        pc, cal = a.read(1), b.read(1)
    inside = pc != -9999
    want = apply(np.array(model["calibration_scores"]), np.array(model["calibration_probability"]), pc[inside])
    np.testing.assert_allclose(cal[inside], want, atol=1e-6)
    assert cal[inside].max() == 1.0 and cal[inside].min() == 0.0  # the positives' P_c and above, the negatives'
    record = json.loads((out / "run.json").read_text())
    assert record["model"]["bandwidth_m"] == 5000 and record["model"]["banner"] is None
    assert record["config"]["settings"]["inputs"]["L"]["bandwidth_m"] == 5000  # the config said 1000
    assert "Fitted model: skill beside the nearest-record baseline" in (out / "report.html").read_text()
    # evaluating the fitted run on the events it was fitted on says that AUC is not held out
    result = run_cli("evaluate", world / "fitted.toml", "--events", world / "events.gpkg", "--out", out,
                     "--cv-block-km", "2")
    assert result.exit_code == 0 and "fitted on these events: the AUC above is not held out" in result.output
    # the events change: the next run still runs, and says its model describes other events
    write_gpkg(world / "events.gpkg", [{"outcome": 1, "geometry": Point(*POSITIVE[0])},
                                       {"outcome": 0, "geometry": Point(*NEGATIVE[0])}])
    result = run_cli("run", world / "fitted.toml", "--out", out, "--workers", "1")
    assert result.exit_code == 0 and "events.gpkg: changed since the [model] was fitted" in result.output


def test_a_model_that_does_not_beat_the_baseline_says_so_on_the_cover_and_report(world):
    """Swap the classes: the negatives now lie 3 km from C, the positives 1 km from S. Nearest
    record ranks them perfectly (AUC 1); the kernels do too at 2 km, but not by 0.03 more."""
    write_gpkg(world / "events.gpkg", [{"outcome": 0, "geometry": Point(*p)} for p in POSITIVE]
               + [{"outcome": 1, "geometry": Point(*p)} for p in NEGATIVE])
    model, output = calibrate(world)
    assert model["cv"]["baseline_auc"] == 1.0 and not model["cv"]["beats_baseline"]
    assert "does not beat the nearest-record baseline" in output
    out = world / "out"
    assert run_cli("run", world / "fitted.toml", "--out", out, "--workers", "1").exit_code == 0
    html = (out / "report.html").read_text()
    assert html.index("class='banner'") < html.index("<figure")  # under the title, before the maps
    import subprocess
    text = subprocess.run(["pdftotext", "-l", "1", str(out / "briefing.pdf"), "-"], capture_output=True, text=True)
    if text.returncode == 0:
        assert "does not beat the nearest-record" in text.stdout.replace("\n", " ")


def test_distance_decay_h_m_by_hand():
    from affine import Affine
    from odc.geo.geobox import GeoBox

    from pipeline.calibrate.apply import DistanceJob

    gbox = GeoBox((3, 12), Affine(100.0, 0, 0.0, 0, -100.0, 300.0), "EPSG:32638")
    job = DistanceJob(np.array([[50.0, 250.0]]), np.empty(0, object), gbox, 1000.0)  # the record: cell (0, 0)'s centre
    h = job()
    assert h[0, 0] == 1.0 and h[0, 10] == pytest.approx(math.exp(-1), rel=1e-6)  # 1 km east
    assert h[2, 0] == pytest.approx(math.exp(-0.2), rel=1e-6)  # 200 m south


def test_classes_by_capture_hold_the_riskiest_shares_of_the_area(world):
    """by = "capture": the thresholds are P_c at the riskiest 20 / 10 / 5 % of the 10 000 cells,
    so the classes hold 8 000, 1 000, 500 and 500 cells (the lone record's cell, lifted to "high"
    as direct evidence, may move one); without a [model] the setting is refused."""
    import rasterio

    model, _ = calibrate(world)
    assert model["capture_shares"] == [0.2, 0.1, 0.05] and len(model["capture_thresholds"]) == 3
    shares = [c["area_share"] for c in model["capture_classes"]]
    assert shares == pytest.approx([0.8, 0.1, 0.05, 0.05], abs=1e-3)
    # the negatives (S's one mine) are all in "the rest"; the positives, 3 km from C's 20 mines, at the edge
    # of the riskiest 20 % (C's side of the square within ~3 km of it is about a fifth of its area)
    assert model["capture_classes"][0]["negatives_share"] == 1.0
    assert sum(c["positives_share"] for c in model["capture_classes"][:2]) == pytest.approx(1.0)
    text = (world / "fitted.toml").read_text().replace("[inputs.L]", '[products.risk_class]\nby = "capture"\n\n[inputs.L]', 1)
    (world / "capture.toml").write_text(text)
    out = world / "out"
    result = run_cli("run", world / "capture.toml", "--out", out, "--workers", "1", "--quiet")
    assert result.exit_code == 0, result.output
    with rasterio.open(out / "risk_class.tif") as ds:
        codes, counts = np.unique(ds.read(1), return_counts=True)
    got = dict(zip(codes.tolist(), counts.tolist()))
    # within 10 cells: the run sums the kernel in float32, calibrate in float64, so cells within a
    # rounding of a threshold may fall either side
    assert [abs(got[k] - n) <= 10 for k, n in ((1, 8000), (2, 1000), (3, 500), (4, 500))] == [True] * 4
    (world / "nomodel.toml").write_text(CONFIG.replace("[inputs.L]", '[products.risk_class]\nby = "capture"\n\n[inputs.L]', 1))
    assert_refused(["run", world / "nomodel.toml", "--out", world / "out2"], None, 2, "products.risk_class.by",
                   "needs a [model]")


def test_labels_from_release_finds_and_accidents(world):
    """IMAS land release: cleared with finds → 1, cleared with none → 0, cancelled → 0, 'planned'
    left out; accidents → 1. Counted per file in [[model.events]]."""
    from shapely.geometry import box as square

    def near(p, r=150):
        return square(p[0] - r, p[1] - r, p[0] + r, p[1] + r)

    write_gpkg(world / "release.gpkg", [
        {"status": "cleared", "finds": 3, "geometry": near(POSITIVE[0])},
        {"status": "cleared", "finds": 0, "geometry": near(NEGATIVE[0])},
        {"status": "cancelled", "finds": 0, "geometry": near(NEGATIVE[1])},
        {"status": "planned", "finds": 0, "geometry": near(NEGATIVE[2])},
    ])
    write_gpkg(world / "accidents.gpkg", [{"geometry": Point(*POSITIVE[1])}, {"geometry": Point(*POSITIVE[2])}])
    config = world / "config.toml"
    config.write_text(CONFIG + '[release]\npath = "release.gpkg"\nignore = ["planned"]\n')
    result = run_cli("calibrate", config, "--events", world / "events.gpkg", "--finds-field", "finds",
                     "--accidents", world / "accidents.gpkg", "--cv-block-km", "2", "--bandwidths", "2000,5000",
                     "--write", world / "fitted.toml")
    assert result.exit_code == 0, result.output
    files = {e["role"]: e for e in tomllib.loads((world / "fitted.toml").read_text())["model"]["events"]}
    assert (files["release"]["count"], files["release"]["positives"], files["release"]["negatives"]) == (3, 1, 2)
    assert (files["accidents"]["count"], files["accidents"]["positives"]) == (2, 2)
    assert files["events"]["count"] == 10
    # finds that are not counts on cleared land are refused, naming the file
    write_gpkg(world / "release.gpkg", [{"status": "cleared", "finds": -1, "geometry": near(POSITIVE[0])}])
    assert_refused(["calibrate", config, "--events", world / "events.gpkg", "--finds-field", "finds",
                    "--write", world / "fitted.toml"], None, 2, "release.gpkg", "must be a count")


def test_density_outside_its_extent_is_unknown_where_no_record_reaches(world):
    """#20: beyond the records' extent, L is the records' own density where one reaches, else
    unknown; calibrate reads L the same way (the 2 km kernel reaches the negatives from S)."""
    import numpy as np

    from pipeline.calibrate.evidence import evidence_at, records_of
    from pipeline.config import load_config
    from pipeline.grid import load_grid

    write_gpkg(world / "extent.gpkg", [{"geometry": box(X0, Y0, X0 + 5000, Y1)}])  # the west half only
    (world / "config.toml").write_text(CONFIG.replace('bandwidth_m = 1000', 'bandwidth_m = 1000\nextent = "extent.gpkg"'))
    cfg = load_config(world / "config.toml")
    grid = load_grid(cfg.resolve(cfg.spec.grid))
    # cells: near S (east, outside, reached at 2 km), far east corner (outside, not reached), 5.7 km from C
    # (inside the extent, not reached: a known 0)
    rows, cols = np.array([50, 5, 5]), np.array([85, 95, 45])
    L = evidence_at(cfg, grid, rows, cols, [2000.0], records_of(cfg, grid)).L[2000.0]
    assert L[0] > 0 and np.isnan(L[1]) and L[2] == 0


def test_distance_decay_is_fitted_and_run_when_nearness_ranks_best(world):
    """Swapped classes and only a 5 km kernel on offer: the kernel ranks the events backwards (C's
    20 mines reach the negatives), nearness to a record ranks them all: the distance form wins
    (λ 1 km, the first of equals), and the run's P_c is exp(−d/1 km). At the cell of the positive
    1 km east of S, (90, 50): its centre lies 1 050 m east and 50 m south of S, d = 1 051.2 m."""
    import rasterio

    write_gpkg(world / "events.gpkg", [{"outcome": 0, "geometry": Point(*p)} for p in POSITIVE]
               + [{"outcome": 1, "geometry": Point(*p)} for p in NEGATIVE])
    result = run_cli("calibrate", world / "config.toml", "--events", world / "events.gpkg", "--cv-block-km", "2",
                     "--bandwidths", "5000", "--decays", "1000,3000", "--write", world / "fitted.toml")
    assert result.exit_code == 0, result.output
    model = tomllib.loads((world / "fitted.toml").read_text())["model"]
    assert model["h_m_form"] == "distance" and model["decay_m"] == 1000 and "bandwidth_m" not in model
    out = world / "out"
    result = run_cli("run", world / "fitted.toml", "--out", out, "--workers", "1")
    assert result.exit_code == 0 and "exp(−d/1 km)" in result.output.splitlines()[0]
    with rasterio.open(out / "contamination_probability.tif") as ds:
        pc = ds.read(1)
    assert pc[50, 90] == pytest.approx(math.exp(-math.hypot(1050, 50) / 1000), rel=1e-5)
    assert pc[49, 80] == pytest.approx(math.exp(-math.hypot(50, 50) / 1000), rel=1e-5)  # a cell S is a corner of


def test_update_after_a_new_fit_recomputes_the_calibrated_probability(world):
    """The [model]'s calibration decides calibrated_probability's cells: a new fit with the same
    bandwidth, L_sat and weights but other knots is not 'up to date'."""
    import json

    calibrate(world)
    out = world / "out"
    assert run_cli("update", world / "fitted.toml", "--out", out, "--workers", "1", "--quiet").exit_code == 0
    text = (world / "fitted.toml").read_text()
    model = tomllib.loads(text)["model"]
    knots = model["calibration_probability"]
    halved = "calibration_probability = [" + ", ".join(repr(p / 2) for p in knots) + "]"
    (world / "fitted.toml").write_text(text.replace("calibration_probability = [" + ", ".join(repr(float(p)) for p in knots)
                                                    + "]", halved))
    assert halved in (world / "fitted.toml").read_text()
    result = run_cli("update", world / "fitted.toml", "--out", out, "--workers", "1", "--json", "--quiet")
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary["status"] != "up to date" and summary["chunks_recomputed"] == summary["chunks_total"] == 1
