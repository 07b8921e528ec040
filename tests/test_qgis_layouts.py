"""The print layouts of minemap.qgz, exported by real QGIS 3.22 (Debian's python3-qgis, headless)."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pyogrio
import pytest
from matplotlib.image import imread

from test_not_assessed import atlas_pixels_not_assessed, layout_pixels_not_assessed
from test_qgis import QGIS_PYTHON, qgis_available

pytestmark = [pytest.mark.qgis,
              pytest.mark.skipif(not qgis_available(),
                                 reason="QGIS not installed: run `make system-deps` (Debian: apt-get install qgis python3-qgis)"),
              pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")]

# The map frame covers 178×172 mm of the 297×210 mm page (49 %) and the region fills about half
# of it (about 30 % of the page inked at 60 dpi). With the map pointed away from the data, texts,
# legend, scale bar, frame and grid alone ink 6 % (briefing) and 3 % (atlas pages): measured.
# So a page whose map was not drawn stays under 15 %, and one with the map drawn is well above.
DRAWN = 0.15


def export(qgz: Path, tmp: Path, *districts: str) -> dict:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([QGIS_PYTHON, str(Path(__file__).with_name("qgis_layouts_check.py")), str(qgz), str(tmp),
                           *([",".join(districts)] if districts else [])],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def pdf_ink(pdf: Path, tmp: Path) -> float:
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-singlefile", str(pdf), str(tmp / "pdf")], check=True)
    rgb = imread(tmp / "pdf.png")[..., :3]
    return float((rgb < 0.94).any(axis=-1).mean())


def test_briefing_layout_and_district_atlas_export_from_qgis(sample_out, tmp_path):
    report = export(sample_out / "minemap.qgz", tmp_path, "Kalbajar", "Lachin", "Zangilan")
    assert report["read"] and report["layouts"] == ["minemap briefing", "minemap districts atlas"]

    # land is released; not-assessed land hatched above the raster (issue #20), its legend entry in words
    shown = ["Priority zones", "Districts", "Not assessed: fewer than 2 of: mine records, soil map, drone survey",
             "Residual contamination probability (P_res)"]
    brief = report["briefing"]
    assert brief["map_layers"] == shown and brief["legend"] == shown  # the legend lists only the map's layers
    assert set(brief["outlines"].values()) == {0.5}  # no atlas page: no district highlighted
    assert brief["maps"] == 1 and brief["grids"] == 1 and brief["scalebars"] == 1
    # legends in words: the raster shows its ramp, not QGIS's "Band 1: … (Gray)" line (issue #22)
    assert not any("Band 1" in text or "(Gray)" in text for text in brief["legend_text"]), brief["legend_text"]
    # ... the P_res ramp labelled at 0, the config's class thresholds (the sample's 0.3, 0.45, 0.6) and 1,
    # each with the class starting there; QGIS 3.22's continuous ramp labels only its ends
    record = json.loads((sample_out / "run.json").read_text())
    classes = record["config"]["settings"]["products"]["risk_class"]
    assert classes["thresholds"] == [0.3, 0.45, 0.6]
    marks = ["0: low", *(f"{t:g}: {n}" for t, n in zip(classes["thresholds"], classes["names"][1:])), "1"]
    assert brief["legend_text"][-5:] == marks == ["0: low", "0.3: medium", "0.45: high", "0.6: very high", "1"]
    # round kilometres: the sample's map is about 135 km across 170 mm, so 2 segments of 20 km
    # (labelled 0, 20, 40 km: with 1000 map units per scale bar unit QGIS printed 0, 0.02, 0.04 km)
    assert brief["scale"] == [{"units": "km", "per_segment": 20.0, "segments": 2, "label": "km",
                               "map_units_per_unit": 1.0, "texts": ["0", "20", "40"]}]
    assert brief["pictures"] == [":/images/north_arrows/layout_default_north_arrow.svg"]
    label = record["config"]["settings"]["label"]
    assert set(brief["labels"]) == {"minemap — karabakh-100m", shown[3], label,
                                    f"Run {record['created_utc'][:16].replace('T', ' ')} UTC",
                                    f"minemap {record['minemap_version']}; data: see run.json"}
    assert report["briefing_png"] and report["briefing_ink"] > DRAWN
    layout_pixels_not_assessed(sample_out, tmp_path / "briefing.png")  # no ramp colour there: the hatch
    assert report["briefing_pdf"] and pdf_ink(tmp_path / "briefing.pdf", tmp_path) > DRAWN

    atlas = report["atlas"]
    names = sorted(pyogrio.read_dataframe(sample_out / "districts.gpkg", columns=["district"])["district"])
    assert atlas["enabled"] and atlas["coverage"] == "Districts" and atlas["count"] == len(names) == 9
    by_name = {page["district"]: page for page in atlas["pages"]}
    for name in ("Kalbajar", "Lachin"):  # mostly not assessed: the hatch, no ramp colour (issue #20)
        atlas_pixels_not_assessed(sample_out, tmp_path / by_name[name]["png"], by_name[name]["extent"])
    for page, name in zip(atlas["pages"][:2], names[:2], strict=True):  # sorted by name
        assert page["ok"] and page["ink"] > DRAWN, page
        assert page["district"] == name and name in page["labels"], page  # the title is the district's name
        assert page["name"] == f"district_{name}"
        # the page's district outlined thick (1.6 mm), the others as on the briefing (0.5 mm)
        assert page["outlines"] == {n: 1.6 if n == name else 0.5 for n in names}, page["outlines"]
        figures = next(text for text in page["labels"] if text.startswith("Figures for"))
        assert figures.splitlines()[0] == f"Figures for {name}"
        (x0, y0, x1, y1), (fx0, fy0, fx1, fy1) = page["extent"], page["feature_box"]
        assert x0 < fx0 and y0 < fy0 and x1 > fx1 and y1 > fy1  # the map follows the district, with a margin
        assert (x1 - x0) < 1.6 * max(fx1 - fx0, (fy1 - fy0) * 178 / 172)  # ... and zooms to it
    # the atlas page: its grid, scale bar in whole km, legend in words, and (hand-checked against
    # districts.gpkg) Aghdam's figures: assessed_share 1.0 of 2,626 km², mean_residual 0.35,
    # km2_high + km2_very_high 202.2, remaining_mines 6,243
    items = atlas["items"]
    assert items["grids"] == 1 and items["scalebars"] == 1
    assert not any("Band 1" in text for text in items["legend_text"])
    assert items["legend_text"][-5:] == marks and items["legend"][0] == "Field tasks"  # tasks atop the zones
    assert atlas["map_layers"][:2] == ["Field tasks", "Priority zones"]
    # round kilometres whatever the district's size (QGIS 3.22 fits 7 or 9 km segments by itself): the
    # largest district (Aghdam, 71 × 52 km) at 1:480,000 in 10 km segments, the smallest (Zangilan,
    # 32 × 23 km) at 1:240,000 in 5 km; every page at one of the project's scales
    assert (by_name["Aghdam"]["scale"], by_name["Zangilan"]["scale"]) == pytest.approx((480_000, 240_000))
    assert by_name["Aghdam"]["scalebar"][0]["texts"] == ["0", "10", "20"]
    assert by_name["Zangilan"]["scalebar"][0]["texts"] == ["0", "5", "10"]
    # field tasks are drawn from 1:250,000: on Zangilan's page (its one task class listed, the legend
    # filtered by the page's map: no hatch there either), not on Aghdam's at 1:480,000
    assert by_name["Zangilan"]["legend_text"] == ["high", "Priority zones", "Districts", *marks]
    assert by_name["Aghdam"]["legend_text"] == ["Priority zones", "Districts", shown[2], *marks]
    for page in atlas["pages"]:
        assert min(abs(page["scale"] - s) for s in atlas["scales"]) < 1, page["scale"]
        bar = page["scalebar"][0]
        assert bar["units"] == "km" and bar["label"] == "km" and bar["segments"] == 2
        assert f"{bar['per_segment']:.0e}"[0] in "125" and bar["per_segment"] >= 1, (page["district"], bar)
    scale = items["scale"][0]
    assert scale["units"] == "km" and scale["per_segment"] >= 1 and scale["per_segment"] == int(scale["per_segment"])
    aghdam = by_name["Aghdam"]["labels"]
    assert ("Figures for Aghdam\nAssessed: 100 % of 2,626 km²\nMean P_res: 0.35\nHigh or very high: 202.2 km²\n"
            "Estimated remaining mines: 6,243") in aghdam
