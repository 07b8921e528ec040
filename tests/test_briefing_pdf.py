"""briefing.pdf: the pack a team lead hands on, read back with poppler's tools as a reader would."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread
from shapely.geometry import box

from faults import run_cli
from world import CRS, X0, X1, Y0, Y1

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None,
                                reason="poppler-utils not installed: run `make system-deps`")


def pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[1] for line in info.splitlines() if line.startswith("Pages:")))


def text(pdf: Path, page: int) -> str:
    return subprocess.run(["pdftotext", "-layout", "-f", str(page), "-l", str(page), str(pdf), "-"],
                          capture_output=True, text=True, check=True).stdout


def ink(pdf: Path, page: int, tmp: Path) -> float:
    """Share of the page (rendered at 50 dpi) that is not white."""
    subprocess.run(["pdftoppm", "-r", "50", "-png", "-f", str(page), "-l", str(page), "-singlefile", str(pdf),
                    str(tmp / f"p{page}")], check=True)
    rgb = imread(tmp / f"p{page}.png")[..., :3]
    return float((rgb < 0.94).any(axis=-1).mean())


MGRS = re.compile(r"\b\d{1,2}[C-X][A-Z]{2}\d{4,10}\b")


def test_sample_pack_opens_with_the_summary_and_a_page_per_district(sample_out, tmp_path):
    """#22 §2: page 1 is the answer: data as of, land assessed and per class, the top tasks with
    their MGRS references, the districts by priority with the mostly-not-assessed apart."""
    pdf = sample_out / "briefing.pdf"
    table = pd.read_csv(sample_out / "districts.csv")
    assert len(table) == 9
    assert pages(pdf) == 1 + len(table)  # a first run: no changes page
    summary = text(pdf, 1)
    assert "summary" in summary and "SYNTHETIC" in summary and "karabakh-100m" in summary
    assert "not a survey result" in summary  # the caveat
    record = json.loads((sample_out / "run.json").read_text())
    newest = json.loads((sample_out / "item.json").read_text())["properties"]["minemap:newest_input"]
    assert f"Data as of {newest_when(sample_out)} UTC (newest input: {Path(newest).name})" in " ".join(summary.split())
    assert f"run {record['created_utc'][:16].replace('T', ' ')} UTC" in summary
    # land: the district table's sums (assessed = the classes' km², not assessed = insufficient evidence)
    classes = ["very_high", "high", "medium", "low"]
    words = " ".join(summary.split())
    assert f"Assessed {sum(table[f'km2_{c}'].sum() for c in classes):,.1f}" in words
    assert f"Not assessed (unknown, not safe) {table['km2_insufficient_evidence'].sum():,.1f}" in words
    for c in classes:
        assert f"class {c.replace('_', ' ')} {table[f'km2_{c}'].sum():,.1f}" in words
    # the top 10 tasks, worked out here from tasks.csv: the highest class, then the highest mean
    tasks = pd.read_csv(sample_out / "tasks.csv")
    tasks["code"] = tasks["risk_class"].map({"low": 1, "medium": 2, "high": 3, "very high": 4})
    top = tasks.sort_values(["code", "mean_residual", "area_km2", "task_id"], ascending=[False, False, False, True]).head(10)
    listed = [line.split() for line in summary.splitlines() if MGRS.search(line)]
    assert [row[1] for row in listed] == list(top["mgrs"])  # the MGRS references, in order
    assert [row[-1] for row in listed] == list(top["task_id"])
    assert [row[2] for row in listed] == [f"{a:.2f}" for a in top["area_km2"]]
    assert all(" ".join(row[3:5]) == c for row, c in zip(listed, top["risk_class"]))  # all "very high" here
    # districts by priority; the mostly-not-assessed ones apart, below their own heading
    ranked = table.sort_values("priority")
    lines = summary.splitlines()
    at = [next(i for i, line in enumerate(lines) if f" {name} " in f" {line} " and "%" in line)
          for name in ranked["district"]]
    assert at == sorted(at)
    apart = next(i for i, line in enumerate(lines) if "Mostly not assessed" in line)
    mostly = ranked["assessment"] == "mostly not assessed"
    assert set(ranked["district"][mostly]) == {"Kalbajar", "Lachin"}
    assert all((i > apart) == m for i, m in zip(at, mostly))
    assert "First run in this folder: nothing to compare with." in summary
    for k, name in enumerate(table.sort_values("priority")["district"], start=2):  # briefed by priority
        page = text(pdf, k)
        assert f"District: {name}" in page
        assert "SYNTHETIC" in page  # the label in every page's footer
        assert f"page {k} of {len(table) + 1}" in page
        assert "Area (km²)" in page and "Remaining mines (est.)" in page  # words and units, not column names
        assert "km2_" not in page and "mean_pc" not in page
    # the maps are there: a district page's map box is 6.9 × 6.55 in of the 11.69 × 8.27 in page (47 %),
    # painted in P_c colours (no P_c colour is near-white); text alone covers a few per cent
    for k in (1, 2, len(table) + 1):
        share = ink(pdf, k, tmp_path)
        assert share > (0.12 if k == 1 else 0.3), (k, share)  # the summary's overview map is the region's shape


def newest_when(out: Path) -> str:
    """The newest input's time as the history item records it, as the pack writes it."""
    return json.loads((out / "item.json").read_text())["properties"]["datetime"][:16].replace("T", " ")


