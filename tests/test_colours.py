"""Colours people can read (#13 item 3): colour-vision-safe palettes, fixed ranges from the config
applied identically in the .qml, the PNG map and the QGIS project, and legends titled in words."""

import itertools
import json
import os
import re
import subprocess
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from matplotlib.colors import to_hex

from faults import assert_refused
from pipeline.config import load_config
from pipeline.products import PRODUCTS, class_marks, product_legend
from pipeline.runner import run
from pipeline.writers.maps import _colours, coloured
from pipeline.writers.styles import INSUFFICIENT_COLOUR, YL_OR_RD, Stop, qml, risk_class_legend, spread
from test_maps import hex_rgb, near, rgb, span
from world import write_raster

# Machado, Oliveira & Fernandes (2009), deuteranopia at severity 1.0, on linear RGB
DEUTERANOPIA = np.array([[0.367322, 0.860646, -0.227968],
                         [0.280085, 0.672501, 0.047413],
                         [-0.011820, 0.042940, 0.968881]])
SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])
D65 = np.array([0.95047, 1.0, 1.08883])


def lab(colours: list[str], deuteranope: bool = True) -> np.ndarray:
    """CIELAB (D65) of hex colours, as a deuteranope sees them (Machado 2009) or as given."""
    srgb = np.array([hex_rgb(c) for c in colours]) / 255
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    if deuteranope:
        linear = np.clip(linear @ DEUTERANOPIA.T, 0, 1)
    xyz = linear @ SRGB_TO_XYZ.T / D65
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])], axis=1)


def closest(colours: list[str]) -> float:
    """The smallest CIE76 ΔE between any two of `colours` seen by a deuteranope."""
    points = lab(colours)
    return min(float(np.linalg.norm(a - b)) for a, b in itertools.combinations(points, 2))


def test_lab_matches_hand_checked_values():
    # white is L* 100; sRGB red is L* 53.2, a* 80.1, b* 67.2; pure red and green, far apart for most
    # people, come within ΔE 30 for a deuteranope (the confusion this issue is about)
    assert np.allclose(lab(["#ffffff"], False), [[100, 0, 0]], atol=0.01)
    assert np.allclose(lab(["#ff0000"], False), [[53.24, 80.09, 67.20]], atol=0.05)
    assert np.linalg.norm(lab(["#ff0000"], False)[0] - lab(["#00ff00"], False)[0]) > 150
    assert closest(["#d73027", "#1a9850"]) < 30  # the old red "very high" and green "low"


@pytest.mark.parametrize("n", [2, 3, 4, 5, 6])
def test_risk_classes_stay_apart_for_a_deuteranope(n):
    # every class, "insufficient evidence" grey and the white of no data: no two closer than ΔE 10
    names = [f"class {k}" for k in range(n)]
    thresholds = [round((k + 1) / n, 3) for k in range(n - 1)]
    legend = risk_class_legend(names, thresholds, min_evidence=2)
    colours = [s.color for s in legend.stops]
    assert colours[0] == INSUFFICIENT_COLOUR == "#9e9e9e" and len(set(colours)) == n + 1
    assert closest(colours + ["#ffffff"]) >= 10


def test_low_risk_is_pale_yellow_not_green_and_classes_darken():
    legend = risk_class_legend(["low", "medium", "high", "very high"], [0.3, 0.45, 0.6], min_evidence=2)
    assert [s.color for s in legend.stops] == ["#9e9e9e", "#ffffb2", "#fd8d3c", "#e31a1c", "#49006a"]
    low = hex_rgb(legend.stops[1].color)
    assert low[0] >= low[1] > low[2]  # yellow: red ≥ green > blue, not a green
    lightness = lab([s.color for s in legend.stops[1:]], deuteranope=False)[:, 0]
    assert (np.diff(lightness) < 0).all()  # higher risk is darker, for everyone
    assert legend.title == "Risk class (from P_c)"


def test_insufficient_grey_is_no_colour_of_any_ramp():
    # the grey must not be read as a value of any product: 101 colours along each ramp
    for name in ("contamination_probability", "residual_probability", "environmental_impact", "recovery_rate",
                 "released_share"):
        legend = product_legend(name)
        cmap, norm = _colours(legend)
        lo, hi = legend.stops[0].value, legend.stops[-1].value
        along = [to_hex(cmap(norm(v))) for v in np.linspace(lo, hi, 101)]
        points = lab(along)
        grey = lab([INSUFFICIENT_COLOUR])[0]
        assert np.linalg.norm(points - grey, axis=1).min() >= 10, name


