"""PNG maps (colours exactly as the .qml styles, nodata white, north up) and the HTML report."""

import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from matplotlib.image import imread

from pipeline.writers.maps import render_map
from pipeline.writers.report import write_report
from pipeline.products import product_legend
from pipeline.writers.styles import risk_class_legend

from world import write_raster

LEFT, TOP, RES = 500_000.0, 4_410_000.0, 100.0  # EPSG:32638 metres
WHITE = (255, 255, 255)


def rgb(png) -> np.ndarray:
    """The PNG as an H × W × 3 array of 0..255 integers."""
    return (imread(png)[..., :3] * 255).round().astype(int)


def colours(png) -> dict[tuple[int, int, int], int]:
    """Pixel count per colour (a legend patch is ~150 pixels; map areas are thousands)."""
    flat = rgb(png).reshape(-1, 3)
    packed = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]  # one int per colour: fast unique
    values, counts = np.unique(packed, return_counts=True)
    return {(int(v) >> 16, (int(v) >> 8) & 255, int(v) & 255): int(c) for v, c in zip(values, counts)}


def hex_rgb(h: str) -> tuple[int, int, int]:
    return tuple(int(h[k:k + 2], 16) for k in (1, 3, 5))


def near(image: np.ndarray, colour: str, tol: int = 3) -> np.ndarray:
    """Where `image` has `colour` (± tol per channel, for rounding)."""
    return (np.abs(image - np.array(hex_rgb(colour))) <= tol).all(axis=-1)


def span(mask: np.ndarray, axis: int, min_count: int = 100) -> tuple[int, int]:
    """First and last row (axis=1) or column (axis=0) with many `mask` pixels: a map area, not a
    legend swatch or a colorbar end."""
    idx = np.flatnonzero(mask.sum(axis=axis) >= min_count)
    assert idx.size, "colour not found as an area"
    return int(idx[0]), int(idx[-1])


@pytest.fixture
def districts():
    import geopandas as gpd
    from shapely.geometry import box

    # raster columns 100..250, rows 30..170: away from the points the test samples
    return gpd.GeoDataFrame({"name": ["Testland"]}, crs="EPSG:32638",
                            geometry=[box(LEFT + 100 * RES, TOP - 170 * RES, LEFT + 250 * RES, TOP - 30 * RES)])


def test_ramp_map_shows_the_legend_colours_north_up_with_nodata_hatched(tmp_path, districts):
    # 200 × 300 cells: west half P_c 0.0, east half 1.0, a nodata block in the north-west quadrant
    data = np.zeros((200, 300), np.float32)
    data[:, 150:] = 1.0
    data[10:90, 20:120] = -9999  # 8 000 of the west half's 30 000 cells
    tif = write_raster(tmp_path / "pc.tif", data, LEFT, TOP, RES, "EPSG:32638", nodata=-9999.0)
    png = tmp_path / "maps" / "pc.png"
    legend = product_legend("contamination_probability", 0, 1)
    pyplot_before = "matplotlib.pyplot" in sys.modules
    render_map(tif, png, title="Contamination probability", subtitle="Run 2026-11-25 · SYNTHETIC", unit="P_c",
               legend=legend, districts=districts)
    assert pyplot_before or "matplotlib.pyplot" not in sys.modules  # no global pyplot state (threads)
    assert [p.name for p in png.parent.iterdir()] == ["pc.png"]  # no temp file left
    image = rgb(png)
    # print resolution (200 dpi): the 30 × 20 km map box is 7 in = 1400 px wide
    assert 1600 <= image.shape[1] <= 2200 and 900 <= image.shape[0] <= 1500, image.shape
    low, high = legend.stops[0].color, legend.stops[-1].color
    assert (low, high) == ("#ffffb2", "#bd0026")  # ColorBrewer YlOrRd: pale yellow (not green) for P_c 0
    green, red = near(image, low), near(image, high)
    # the map's halves, found as the columns and rows full of each colour
    (gx0, gx1), (rx0, rx1) = span(green, 0), span(red, 0)
    (y0, y1) = span(red, 1)
    assert gx1 < rx0 <= gx1 + 3, "P_c 0 must be west of P_c 1, side by side"
    assert abs((gx1 - gx0) - (rx1 - rx0)) <= 4, "the halves are equally wide"
    width, height = rx1 - gx0, y1 - y0
    assert abs(width / height - 1.5) < 0.05, "equal aspect: 30 km × 20 km"
    # the nodata block (north-west) is hatched light grey on white; its mirror image in the south-west is P_c 0
    at = lambda row, col: tuple(image[round(y0 + height * row / 200), round(gx0 + width * col / 300)])  # noqa: E731
    r, c = round(y0 + height * 50 / 200), round(gx0 + width * 60 / 300)
    block = image[r - 20:r + 20, c - 20:c + 20]
    assert near(block, "#c8c8c8", 40).sum() > 100 and (block == 255).all(axis=-1).sum() > 400  # lines and white
    assert not near(block, low).any()
    assert near(np.array(at(150, 60)), low)
    assert near(np.array(at(50, 240)), high) and near(np.array(at(150, 240)), high)
    # the nodata block is hatched, not coloured as P_c 0 (which would make the ratio 1)
    assert 0.65 < green.sum() / red.sum() < 0.8
    # the district: its west edge (column 100) drawn dark from row 30 to 170, its name over the
    # east half (around column 175, row 100) in dark letters with a white halo
    dark = (image < 120).all(axis=-1)
    x = round(gx0 + width * 100 / 300)
    rows = slice(round(y0 + height * 40 / 200), round(y0 + height * 160 / 200))
    assert dark[rows, x - 2:x + 3].any(axis=1).mean() > 0.9
    assert not dark[rows, x - 30:x - 10].any()  # a thin line
    yl, xl = round(y0 + height * 100 / 200), round(gx0 + width * 175 / 300)
    label = (slice(yl - 8, yl + 9), slice(xl - 40, xl + 41))
    assert dark[label].sum() > 30 and (image[label] == 255).all(axis=-1).sum() > 30