def test_sample_pack_lists_the_zones_of_each_district(sample_out):
    zones = gpd.read_file(sample_out / "priority_zones.gpkg")
    table = pd.read_csv(sample_out / "districts.csv")
    pdf = sample_out / "briefing.pdf"
    k = 2 + int(table.sort_values("priority").reset_index().index[table.sort_values("priority")["district"]
                                                                  == "Aghdam"][0])
    page = text(pdf, k)
    first = zones[zones["district"] == "Aghdam"].iloc[0]
    listed = [line.split()[-5:] for line in page.splitlines() if len(line.split()) >= 5]
    # a zone's row: rank, class (two words for "very high"), km², mean P_c (the residual: the sample releases land)
    want = [str(first["rank"]), *str(first["risk_class"]).split(), f"{first['area_km2']:.2f}",
            f"{first['mean_residual']:.3f}"]
    assert any(row[-len(want):] == want for row in listed), page


@pytest.fixture
def world_with_a_district(world: Path) -> Path:
    """The tiny world with one district, "Square", the whole 10 × 10 km region, and a label."""
    gpd.GeoDataFrame({"name": ["Square"]}, geometry=[box(X0, Y0, X1, Y1)], crs=CRS).to_file(
        world.parent / "districts.gpkg", driver="GPKG")
    world.write_text('label = "TEST WORLD: not real"\n' + world.read_text()
                     + '\n[districts]\npath = "districts.gpkg"\nname_field = "name"\n')
    return world


