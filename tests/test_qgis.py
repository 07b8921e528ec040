"""Products as QGIS users see them: real QGIS 3.22 (Debian's python3-qgis), headless."""

import json
import os
import shutil
import subprocess
from pathlib import Path

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