def test_ramps_read_by_lightness_for_a_deuteranope():
    # sequential ramps darken steadily as a deuteranope sees them (a value is read by lightness, not
    # by a red–green hue); E's two sides stay far apart around a light neutral 0
    for name in ("contamination_probability", "residual_probability", "recovery_rate", "released_share"):
        lightness = lab([s.color for s in product_legend(name).stops])[:, 0]
        assert (np.diff(lightness) < -3).all(), (name, lightness)
    e = lab([s.color for s in product_legend("environmental_impact").stops])
    assert e[:, 0].argmax() == 2 and np.linalg.norm(e[0] - e[-1]) > 40
    assert closest([s.color for s in product_legend("environmental_impact").stops]) >= 10


def test_default_ranges_are_fixed_per_product_and_the_config_overrides_them():
    ends = {name: (product_legend(name).stops[0].value, product_legend(name).stops[-1].value)
            for name in ("contamination_probability", "residual_probability", "released_share",
                         "environmental_impact", "recovery_rate")}
    assert ends == {"contamination_probability": (0, 1), "residual_probability": (0, 1), "released_share": (0, 1),
                    "environmental_impact": (-20, 20), "recovery_rate": (0, 5)}
    e = product_legend("environmental_impact")
    assert [s.label for s in e.stops] == ["≤ -20", "-10", "0", "10", "≥ 20"]  # ends say values beyond clamp
    assert [s.color for s in e.stops][2] == "#f7f7f7"  # E = 0 neutral, purple below, orange above
    pc = product_legend("contamination_probability", 0.2, 0.7)
    assert [s.value for s in pc.stops] == pytest.approx([0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    assert [s.color for s in pc.stops] == YL_OR_RD and (pc.stops[0].label, pc.stops[-1].label) == ("≤ 0.2", "≥ 0.7")
    assert product_legend("contamination_probability").stops[0].label == "0"  # P_c cannot be below 0
    csc = product_legend("clearance_sustainability")
    assert [(s.value, s.label) for s in csc.stops] == [
        (0.5, "≤ 0.50 unsustainable"), (0.7, "0.50–0.70 below threshold"),
        (0.85, "0.70–0.85 sustainable (> 0.7)"), (float("inf"), "> 0.85 sustainable")]
    # a narrower range keeps the breaks inside it; the top class is the one holding hi (0.6: below 0.7)
    narrow = product_legend("clearance_sustainability", 0.0, 0.6)
    assert [(s.value, s.color, s.label) for s in narrow.stops] == [
        (0.5, "#e66101", "≤ 0.50 unsustainable"), (float("inf"), "#fdb863", "> 0.50 below threshold")]


def test_legends_are_titled_in_words_with_units():
    for name in PRODUCTS:
        legend = (risk_class_legend(["low", "high"], [0.5]) if name == "risk_class" else product_legend(name))
        assert re.match(r"[A-Z][a-z]{3,} [a-z]{4,}", legend.title), (name, legend.title)  # words, not a key
        assert "code" not in legend.title and "_" not in legend.title.split()[0]
        assert legend.kind == "palette" or re.search(r"\(.*\w.*\)", legend.title), (name, legend.title)  # a unit
    assert product_legend("contamination_probability").title == "Contamination probability P_c (0–1)"
    assert product_legend("environmental_impact").title == "Environmental impact E (mines/km² − %)"


def _shader(root: ET.Element) -> tuple[dict, list[tuple[float, str]]]:
    shader = root.find(".//colorrampshader")
    return shader.attrib, [(float(i.get("value")), i.get("color")) for i in shader.findall("item")]


def test_config_range_is_the_same_in_qml_png_and_project(world, tmp_path):
    # P_c on the tiny world by hand: east half (rock) 0.1, west half (sand) 0.4, the drone's 1 km square
    # in the north-west (rows, cols 0–9) 0.4667, cell (50, 50) with 100 mines 0.6
    world.write_text(world.read_text().replace("L_sat = 50.0", "L_sat = 50.0\nrange = [0.0, 0.5]"))
    out = tmp_path / "out"
    run(world, out, workers=1)
    attrib, items = _shader(ET.parse(out / "contamination_probability.qml").getroot())
    assert (float(attrib["minimumValue"]), float(attrib["maximumValue"]), attrib["clip"]) == (0.0, 0.5, "0")
    # the ramp's 6 stops and, marked for the legend, the class thresholds within it (0.3 is a stop; 0.45
    # in the ramp's colour there: halfway from #f03b20 to #bd0026, by hand #d61e23; 0.6 is beyond)
    assert [v for v, _ in items] == pytest.approx([0, 0.1, 0.2, 0.3, 0.4, 0.45, 0.5])
    assert [c for _, c in items] == [*YL_OR_RD[:5], "#d61e23", YL_OR_RD[5]]
    labels = [i.get("label") for i in ET.parse(out / "contamination_probability.qml").getroot().iter("item")]
    assert labels == ["0: low", "", "", "0.3: medium", "", "0.45: high", "≥ 0.5"]
    legend = product_legend("contamination_probability", 0.0, 0.5)
    assert qml(replace(legend, marks=class_marks(legend, load_config(world)))) \
        == (out / "contamination_probability.qml").read_text()  # the legend drew the style
    # the QGIS project carries the same renderer
    with zipfile.ZipFile(out / "minemap.qgz") as z:
        project = ET.fromstring(z.read(next(n for n in z.namelist() if n.endswith(".qgs"))))
    layer = next(m for m in project.iter("maplayer")
                 if (m.findtext("datasource") or "").endswith("contamination_probability.tif"))
    assert _shader(layer) == (attrib, items)
    # the PNG: the east half (0.1) is the ramp's colour at 0.1; find the map from it
    image = rgb(out / "contamination_probability.png")
    east = near(image, "#fed976", 2)
    (x0, x1), (y0, y1) = span(east, 0), span(east, 1)
    cell = (x1 - x0 + 1) / 50  # pixels per 100 m cell
    assert abs((y1 - y0 + 1) / cell - 100) < 1.5  # the east half is 100 cells tall
    left = x0 - 50 * cell

    def at(row: int, col: int) -> np.ndarray:
        return image[round(y0 + (row + 0.5) * cell), round(left + (col + 0.5) * cell)]

    assert near(at(30, 30), "#f03b20", 2)  # 0.4: the 5th stop
    assert near(at(5, 5), "#ce1424", 3)  # 0.4667: 2/3 of the way from #f03b20 to #bd0026, by hand
    assert near(at(50, 50), "#bd0026", 2)  # 0.6 is beyond the range: the end colour (QGIS clip="0")


def test_two_runs_with_different_extremes_draw_a_value_in_the_same_colour(world, tmp_path):
    # 100 then 1000 mines at cell (50, 50): E's maximum there goes from 1 000 to 10 000, every other
    # cell keeps its E; the map must not re-stretch (the old ramp ran from −max to +max)
    first, second = tmp_path / "a", tmp_path / "b"
    run(world, first, workers=1)
    mines = gpd.read_file(world.parent / "mines.gpkg")
    mines["count"] = 1000
    mines.to_file(world.parent / "mines.gpkg", driver="GPKG")
    run(world, second, workers=1)
    with rasterio.open(first / "environmental_impact.tif") as a, rasterio.open(second / "environmental_impact.tif") as b:
        # E = L·D − C·R at cell (50, 50): 100 mines per 0.01 km² × D 0.1 (rock) = 1 000
        assert (a.read(1)[50, 50], b.read(1)[50, 50]) == pytest.approx((1000, 10000), rel=1e-3)
    assert (first / "environmental_impact.qml").read_text() == (second / "environmental_impact.qml").read_text()
    one, two = rgb(first / "environmental_impact.png"), rgb(second / "environmental_impact.png")
    below_title = 200  # rows of the title and run time (which may differ by a minute)
    assert one.shape == two.shape and (one[below_title:] == two[below_title:]).all()


def test_dpi_sets_the_png_resolution(world, tmp_path):
    world.write_text(world.read_text() + "[output]\ndpi = 100\n")
    run(world, tmp_path / "out", workers=1)
    image = rgb(tmp_path / "out" / "contamination_probability.png")
    assert 600 < image.shape[0] < 1000  # 7 in of map and 1.25 in of title and margin; 200 dpi: ~1650 rows


@pytest.mark.parametrize("value, needle", [("[0.5, 0.5]", "finite lo < hi"), ("[1, 0]", "finite lo < hi"),
                                           ("[0, inf]", "finite lo < hi"), ("[1]", "range")])
def test_a_bad_range_is_refused_naming_the_key(world, value, needle):
    world.write_text(world.read_text() + f"[products.environmental_impact]\nrange = {value}\n")
    output = assert_refused(["validate", str(world)], None, 2, "products.environmental_impact", needle)
    assert str(world) in output


SHADE = """import json, sys
from qgis.core import QgsApplication, QgsRasterLayer
app = QgsApplication([], False)
app.initQgis()
layer = QgsRasterLayer(sys.argv[1], "x")
layer.loadNamedStyle(sys.argv[2])
shader = layer.renderer().shader().rasterShaderFunction()
print(json.dumps([list(shader.shade(float(v))[:4]) for v in sys.argv[3:]]))
"""


@pytest.mark.qgis
@pytest.mark.skipif(not Path("/usr/bin/qgis_process.bin").exists(), reason="QGIS not installed (make system-deps)")
@pytest.mark.parametrize("name, values", [
    ("environmental_impact", [-1000, -20, -10, -3, 0, 5, 20, 1844]),  # beyond the range: the end colours
    ("contamination_probability", [-0.5, 0, 0.1, 0.4, 0.4667, 0.6, 0.95, 1, 3]),
    ("recovery_rate", [0, 1.7, 2.7, 5, 22.5]),
    ("clearance_sustainability", [0.1, 0.5, 0.7, 0.71, 0.85, 0.9, 5]),  # classes: ≤ upper bound
    # the legend's marks at the class thresholds lie on the ramp: QGIS draws it as without them
    ("contamination_probability+marks", [0, 0.1, 0.3, 0.37, 0.45, 0.5, 0.6, 0.93, 1])])
def test_qgis_draws_a_value_in_the_png_colour(tmp_path, name, values):
    # real QGIS 3.22 reads the .qml and colours each value as the PNG and PDF do (clip="0": values
    # beyond the range take the end colour in both)
    legend = product_legend(name.split("+")[0])
    if name.endswith("+marks"):
        legend = replace(legend, marks=tuple(Stop(v, "", f"{v:g}") for v in (0, 0.3, 0.45, 0.6, 1)))
    (tmp_path / "s.qml").write_text(qml(legend))
    (tmp_path / "shade.py").write_text(SHADE)
    tif = write_raster(tmp_path / "s.tif", np.zeros((2, 2), np.float32), 500_000, 4_410_000, 100, "EPSG:32638",
                       nodata=-9999.0)
    cells = np.array([values], np.float32)  # as the products hold them: 0.85 is 0.8500000238 in float32
    proc = subprocess.run(["/usr/bin/python3", str(tmp_path / "shade.py"), str(tif), str(tmp_path / "s.qml"),
                           *(repr(float(v)) for v in cells[0])], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    qgis = np.array([rgb_[1:] for rgb_ in json.loads(proc.stdout.strip().splitlines()[-1])])
    assert all(ok for ok, *_ in json.loads(proc.stdout.strip().splitlines()[-1]))  # every value drawn
    png = coloured(np.ma.masked_invalid(cells), legend)[0, :, :3]
    assert np.abs(qgis - png.astype(int)).max() <= 2, (qgis.tolist(), png.tolist())


def test_project_zones_and_cleared_areas_are_not_red_and_green():
    # zones: a black outline with a hatch, no colour of the risk ramp; cleared areas: the PDF's blue
    from pipeline.writers.pdf import CLEARED, ZONE
    from pipeline.writers.project import SYMBOLS

    def hexes(style: str) -> list[str]:
        props = SYMBOLS[style][2]
        return ["#" + "".join(f"{int(v):02x}" for v in props[k].split(",")[:3]) for k in ("color", "outline_color")]

    zones, cleared = SYMBOLS["zones"][2], SYMBOLS["cleared"][2]
    assert zones["style"] != "solid" and hexes("zones") == [ZONE, ZONE] and float(zones["outline_width"]) >= 0.8
    assert hexes("cleared") == [CLEARED, CLEARED]
    risk = [s.color for s in risk_class_legend(["low", "medium", "high", "very high"], [0.3, 0.45, 0.6]).stops]
    for colour in hexes("zones") + hexes("cleared"):  # apart from every risk class, as a deuteranope sees them
        assert np.linalg.norm(lab(risk) - lab([colour])[0], axis=1).min() >= 20, colour


def test_change_ramp_diverges_around_a_light_zero_and_takes_the_config_range():
    from pipeline.change import change_legend

    legend = change_legend()
    assert [s.value for s in legend.stops] == pytest.approx([-0.3, -0.15, 0, 0.15, 0.3])
    seen = lab([s.color for s in legend.stops])
    assert seen[:, 0].argmax() == 2 and np.linalg.norm(seen[0] - seen[-1]) > 40  # two sides apart, 0 light
    assert closest([s.color for s in legend.stops]) >= 10
    assert [s.value for s in change_legend(-0.5, 0.5).stops][::4] == [-0.5, 0.5]
    assert legend.stops[0].label.startswith("≤") and "more likely" in legend.stops[-1].label
