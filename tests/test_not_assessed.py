"""Land not assessed (issue #20 §1): no ramp colour on the sample's risk-class-0 cells (most of
Kalbajar and Lachin) in the PNG maps and the briefing pages, read back as pixels; a grey hatch
there, apart from "no data". The QGIS layouts are checked in test_qgis_layouts.py with
`layout_pixels_not_assessed` below (one QGIS export for both)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image
from scipy import ndimage

from pipeline.writers import assessed
from pipeline.writers.briefing import cover, district, drawing

FACE = 0xE0  # the hatch's face grey (assessed.FACE), #e0e0e0
WORDS = "Not assessed: fewer than 2 of: mine records, soil map, drone survey"


def cells(out: Path, erode: int = 3, stride: int = 4, code: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Map coordinates (x, y) of the centres of risk_class == `code` cells at least `erode` cells
    inside their patch (clear of outlines' antialiasing), every `stride`-th row and column."""
    with rasterio.open(out / "risk_class.tif") as ds:
        classes, t = ds.read(1), ds.transform
    inside = ndimage.binary_erosion(classes == code, iterations=erode) if code == 0 else \
        ndimage.binary_erosion((classes >= 1) & (classes != 255), iterations=erode)
    keep = np.zeros_like(inside)
    keep[::stride, ::stride] = True
    rows, cols = np.nonzero(inside & keep)
    xs, ys = rasterio.transform.xy(t, rows, cols)
    return np.asarray(xs), np.asarray(ys)


def grey_report(rgb: np.ndarray) -> dict:
    """Of sampled pixels (n, 3 uint8): how many carry colour (a ramp's colours all do: YlOrRd's
    palest is #ffffb2, 77 between channels), how many are the hatch's face and its dark lines."""
    rgb = rgb.astype(int)
    spread = rgb.max(axis=1) - rgb.min(axis=1)
    grey = rgb.mean(axis=1)
    return {"n": len(rgb), "coloured": float((spread > 20).mean()), "face": float((abs(grey - FACE) <= 10).mean()),
            "lines": float((grey < 170).mean())}


def assert_hatched(report: dict, where: str) -> None:
    assert report["n"] > 200, where
    assert report["coloured"] == 0, f"{where}: ramp colours on not-assessed land: {report}"
    # the hatch, not white or the light "no data" lines: its face and its dark lines
    assert report["face"] > 0.3 and report["lines"] > 0.03, f"{where}: no grey hatch: {report}"


def png_pixels(png: Path, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """The PNG map's pixels at map coordinates, from where the map lies in it ("minemap:map")."""
    image = Image.open(png)
    where = json.loads(image.text["minemap:map"])
    (px0, py0, px1, py1), (x0, x1, y0, y1) = where["box_px"], where["view"]
    cols = (px0 + (xs - x0) / (x1 - x0) * (px1 - px0)).astype(int)
    rows = (py0 + (y1 - ys) / (y1 - y0) * (py1 - py0)).astype(int)
    return np.asarray(image.convert("RGB"))[rows, cols]


@pytest.mark.parametrize("name", ["contamination_probability", "residual_probability"])
def test_png_maps_hatch_not_assessed_land_and_colour_the_rest(sample_out, name):
    png = sample_out / f"{name}.png"
    assert_hatched(grey_report(png_pixels(png, *cells(sample_out))), png.name)
    # the same reading on assessed land finds the ramp: the pixels read are the right ones
    assessed_land = grey_report(png_pixels(png, *cells(sample_out, code=1)))
    assert assessed_land["coloured"] > 0.95, assessed_land


def page_pixels(pdf_file: Path, page: int, box: tuple, view: tuple, xs, ys, tmp: Path, dpi: int = 100) -> np.ndarray:
    """Pixels of briefing page `page` (pdftoppm at `dpi`) at map coordinates, for a map drawn in
    `box` (x, y from the bottom, width, height; inches) showing `view` (left, bottom, right, top)."""
    stem = tmp / f"page{page}"
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", "-singlefile", "-f", str(page), "-l", str(page),
                    str(pdf_file), str(stem)], check=True)
    rgb = np.asarray(Image.open(f"{stem}.png").convert("RGB"))
    bx, by, bw, bh = box
    x = bx + (xs - view[0]) / (view[2] - view[0]) * bw
    y = by + (ys - view[1]) / (view[3] - view[1]) * bh
    inside = (x > bx) & (x < bx + bw) & (y > by) & (y < by + bh)
    return rgb[((drawing.PAGE[1] - y[inside]) * dpi).astype(int), (x[inside] * dpi).astype(int)]