def test_classes_break_exactly_at_the_upper_bound(tmp_path):
    # west half CSC 0.7 (not above 0.7: "below threshold"), east half 0.71 (sustainable), a nodata
    # strip and a strip of exactly 0.5 (the upper bound of "≤ 0.50 unsustainable", exact in float32)
    data = np.full((100, 100), 0.7, np.float32)
    data[:, 50:] = 0.71
    data[:10, :] = -9999
    data[10:20, :] = 0.5
    tif = write_raster(tmp_path / "csc.tif", data, LEFT, TOP, RES, "EPSG:32638", nodata=-9999.0)
    render_map(tif, tmp_path / "csc.png", title="CSC", subtitle="test", unit="coefficient",
               legend=product_legend("clearance_sustainability"))
    seen = colours(tmp_path / "csc.png")
    # each half is ~40 % of a ~1400 × 1400-pixel map, the 0.5 strip ~10 %: far more than a legend patch;
    # orange below the paper's 0.7 threshold, blue above it (no red–green pair)
    assert seen[hex_rgb("#fdb863")] > 200_000 and seen[hex_rgb("#92c5de")] > 200_000  # 0.50–0.70, 0.70–0.85
    assert seen[hex_rgb("#e66101")] > 50_000  # 0.5 is in "≤ 0.50 unsustainable"
    assert 0 < seen.get(hex_rgb("#0571b0"), 0) < 2_000  # "> 0.85" only in the legend: every class is listed
    assert seen[WHITE] > 50_000  # page and the white between the nodata strip's hatch lines


def test_palette_map_shows_every_class_and_hides_unlisted_codes(tmp_path):
    legend = risk_class_legend(["low", "medium", "high", "very high"], [0.3, 0.45, 0.6])
    data = np.repeat(np.repeat(np.array([[1, 2], [3, 4]], np.uint8), 60, axis=0), 80, axis=1)  # 120 × 160
    data[:10, :] = 255  # nodata
    data[-10:, :] = 0  # a code the palette does not list: transparent, as in QGIS
    tif = write_raster(tmp_path / "risk.tif", data, LEFT, TOP, RES, "EPSG:32638", nodata=255)
    render_map(tif, tmp_path / "risk.png", title="Risk class", subtitle="test", unit="class", legend=legend)
    seen = colours(tmp_path / "risk.png")
    counts = [seen.get(hex_rgb(stop.color), 0) for stop in legend.stops]
    assert min(counts) > 10_000, counts  # each class is a map quadrant, not only a legend patch
    # every class keeps 50 × 80 cells; code 0 drawn as the nearest class "low" would add 10 × 80
    assert max(counts) / min(counts) < 1.06, counts
    assert seen[WHITE] > 20_000


def test_maps_drawn_in_threads_match_one_drawn_alone(tmp_path, districts):
    # the pipeline draws its maps in a thread pool: figures must share no state
    data = np.add.outer(np.arange(200), np.arange(300)).astype(np.float32) / 500
    tif = write_raster(tmp_path / "p.tif", data, LEFT, TOP, RES, "EPSG:32638", nodata=-9999.0)
    legends = [product_legend("contamination_probability", 0, 1), product_legend("evidence_count", 0, 3),
               product_legend("clearance_sustainability", 0, 1), product_legend("recovery_rate", 0, 1)]

    def draw(k: int, folder: str):
        render_map(tif, tmp_path / folder / f"{k}.png", title=f"Map {k}", subtitle="s", unit="u",
                   legend=legends[k], districts=districts)
        return rgb(tmp_path / folder / f"{k}.png")

    alone = [draw(k, "alone") for k in range(4)]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(draw, range(4), ["threads"] * 4))
    for a, t in zip(alone, threaded):
        assert a.shape == t.shape and (a == t).all()


def test_report_escapes_text_links_maps_relatively_and_replaces_atomically(tmp_path):
    import pandas as pd

    table = pd.DataFrame({"district": ["<b>North</b>", "South"], "remaining_mines": [1234.5, 0.25],
                          "cells": np.array([1_210_000, 7], np.int64)})
    write_report(tmp_path / "report.html", title="T & co", subtitle="Run · SYNTHETIC",
                 maps=[("contamination_probability.png", "P_c", "probability <0.5"),
                       ("risk class.png", "Risk", "classes")],
                 table=table, notes=["open minemap.qgz in QGIS", "a <script> note"])
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'src="contamination_probability.png"' in text and 'src="risk%20class.png"' in text
    assert "&lt;b&gt;North&lt;/b&gt;" in text and "<b>" not in text and "T &amp; co" in text
    assert "<script" not in text and "&lt;script&gt;" in text and "probability &lt;0.5" in text
    # headers in words; remaining mines and cells are counts (no decimals)
    assert "Remaining mines (est.)" in text and "<th title=\"cells\">Cells</th>" in text
    assert "<td class='num'>1,234</td>" in text and "<td class='num'>0</td>" in text and "1,210,000" in text
    assert "<li>open minemap.qgz in QGIS</li>" in text
    assert "http" not in text  # no external resources
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
