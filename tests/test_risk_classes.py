"""Risk classes from P_c: thresholds from the config, hand-checked cells, categorical style."""

import xml.etree.ElementTree as ET

import numpy as np
import rasterio
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.products import risk_classes
from pipeline.runner import run


def test_thresholds_split_pc_into_classes():
    p_c = np.array([0.0, 0.29, 0.3, 0.45, 0.59, 0.6, 1.0, np.nan], dtype=np.float32)
    # a value equal to a threshold goes to the class above it; nodata stays 255
    assert risk_classes(p_c, [0.3, 0.45, 0.6]).tolist() == [1, 1, 2, 3, 3, 4, 4, 255]


def test_tiny_world_classes_and_style(world, tmp_path):
    world.write_text(world.read_text().replace("L_sat = 50.0", "L_sat = 50.0\n[products.risk_class]\n"
                                                                "thresholds = [0.42, 0.55]\nnames = ['low', 'high', 'very high']"))
    out = tmp_path / "out"
    run(world, out, workers=1)
    with rasterio.open(out / "risk_class.tif") as ds:
        rc = ds.read(1)
    # P_c by hand (see test_placement): (0, 0) = 0.4667 → high; (10, 10) = 0.4 → low; (50, 50) = 0.6 → very high
    assert (rc[0, 0], rc[10, 10], rc[50, 50]) == (2, 1, 3)
    palette = ET.parse(out / "risk_class.qml").getroot().findall(".//paletteEntry")
    assert [e.get("label") for e in palette] == ["Not assessed: fewer than 2 of: mine records, soil map, drone survey", "low (P_c 0–0.42)",
                                                     "high (P_c 0.42–0.55, or a mine record, minefield or hazard: minemap's rule)",
                                                     "very high (P_c 0.55–1)"]


def test_bad_thresholds_are_a_config_error(world):
    world.write_text(world.read_text().replace("L_sat = 50.0", "L_sat = 50.0\n[products.risk_class]\n"
                                                                "thresholds = [0.6, 0.3]"))
    result = CliRunner().invoke(main, ["validate", str(world)])
    assert result.exit_code == 2 and "products.risk_class" in result.output and "thresholds must increase" in result.output
