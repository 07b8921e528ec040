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
    only — those of the district, and a neighbour's with a good part in it (≥ 10 % or ≥ 1 km²:
    Fuzuli's zone 5 runs 59 km² into Jabrayil, with Jabrayil's very high tasks) — and writes its
    scale (1 : N) beside the scale bar."""
    from pipeline.writers.briefing.district import MAP_BOX, district_view
    pdf = sample_out / "briefing.pdf"
    table = gpd.read_file(sample_out / "districts.gpkg").sort_values("priority", kind="stable")
    zones = gpd.read_file(sample_out / "priority_zones.gpkg")
    for name in ("Fuzuli", "Aghdam", "Jabrayil"):
        k = 2 + list(table["district"]).index(name)
        words = map_words(pdf, k)
        here = zones.intersection(table.loc[table["district"] == name].geometry.iloc[0]).area / 1e6
        shared = (zones["district"] != name) & (here >= np.minimum(0.1 * zones["area_km2"], 1.0))
        own = {str(r) for r in zones.loc[(zones["district"] == name) | shared, "rank"]}
        assert len(own) >= 3
        for rank, km2, total, home in zip(zones["rank"][shared], here[shared], zones["area_km2"][shared],
                                          zones["district"][shared]):  # when listed, with their km² here
            listed = re.search(rf"(^|\s)\*{rank} +(very high|high|medium|low) ", text(pdf, k), re.M) is not None
            said = f"*{rank}: {km2:.2f} of its {total:.2f} km² lie here; listed under {home}" in text(pdf, k)
            assert listed == said and (listed or name != "Jabrayil"), (name, rank)
        if name == "Jabrayil":
            assert list(zones["rank"][shared]) == [5] and round(here[shared].iloc[0]) == 59
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


def grid_labels(pdf: Path, page: int) -> list[tuple[str, float, tuple[float, float, float, float]]]:
    """The coordinate grid's labels on a page, as pdftotext reads them: the axis ("E", "N"), the
    value in metres, and the label's box (left, bottom, right, top) in inches from the page's
    bottom left. A label is numbers then "km" then E or N ("4 460 km N": its words share a column)."""
    from pipeline.writers.briefing.drawing import PAGE
    xml = subprocess.run(["pdftotext", "-bbox", "-f", str(page), "-l", str(page), str(pdf), "-"],
                         capture_output=True, text=True, check=True).stdout
    words = [(w, float(a) / 72, PAGE[1] - float(d) / 72, float(c) / 72, PAGE[1] - float(b) / 72) for a, b, c, d, w in
             re.findall(r'xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)<', xml)]
    out = []
    for k in range(1, len(words) - 1):
        if words[k][0] == "km" and words[k + 1][0] in ("E", "N"):
            first = k
            while first > 0 and words[first - 1][0].isdigit() and (  # the same line: same baseline (E) or column (N)
                    abs(words[first - 1][2] - words[k][2]) < 0.01 if words[k + 1][0] == "E"
                    else abs(words[first - 1][1] - words[k][1]) < 0.01):
                first -= 1
            if first < k:
                part = words[first:k + 2]
                box = (min(p[1] for p in part), min(p[2] for p in part), max(p[3] for p in part), max(p[4] for p in part))
                out.append((words[k + 1][0], 1000 * int("".join(p[0] for p in part[:-2])), box))
    return out


def test_district_pages_carry_a_labelled_coordinate_grid(sample_out, tmp_path):
    """#22 §2: each district map has a coordinate grid at a round interval of the grid's CRS,
    named once under the map, its lines labelled in the margin with their easting or northing:
    each label sits on the line it names (worked out here from the district's view and the map
    box) and a grid line is drawn there (darker pixels in that column of the map)."""
    import rasterio
    from pipeline.writers.briefing.district import MAP_BOX, district_view
    from pipeline.writers.briefing.drawing import PAGE
    pdf = sample_out / "briefing.pdf"
    with rasterio.open(sample_out / "residual_probability.tif") as ds:
        assert ds.crs.to_epsg() == 32638
    table = gpd.read_file(sample_out / "districts.gpkg").sort_values("priority", kind="stable")
    steps = {}
    for k, (name, geom) in enumerate(zip(table["district"], table.geometry), start=2):
        note = re.findall(r"Grid: WGS 84 / UTM zone 38N \(EPSG:32638\), lines every (\d+(?:\.\d)?) km", text(pdf, k))
        assert len(note) == 1, (name, text(pdf, k))  # named once on the page
        step = steps[name] = float(note[0]) * 1000
        view = district_view(geom)
        labels = grid_labels(pdf, k)
        centred = {"E": 0, "N": 0}
        for axis, lo, hi, start, size in (("E", view[0], view[2], MAP_BOX[0], MAP_BOX[2]),
                                          ("N", view[1], view[3], MAP_BOX[1], MAP_BOX[3])):
            values = [v for a, v, _ in labels if a == axis]
            assert 3 <= len(values) <= 6 or (axis == "N" and len(values) == 2), (name, axis, values)
            assert all(v % step == 0 for v in values) and all(lo < v < hi for v in values), (name, values, step)
            assert np.all(np.diff(sorted(values)) == step), (name, values)  # every line labelled
            for a, v, box in labels:
                if a != axis:
                    continue
                at = start + (v - lo) / (hi - lo) * size  # the line's place on the page, inches
                lo_in, hi_in = (box[0], box[2]) if axis == "E" else (box[1], box[3])
                assert lo_in - 0.03 < at < hi_in + 0.03, (name, axis, v, at, box)  # the label spans its line
                if abs((lo_in + hi_in) / 2 - at) < 0.03:
                    centred[axis] += 1
                # and beside the frame (pdftotext's boxes hold the font's whole height): eastings
                # under it, northings left of it
                assert ((box[1] + box[3]) / 2 < MAP_BOX[1] - 0.05 if axis == "E"
                        else (box[0] + box[2]) / 2 < MAP_BOX[0] - 0.05), (name, axis, box)
        assert centred["E"] >= 2 and centred["N"] >= 2, (name, centred)
    assert steps["Aghdam"] == 20_000 and steps["Jabrayil"] == 10_000  # 4 lines across Aghdam's 75 km view
    # the lines themselves, on Aghdam's page: a darker column of pixels at each labelled easting
    k = 2 + list(table["district"]).index("Aghdam")
    dpi = 200
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", "-f", str(k), "-l", str(k), "-singlefile", str(pdf),
                    str(tmp_path / "grid")], check=True)
    grey = imread(tmp_path / "grid.png")[..., :3].mean(axis=-1)
    view = district_view(table.loc[table["district"] == "Aghdam"].geometry.iloc[0])
    rows = slice(int((PAGE[1] - MAP_BOX[1] - MAP_BOX[3] + 0.2) * dpi), int((PAGE[1] - MAP_BOX[1] - 0.2) * dpi))
    for axis, v, _ in grid_labels(pdf, k):
        if axis == "E":
            col = round((MAP_BOX[0] + (v - view[0]) / (view[2] - view[0]) * MAP_BOX[2]) * dpi)
            line = grey[rows, col - 1:col + 2].min(axis=1)
            beside = (grey[rows, col - 6] + grey[rows, col + 6]) / 2
            assert np.mean(line < beside - 0.05) > 0.6, (v, np.mean(line < beside - 0.05))


def test_grid_interval_and_labels_by_hand():
    """The interval: the finest of 1, 2, 2.5, 5 × 10^k m with at most 6 lines along either axis."""
    from pyproj import CRS

    from pipeline.writers.briefing import mapgrid
    assert mapgrid.interval((0, 0, 82_000, 78_000)) == 20_000  # 10 km: 8 lines; 20 km: 4
    assert mapgrid.interval((0, 0, 26_000, 25_000)) == 5_000  # 5 lines
    assert mapgrid.interval((0, 0, 16_000, 15_000)) == 2_500  # 2 km: 7 lines; 2.5 km: 6
    assert mapgrid.interval((0, 0, 14_000, 13_000)) == 2_000  # 6 lines
    assert mapgrid.interval((640_100, 4_390_000, 640_900, 4_390_700)) == 200  # 800 m: 4 lines
    assert list(mapgrid.lines(640_100, 640_900, 200)) == [640_200, 640_400, 640_600, 640_800]
    assert list(mapgrid.lines(0, 10_000, 2_500)) == [2_500, 5_000, 7_500]  # none on the frame
    assert mapgrid.label(4_395_000, 5_000, "N") == "4 395 km N"
    assert mapgrid.label(687_500, 2_500, "E") == "687.5 km E"
    assert mapgrid.label(640_200, 200, "E") == "640 200 m E"
    assert mapgrid.words("WGS 84 / UTM zone 38N (EPSG:32638)", 2_500) == \
        "Grid: WGS 84 / UTM zone 38N (EPSG:32638), lines every 2.5 km"
    assert mapgrid.crs_words(CRS.from_epsg(32618).to_wkt()) == "WGS 84 / UTM zone 18N (EPSG:32618)"


LONG_REGION = "antioquia-nordeste-bajo-cauca-y-magdalena-medio-100m"
LONG_DISTRICT = "San José de la Montaña (Norte antioqueño, sector rural disperso)"
LONG_LABEL = ("SYNTHETIC sample data: not survey data, not for planning field work; do not distribute beyond the "
              "operations cell of the humanitarian demining programme")


def summary_of(out: Path, region: str, label: str, district: str | None = None, changes: list[str] | None = None):
    """Page 1 of the sample's pack as a figure, with the names given (a region, label and first
    district as long as a real programme's), drawn by an Agg canvas to measure its texts."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from pipeline.joins import class_column
    from pipeline.products import product_legend
    from pipeline.tasks import top_tasks
    from pipeline.writers.assessed import NotAssessed
    from pipeline.writers.briefing.brief import Briefing
    from pipeline.writers.briefing.cover import summary_page
    from pipeline.writers.briefing.pack import _on_grid, in_priority_order
    classes = ["low", "medium", "high", "very high"]
    districts = in_priority_order(gpd.read_file(out / "districts.gpkg"))
    tasks = gpd.read_file(out / "tasks.gpkg")
    if district:
        tasks["district"] = tasks["district"].replace(districts["district"].iloc[0], district)
        districts["district"] = [district, *districts["district"].iloc[1:]]
    b = Briefing(title=f"minemap — {region}", region=region, created="2026-01-02T03:04:05+00:00", version="0.2.0",
                 label=label, inputs={"mine_records.gpkg": ["H_m"]}, raster=out / "residual_probability.tif",
                 raster_title="Residual contamination probability (P_res)", unit="probability (0–1)",
                 legend=product_legend("residual_probability", 0, 1), districts=districts,
                 zones=gpd.read_file(out / "priority_zones.gpkg"), changes=changes,
                 hidden=NotAssessed(out / "risk_class.tif", "Not assessed: fewer than 2 of: mine records, soil map, "
                                    "drone survey"), as_of=("2026-12-07T15:30:00+00:00", f"/data/{region}_records.gpkg"),
                 classes=[(c, class_column(c)) for c in classes], tasks=top_tasks(tasks, classes, n=10))
    b.paged = _on_grid(b)
    fig = summary_page(b, 10)
    FigureCanvasAgg(fig).draw()
    return fig