def test_world_district_page_shows_the_district_table(world_with_a_district, tmp_path):
    out = tmp_path / "out"
    result = run_cli("run", world_with_a_district, "--out", out, "--quiet")
    assert result.exit_code == 0, result.output
    pdf = out / "briefing.pdf"
    assert pages(pdf) == 2
    row = pd.read_csv(out / "districts.csv").iloc[0]
    page = text(pdf, 2)
    # the figures column's rows (-layout puts the map's words, e.g. its written scale, on the same lines, columns apart)
    cells = [re.split(r"\s{3,}", line.strip()) for line in page.splitlines() if line.strip()]
    lines = {c[-2]: c[-1] for c in reversed(cells) if len(c) >= 2}  # the figures before the zone list's header
    figures = {k: v for k, v in lines.items() if k.endswith(("(km²)", "P_c", "(est.)", "cells)"))}
    # by hand: 100 × 100 cells of 0.01 km²; the 100 mines lie in one cell, none of it cleared;
    # P_c is at most (H_m 1 + S_t 0.2) / 2 = 0.6 in the mine's cell (no drone data there)
    assert figures["Area (km²)"] == "100.00" == f"{row['area_km2']:.2f}"
    assert figures["Max P_c"] == "0.600" == f"{row['max_pc']:.3f}"
    assert figures["Remaining mines (est.)"] == "100" == f"{row['remaining_mines']:.0f}"
    # mean P_c: 100 drone cells (0 + 0.8 + 0.6) / 3, 4 900 sand cells 0.8 / 2, 4 999 rock cells
    # 0.2 / 2 and the mine's cell 0.6: 2 507.2 / 10 000
    assert figures["Mean P_c (assessed cells)"] == "0.251" == f"{row['mean_pc']:.3f}"
    assert [figures[f"{c} (km²)"] for c in ("Low", "Medium", "High", "Very high")] == ["49.99", "49.00", "1.00", "0.01"]
    # cleared: one whole cell (manual, CSC (0.9 + 0.6) / 2 · 1 = 0.75) and half a cell (mechanical,
    # CSC 0.325): 0.015 km², two thirds of it sustainable
    assert figures["Cleared (km²)"] == f"{row['cleared_km2']:.2f}"
    assert lines["Cleared land with CSC > 0.7 (share)"] == "0.667"
    # the zones: the mine's cell (very high) and the drone's 1 km² block (high)
    assert "1 very high 0.01 0.600" in " ".join(page.split()) and "2 high 1.00 0.467" in " ".join(page.split())
    # km² per class add up to the district's area
    classes = [v for k, v in figures.items() if k not in ("Area (km²)", "Cleared (km²)") and k.endswith("(km²)")]
    # (H_m and S_t are known everywhere: no cell has insufficient evidence)
    assert figures["Not assessed (km²)"] == "0.00"
    assert len(classes) == 5 and abs(sum(float(v) for v in classes) - 100) < 0.02
    assert "TEST WORLD" in page and "District: Square" in page


def test_evaluation_page_when_evaluate_has_run(world_with_a_district, tmp_path):
    out = tmp_path / "out"
    assert run_cli("run", world_with_a_district, "--out", out, "--quiet").exit_code == 0
    (out / "evaluation.json").write_text(json.dumps({
        "roc_auc": 0.8125, "events": 40,
        "capture": {"0.01": 0.1, "0.05": 0.35, "0.1": 0.5, "0.2": 0.7, "0.5": 0.95},
        "class_rates": [{"class": "low", "area_km2": 50.0, "events_per_km2": 0.1},
                        {"class": "high", "area_km2": 1.0, "events_per_km2": 5.0}]}))
    assert run_cli("run", world_with_a_district, "--out", out, "--quiet").exit_code == 0
    pdf = out / "briefing.pdf"
    assert pages(pdf) == 4  # the summary, changes since the first run, the district, the evaluation last
    assert "Changes since the previous run" in text(pdf, 2) and "No priority zone appeared" in text(pdf, 2)
    assert "District: Square" in text(pdf, 3)
    summary = text(pdf, 1).split("Since the previous run")[1]  # the summary says it too, in short
    assert "No priority zone appeared" in summary and "First run" not in summary
    page = text(pdf, 4)
    assert "Evaluation" in page and "0.812" in page and "evaluation.json written 20" in page
    assert "Capture curve" in page and "95 %" in page  # half the area holds 95 % of events
    assert "Class rates" in page and "Events per km²" in page and "5.00" in page
    assert "ROC AUC" in page and "Events" in page
    # (without evaluation.json the world's pack has 2 pages: test above)


def test_a_broken_evaluation_file_is_said_so(tmp_path):
    from pipeline.deliverables import _evaluation

    assert _evaluation(tmp_path / "evaluation.json") is None
    (tmp_path / "evaluation.json").write_text("{not json")
    assert "evaluation.json could not be read" in _evaluation(tmp_path / "evaluation.json")["problem"]
    (tmp_path / "evaluation.json").write_text("[1, 2]")
    assert "no JSON object" in _evaluation(tmp_path / "evaluation.json")["problem"]


