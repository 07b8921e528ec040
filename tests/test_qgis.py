"""Products as QGIS users see them: real QGIS 3.22 (Debian's python3-qgis), headless."""

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pyogrio
import pytest

from conftest import REPO
from pipeline.runner import run

QGIS_PYTHON = "/usr/bin/python3"
EXPECTED = {  # renderer written in the .qml, nodata, share of the map the region paints (at least)
    "contamination_probability": ("singlebandpseudocolor", -9999.0, 0.3),
    "evidence_count": ("paletted", 255.0, 0.3),
    "risk_class": ("paletted", 255.0, 0.3),
    "environmental_impact": ("singlebandpseudocolor", -9999.0, 0.3),
    "recovery_rate": ("singlebandpseudocolor", -9999.0, 0.3),
    "clearance_sustainability": ("singlebandpseudocolor", -9999.0, 0.0001),
    "released_share": ("singlebandpseudocolor", -9999.0, 0.3),
    "residual_probability": ("singlebandpseudocolor", -9999.0, 0.3),
}


def qgis_available() -> bool:
    if not Path(QGIS_PYTHON).exists():
        return False
    return subprocess.run([QGIS_PYTHON, "-c", "import qgis.core"], capture_output=True).returncode == 0


pytestmark = [pytest.mark.qgis,
              pytest.mark.skipif(not qgis_available(),
                                 reason="QGIS not installed: run `make system-deps` (Debian: apt-get install qgis python3-qgis)")]


def test_every_product_opens_styled_in_qgis(tmp_path):
    out = tmp_path / "out"
    run(REPO / "sample_data" / "minemap.toml", out, workers=2)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([QGIS_PYTHON, str(Path(__file__).with_name("qgis_check.py")), str(out), *EXPECTED],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for name, (renderer, nodata, share) in EXPECTED.items():
        r = report[name]
        assert r["valid"] and r["style_loaded"], (name, r)
        assert r["renderer"] == renderer, (name, r)  # loadDefaultStyle "succeeds" even on a broken .qml
        assert r["crs"] == "EPSG:32638"
        assert r["has_nodata"] and r["nodata"] == nodata
        assert r["corner_is_nodata"], (name, r)  # bounding-box corner, outside the region
        assert r["painted_share"] > share, (name, r)
        assert r["painted_share"] < 0.95  # outside-region cells stay transparent
    shutil.rmtree(out)  # QGIS may leave .aux.xml statistics files: they go with the temp folder


def open_project(qgz: Path, png: Path) -> dict:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([QGIS_PYTHON, str(Path(__file__).with_name("qgis_check.py")), "--project", str(qgz),
                           str(png)], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_project_opens_with_every_layer_valid_and_moves_with_its_folder(tmp_path):
    # a private copy of the sample, so the whole tree (inputs + OUT) can be moved afterwards
    shutil.copytree(REPO / "sample_data", tmp_path / "a" / "sample_data", ignore=shutil.ignore_patterns("*.py"))
    shutil.copytree(REPO / "grids", tmp_path / "a" / "grids")
    run(tmp_path / "a" / "sample_data" / "minemap.toml", tmp_path / "a" / "out", workers=2)
    assert str(tmp_path) not in zipfile.ZipFile(tmp_path / "a" / "out" / "minemap.qgz").read("minemap.qgs").decode()
    (tmp_path / "a").rename(tmp_path / "moved")

    report = open_project(tmp_path / "moved" / "out" / "minemap.qgz", tmp_path / "project.png")
    assert report["read"] and report["crs"] == "EPSG:32638"
    assert report["groups"] == ["Field tasks", "Briefing", "Evidence", "Products"]
    layers = {entry["name"]: entry for entry in report["layers"]}
    assert all(entry["valid"] for entry in layers.values()), [e for e in layers.values() if not e["valid"]]
    assert all(entry["source"].startswith(str(tmp_path / "moved")) for entry in layers.values())
    # products styled as their .qml, only the risk classes switched on
    products = [e for e in report["layers"] if e["group"] == "Products"]
    assert [Path(e["source"]).stem for e in products] == list(EXPECTED)
    assert [e["renderer"] for e in products] == [r for r, _, _ in EXPECTED.values()]
    assert [e["name"] for e in products if e["visible"]] == ["Contamination risk class"]
    # the briefing layers: zones labelled by rank, districts by name, with all their features
    assert layers["Priority zones"]["labels"] == "rank" and layers["Priority zones"]["features"] > 10
    assert layers["Districts"]["labels"] == "district" and layers["Districts"]["features"] == 9
    # field tasks on top: every task of tasks.gpkg, outlined in its risk class's colour (the classes'
    # palette, over a white casing, inset from the zone outline), labelled with its ID less the UTM zone from 1:66,000 (a 1 km
    # square 15 mm wide) and drawn from 1:250,000 (4 mm), their labels after the zones' ranks
    tasks = layers["Field tasks"]
    frame = pyogrio.read_dataframe(tmp_path / "moved" / "out" / "tasks.gpkg", columns=["task_id", "risk_class"],
                                   read_geometry=False)
    assert tasks["group"] == "Field tasks" and tasks["visible"] and tasks["valid"]
    assert tasks["features"] == len(frame) > 100
    assert tasks["renderer"] == "categorizedSymbol" and tasks["field"] == "risk_class"
    assert set(frame["risk_class"]) <= set(tasks["categories"])
    assert tasks["categories"] == {"high": ["#ffffff", "#e31a1c"], "very high": ["#ffffff", "#49006a"]}
    assert tasks["insets"] == [0.5, 0.5]  # 0.5 mm inside: the zones' black outline stays whole
    assert (tasks["label_scale"], tasks["draw_scale"]) == (66_000, 250_000)
    assert layers["Priority zones"]["label_priority"] > tasks["label_priority"] > layers["Districts"]["label_priority"]
    assert len(tasks["short_ids"]) == len(frame)
    for task_id, short in tasks["short_ids"].items():  # "38TPK6647-1" → "PK6647-1"
        assert task_id.endswith(short) and short[:2].isalpha() and len(task_id) - len(short) == 3, (task_id, short)
    # around zone 1 at 1:50,000 (13 × 11 km, about 120 tasks of ≤ 1 km²) QGIS places task IDs inside the
    # zones beside the zone ranks (zone interiors are obstacles that keep district names off, not task
    # IDs); at 1:100,000 only the zone ranks
    near, far = report["labels_at"]["50000"], report["labels_at"]["100000"]
    assert near.get("Field tasks", 0) > 50 and near.get("Priority zones", 0) >= 3, near
    assert "Field tasks" not in far and far.get("Priority zones", 0) >= near["Priority zones"], far
    evidence = {e["source"].split("|layername=")[-1] if "|layername=" in e["source"] else Path(e["source"]).name
                for e in report["layers"] if e["group"] == "Evidence"}  # vectors from OUT/evidence.gpkg
    assert {"mine_records", "minefields", "cleared_areas", "soil", "2024-05-12_aghdam.tif", "release",
            "survey_extent"} <= evidence
    assert layers["Released land (release)"]["visible"] and layers["Released land (release)"]["features"] > 30
    # the render shows the map: many colours, the region (not white) over half of it
    assert report["render"]["distinct_colours"] > 50 and report["render"]["white_share"] < 0.6