def clashes(fig) -> list[str]:
    """Where a page's texts run into the map, into each other or off the page: the texts put on
    the page itself (headings, columns, footer) and the legends' texts, against the map's frame
    and each other (boxes as the renderer lays them out, 0.5 pt of slack); the ramp's title and
    ticks too."""
    renderer = fig.canvas.get_renderer()
    page = fig.bbox
    frame = next(ax for ax in fig.axes if ax.images).get_window_extent(renderer)
    texts = [(t.get_text(), t.get_window_extent(renderer)) for t in fig.texts if t.get_visible() and t.get_text().strip()]
    texts += [(t.get_text(), t.get_window_extent(renderer)) for legend in fig.legends for t in legend.get_texts()]
    texts += [(t.get_text(), t.get_window_extent(renderer)) for ax in fig.axes if not ax.images  # the ramp's title, ticks
              for t in [ax.title, *ax.get_xticklabels()] if t.get_visible() and t.get_text().strip()]
    found = []

    def meet(a, b) -> bool:
        return min(a.x1, b.x1) - max(a.x0, b.x0) > 0.5 and min(a.y1, b.y1) - max(a.y0, b.y0) > 0.5

    for k, (words, box) in enumerate(texts):
        if meet(box, frame):
            found.append(f"into the map: {words[:60]!r}")
        if box.x0 < page.x0 + 0.3 * 72 or box.x1 > page.x1 - 0.3 * 72 or box.y0 < page.y0 + 0.15 * 72:
            found.append(f"off the page: {words[:60]!r}")
        found += [f"{words[:40]!r} into {other[:40]!r}" for other, box2 in texts[k + 1:] if meet(box, box2)]
    return found


