"""engine/deliver: what a run writes besides the product files; `[output] deliverables = false`."""

from __future__ import annotations

import json

import pytest
import rasterio

from conftest import engine_only
from pipeline.runner import run

PRODUCTS = ["contamination_probability", "evidence_count", "risk_class", "environmental_impact", "recovery_rate",
            "clearance_sustainability"]


def test_no_deliverables_writes_products_styles_and_record_only(world):
    out = world.parent / "out"
    run(engine_only(world), out, workers=1)
    record = json.loads((out / "run.json").read_text())
    # the catalogue stays: the STAC item, and its copy in history/ linked from catalog.json
    history = [f"history/{p.name}" for p in (out / "history").iterdir()]
    assert len(history) == 1
    tasks = {f"tasks.{e}" for e in ("gpkg", "csv", "geojson", "kml", "gpx")}
    expected = {f"{n}.{ext}" for n in PRODUCTS for ext in ("tif", "qml")} | {"item.json", "priority_zones.gpkg",
                                                                           "catalog.json", *history, *tasks}
    assert set(record["files"]) == expected
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == \
        sorted({name.split("/")[0] for name in expected} | {"run.json"})
    assert record["config"]["settings"]["output"]["deliverables"] is False
    with rasterio.open(out / "contamination_probability.tif") as ds:
        # cell (0, 0): H_m 0 (no mines near), S_t 0.8 (sand), V_i 0.6 (drone) → P_c 1.4 / 3
        assert ds.read(1)[0, 0] == pytest.approx(1.4 / 3, abs=1e-6)
    item = json.loads((out / "item.json").read_text())
    assert "report.html" not in item["assets"] and "minemap.qgz" not in item["assets"]


def test_deliverables_are_on_by_default(world):
    out = world.parent / "out"
    run(world, out, workers=1)
    files = set(json.loads((out / "run.json").read_text())["files"])
    assert {"report.html", "briefing.pdf", "minemap.qgz", "contamination_probability.png"} <= files