def page_of(pdf_file: Path, heading: str) -> int:
    """The page number whose text holds `heading`."""
    text = subprocess.run(["pdftotext", "-layout", str(pdf_file), "-"], capture_output=True, text=True,
                          check=True).stdout
    return next(k + 1 for k, page in enumerate(text.split("\f")) if heading in page)


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils not installed")
def test_briefing_cover_and_district_pages_hatch_not_assessed_land(sample_out, tmp_path):
    import geopandas as gpd

    brief = sample_out / "briefing.pdf"
    raster = sample_out / "residual_probability.tif"
    xs, ys = cells(sample_out, erode=6)  # the summary map at 200 dpi: about 2 cells a pixel, clear of assessed patches' edges
    extent = drawing.Window.of(raster, None, 900).extent
    box = cover.SUMMARY_BOX
    cover_view = drawing.widen((extent[0], extent[2], extent[1], extent[3]), box[2] / box[3])
    assert_hatched(grey_report(page_pixels(brief, 1, box, cover_view, xs, ys, tmp_path, dpi=200)), "summary")
    control = grey_report(page_pixels(brief, 1, box, cover_view, *cells(sample_out, code=1), tmp_path))
    assert control["coloured"] > 0.9, control
    districts = gpd.read_file(sample_out / "districts.gpkg").set_index("district")
    xs, ys = cells(sample_out)
    for name in ("Kalbajar", "Lachin"):
        view = district.district_view(districts.geometry[name])
        page = page_of(brief, f"District: {name}")
        assert_hatched(grey_report(page_pixels(brief, page, district.MAP_BOX, view, xs, ys, tmp_path)), name)
    text = subprocess.run(["pdftotext", "-layout", str(brief), "-"], capture_output=True, text=True,
                          check=True).stdout
    pages = [" ".join(page.split()) for page in text.split("\f")]
    assert pages[0].count(WORDS) == 1  # the cover map's legend
    # the mostly-not-assessed districts are briefed last, and say so on the cover and on their page
    headings = [p.split("District: ")[1].split(" Residual")[0] for p in pages if p.startswith("District: ")]
    assert headings[-2:] == ["Kalbajar", "Lachin"] and len(headings) == 9
    apart = pages[0].split("Mostly not assessed: too little evidence to rank (unknown, not safe)")[1]  # listed apart
    assert re.search(r"8 Kalbajar 7 ?% .*9 Lachin 11 ?%", apart)
    assert all("Mostly not assessed (" in p for p in pages[8:10]) and not any("Mostly not assessed (" in p
                                                                              for p in pages[1:8])


def layout_pixels_not_assessed(sample_out: Path, png: Path, dpi: float = 60) -> None:
    """The QGIS briefing layout's export (`png`, at `dpi`): the hatch on not-assessed land, the
    ramp elsewhere (map item and extent as writers/layouts.py places them)."""
    from pipeline.writers import layouts

    with rasterio.open(sample_out / "risk_class.tif") as ds:
        b = ds.bounds
    x, y, w, h = layouts.MAP_BOX
    extent = layouts._fit((b.left, b.bottom, b.right, b.top), w / h)
    at = _layout_reader(png, extent, dpi)
    assert_hatched(grey_report(at(*cells(sample_out, erode=6))), "QGIS briefing layout")
    control = grey_report(at(*cells(sample_out, erode=6, code=1)))
    assert control["coloured"] > 0.85, control


def atlas_pixels_not_assessed(sample_out: Path, png: Path, extent: list, dpi: float = 60) -> None:
    """An atlas page's export of a mostly-not-assessed district: the hatch, no ramp colour, on
    the not-assessed cells its map shows (`extent`: the map item's, as QGIS reported it)."""
    at = _layout_reader(png, tuple(extent), dpi)
    assert_hatched(grey_report(at(*cells(sample_out, erode=3))), png.name)


def _layout_reader(png: Path, extent: tuple, dpi: float):
    """Pixels of a layout export at map coordinates inside the map item (writers/layouts.MAP_BOX)."""
    from pipeline.writers import layouts

    x, y, w, h = layouts.MAP_BOX
    xmin, ymin, xmax, ymax = extent
    rgb = np.asarray(Image.open(png).convert("RGB"))
    mm = dpi / 25.4

    def at(xs, ys):
        cols = x + (xs - xmin) / (xmax - xmin) * w
        rows = y + (ymax - ys) / (ymax - ymin) * h
        inside = (cols > x + 1) & (cols < x + w - 1) & (rows > y + 1) & (rows < y + h - 1)  # clear of the frame
        return rgb[(rows[inside] * mm).astype(int), (cols[inside] * mm).astype(int)]

    return at


def test_the_legend_words_follow_the_evidence_layers(world):
    """The sample's rule, and a records-only configuration's (weights [1, 0, 0]: H_m is the only
    evidence layer, so min_evidence 2 reads as 1, contract §1)."""
    from pipeline.config import load_config

    assert assessed.not_assessed_words(load_config(world)) == WORDS
    world.write_text(world.read_text().replace("L_sat = 50.0", "L_sat = 50.0\nweights = [1, 0, 0]"))
    assert assessed.not_assessed_words(load_config(world)) == "Not assessed: fewer than 1 of: mine records"