def test_summary_page_texts_keep_clear_of_the_map_and_each_other(sample_out, tmp_path):
    """#22 §2, "the cover layout is fixed": the red headline ran into the map frame. With the
    sample's names and with a programme's long region, label and district names and long change
    lines, no text on page 1 meets the map, another text or the page's edge."""
    assert clashes(summary_of(sample_out, "karabakh-100m", "SYNTHETIC sample data: not survey data, not for planning "
                              "field work")) == []
    changes = [f"Zone 12 (38TPK6647-1, {LONG_DISTRICT}, very high) grew from 1.2 km² to 3.4 km² since the run "
               "of 2026-11-30 and now reaches the road to Segovia"] * 5
    fig = summary_of(sample_out, LONG_REGION, LONG_LABEL, LONG_DISTRICT, changes)
    assert clashes(fig) == []
    words = " ".join(t.get_text() for t in fig.texts)
    assert f"minemap — {LONG_REGION}: summary" in words.replace("\n", " ")  # the headline whole
    assert " ".join(LONG_LABEL.split()) in " ".join(words.split())  # the label whole, in red under it
    # a region name longer than the page: the headline wraps and the columns start below it
    huge = "-".join([LONG_REGION] * 3)
    fig = summary_of(sample_out, huge, LONG_LABEL, LONG_DISTRICT, changes)
    assert clashes(fig) == []
    heading = fig.texts[0].get_text()
    assert heading.count("\n") >= 1 and heading.replace("\n", " ").replace("- ", "-").startswith("minemap")
    fig.savefig(tmp_path / "long.png", dpi=60)