def test_pdf_pages_are_a4_landscape(sample_out):
    info = subprocess.run(["pdfinfo", str(sample_out / "briefing.pdf")], capture_output=True, text=True,
                          check=True).stdout
    size = next(line for line in info.splitlines() if line.startswith("Page size:")).split()
    w, h = float(size[2]), float(size[4])
    assert abs(w - 841.9) < 1 and abs(h - 595.4) < 1  # points
    assert np.isclose(w / h, 297 / 210, atol=0.01)


def test_residual_risk_is_mapped_when_the_run_makes_it(sample_out, tmp_path):
    # released land (another product) gives residual_probability: the pack maps it instead of P_c
    from conftest import REPO
    from pipeline.deliverables import write_briefing_pack
    from pipeline.runner import load_inputs
    from pipeline.products import product_legend

    inputs = load_inputs(REPO / "sample_data" / "minemap.toml")
    pc = sample_out / "contamination_probability.tif"
    legend = product_legend("contamination_probability", 0, 1)
    names = ["contamination_probability", "residual_probability"]
    tables = {"districts": gpd.read_file(sample_out / "districts.gpkg").iloc[:1]}
    write_briefing_pack(tmp_path, sample_out, dict.fromkeys(names, pc), inputs.cfg, inputs.grid, inputs.layers,
                        dict.fromkeys(names, legend), {names[0]: "Contamination probability (P_c)",
                                                       names[1]: "Residual risk after release"},
                        dict.fromkeys(names, "probability"), tables, "2026-01-02T03:04:05+00:00", "9.9")
    pdf = tmp_path / "briefing.pdf"
    assert pages(pdf) == 2
    assert "Residual risk after release" in text(pdf, 1) and "Residual risk after release" in text(pdf, 2)
    assert "2026-01-02 03:04 UTC" in text(pdf, 2) and "minemap 9.9" in text(pdf, 2)


def test_capture_curve_is_read_from_each_likely_shape():
    from pipeline.writers.briefing.evaluation import _capture, _flat

    want = [(1.0, 10.0), (5.0, 30.0), (50.0, 90.0)]
    # values at the shares listed beside them (in either order), a {share: value} map inside a
    # section, and rows of dicts; shares and values as fractions or as per cent
    assert _capture({"capture_at": [0.01, 0.05, 0.5], "capture": [0.1, 0.3, 0.9]}) == want
    assert _capture(_flat({"metrics": {"roc_auc": 0.7, "capture": {"1": 10, "5": 30, "50": 90}}})) == want
    assert _capture({"capture_curve": [{"area_share": 0.5, "captured": 0.9}, {"area_share": 0.01, "captured": 0.1},
                                       {"area_share": 0.05, "captured": 0.3}]}) == want
    assert _capture({"roc_auc": 0.7}) == [] and _capture({"capture": "n/a"}) == []