def test_without_risk_classes_the_evidence_count_is_the_mask(world, tmp_path):
    """[products.risk_class] disabled: evidence_count.tif below the effective minimum (2) marks
    the land not assessed (255: outside the region)."""
    from pipeline.config import load_config

    world.write_text(world.read_text() + "\n[products.risk_class]\nenabled = false\n")
    hidden = assessed.hidden_maps({"contamination_probability": tmp_path / "p.tif",
                                   "evidence_count": tmp_path / "n.tif"}, load_config(world))
    rule = hidden["contamination_probability"]
    assert (rule.source.name, rule.below, rule.label) == ("n.tif", 2, WORDS)
    data = np.ma.MaskedArray(np.zeros((1, 5)), mask=[[True, True, False, False, True]])
    assert rule.mask(data, np.array([[0, 1, 2, 3, 255]], np.uint8)).tolist() == [[True, True, False, False, False]]


def test_change_map_hatches_land_either_run_left_unassessed(tmp_path):
    """In the region (risk class valid) but ΔP nodata: not assessed in one run; outside: no data."""
    hidden = assessed.NotAssessed(tmp_path / "risk_class.tif", "x", in_region_nodata=True)
    data = np.ma.MaskedArray([[0.1, 0.0, 0.0, 0.2]], mask=[[False, True, True, False]])
    classes = np.array([[2, 1, 255, 0]], np.uint8)
    assert hidden.mask(data, classes).tolist() == [[False, True, False, True]]


QGIS_ALONE = """
import json, sys
from qgis.core import QgsApplication, QgsMapRendererSequentialJob, QgsMapSettings, QgsRasterLayer
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor
app = QgsApplication([], False); app.initQgis()
path, points = sys.argv[1], json.loads(sys.stdin.read())
layer = QgsRasterLayer(path, "p"); layer.loadDefaultStyle()
s = QgsMapSettings(); s.setLayers([layer]); s.setDestinationCrs(layer.crs()); s.setExtent(layer.extent())
s.setOutputSize(QSize(800, 800)); s.setBackgroundColor(QColor(0, 0, 0, 0))
job = QgsMapRendererSequentialJob(s); job.start(); job.waitForFinished()
image, m2p = job.renderedImage(), s.mapToPixel()
out = []
for x, y in points:
    p = m2p.transform(x, y)
    c = QColor(image.pixelColor(int(p.x()), int(p.y())))
    out.append([c.red(), c.green(), c.blue(), c.alpha()])
print(json.dumps({"renderer": layer.renderer().type(), "pixels": out}), flush=True)
import os; os._exit(0)  # exitQgis with the layer and job alive can crash: the answer is out
"""


@pytest.mark.qgis
@pytest.mark.skipif(shutil.which("/usr/bin/python3") is None, reason="QGIS not installed")
def test_pc_geotiff_opened_alone_in_qgis_paints_nothing_where_not_assessed(sample_out):
    """A QGIS user opening only contamination_probability.tif (its .qml applied) sees no ramp
    colour on not-assessed land: P_c is nodata there (issue #20 contract §2), drawn transparent."""
    import os

    from test_qgis import QGIS_PYTHON, qgis_available

    if not qgis_available():
        pytest.skip("QGIS not installed")
    for name in ("contamination_probability", "residual_probability"):
        hidden, shown = cells(sample_out, erode=4, stride=8), cells(sample_out, erode=4, stride=8, code=1)
        points = [[float(x), float(y)] for x, y in zip(*hidden)] + [[float(x), float(y)] for x, y in zip(*shown)]
        proc = subprocess.run([QGIS_PYTHON, "-c", QGIS_ALONE, str(sample_out / f"{name}.tif")], input=json.dumps(points),
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
        assert proc.returncode == 0, proc.stderr[-2000:]
        report = json.loads(proc.stdout.strip().splitlines()[-1])
        assert report["renderer"] == "singlebandpseudocolor"
        pixels = np.asarray(report["pixels"])
        n = len(hidden[0])
        assert n > 100 and (pixels[:n, 3] == 0).all(), f"{name}: painted where not assessed"
        assert (pixels[n:, 3] == 255).mean() > 0.99  # and painted where assessed: the points are the right ones
    for aux in sample_out.glob("*.aux.xml"):  # QGIS's statistics, not the run's
        aux.unlink()


def test_report_says_what_is_not_assessed_and_lists_those_districts_last(sample_out):
    import html
    import re

    page = html.unescape((sample_out / "report.html").read_text())
    notes = re.findall(r"<li>(.*?)</li>", page.split("class='note'")[-1])
    assert any(n.endswith("are not assessed (grey hatch on the probability maps, grey in the risk classes): "
                          "fewer than 2 of: mine records, soil map, drone survey; unknown, not safe.") for n in notes)
    assert ("Mostly not assessed, so listed after every assessed district and never ranked by their P_c: "
            "Kalbajar (7 % assessed), Lachin (11 % assessed).") in notes