def map_words(pdf: Path, page: int) -> list[str]:
    """The words pdftotext finds inside a district page's map box (MAP_BOX, in points from the top)."""
    from pipeline.writers.briefing.district import MAP_BOX
    from pipeline.writers.briefing.drawing import PAGE
    xml = subprocess.run(["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(pdf), "-"],
                         capture_output=True, text=True, check=True).stdout
    x0, x1 = MAP_BOX[0] * 72, (MAP_BOX[0] + MAP_BOX[2]) * 72
    top, bottom = (PAGE[1] - MAP_BOX[1] - MAP_BOX[3]) * 72, (PAGE[1] - MAP_BOX[1]) * 72
    words = re.findall(r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<', xml)
    return [w for a, b, c, d, w in words if x0 <= float(a) and float(c) <= x1 and top <= float(b) and float(d) <= bottom]


def test_written_scale_by_hand():
    from pipeline.writers.briefing.district import written_scale
    # 70 km drawn 6.9 in (0.17526 m) wide: 1 : 399 406, to two significant figures
    assert written_scale(70_000, 6.9) == 400_000
    assert written_scale(10_000, 6.9) == 57_000  # 57 060
    assert written_scale(1_000, 10) == 3_900  # 3 937
    assert written_scale(5, 10) == 20  # 19.7: never 0


def test_district_pages_number_only_their_own_zones_and_write_their_scale(sample_out):
    """#22 §2: Fuzuli's map showed other districts' zone numbers; each page numbers its own zones
    only, and writes its scale (1 : N) beside the scale bar."""
    from pipeline.writers.briefing.district import MAP_BOX, district_view
    pdf = sample_out / "briefing.pdf"
    table = gpd.read_file(sample_out / "districts.gpkg").sort_values("priority", kind="stable")
    zones = gpd.read_file(sample_out / "priority_zones.gpkg")
    for name in ("Fuzuli", "Aghdam"):
        k = 2 + list(table["district"]).index(name)
        words = map_words(pdf, k)
        own = {str(r) for r in zones.loc[zones["district"] == name, "rank"]}
        assert len(own) >= 3
        numbers = [w for w, after in zip(words, words[1:] + [""]) if w.isdigit() and after != "km"]  # not "10 km"
        assert set(numbers) == own, (name, sorted(numbers), sorted(own))
        geom = table.loc[table["district"] == name].geometry.iloc[0]
        x0, y0, x1, y1 = geom.bounds
        view = district_view(geom)
        assert view[0] <= x0 and x1 <= view[2]  # the district is all on the map
        n = (view[2] - view[0]) / (MAP_BOX[2] * 0.0254)  # ground metres per metre of A4
        written = re.search(r"Scale 1 : ([\d ]+) \(printed on A4\)", text(pdf, k)).group(1)
        assert abs(int(written.replace(" ", "")) - n) / n < 0.05 and written.endswith("0 000")


def test_many_records_are_counted_per_square_few_are_dots(sample_out):
    """#22 §2: Fuzuli's map was hundreds of record dots; above 200 records in a page's view they
    are counted per square (circles), below they stay dots. The count in view is worked out here
    from the records files."""
    import rasterio
    import shapely
    from pipeline.writers.briefing.district import RECORDS_AS_DOTS, district_view, record_counts
    root = Path(__file__).resolve().parent.parent / "sample_data"
    with rasterio.open(sample_out / "residual_probability.tif") as ds:
        crs = ds.crs
    points = pd.concat([gpd.read_file(root / f).to_crs(crs) for f in ("mine_records.gpkg", "minefields.gpkg")])
    points = points[points.geom_type == "Point"]
    table = gpd.read_file(sample_out / "districts.gpkg").sort_values("priority", kind="stable")
    seen = {}
    for k, (name, geom) in enumerate(zip(table["district"], table.geometry), start=2):
        n = int(shapely.intersects(points.geometry.values, shapely.box(*district_view(geom))).sum())
        page = " ".join(text(sample_out / "briefing.pdf", k).split())
        seen[name] = n
        if n > RECORDS_AS_DOTS:
            assert re.search(rf"mine records per \d+ km square \(circle area ∝ count; {n:,} in view\)", page), (name, n)
        else:
            assert "mine record " in page and "mine records per" not in page, (name, n)
    assert seen["Fuzuli"] > RECORDS_AS_DOTS and min(seen.values()) < RECORDS_AS_DOTS  # both kinds of page
    # the squares' counts add up to the records, each in the square holding it
    pts = np.array([[0.5, 0.5], [1.5, 0.2], [1.9, 1.9], [2500.0, 10.0]])
    side, centres, counts = record_counts(pts, (0, 0, 30_000, 30_000))
    assert side == 1000 and counts.sum() == 4
    assert sorted(zip(map(tuple, centres), counts)) == [((500.0, 500.0), 3), ((2500.0, 500.0), 1)]
