"""report.html as people see it: rendered by a real browser (headless chromium), on screen and
printed, and its links and table as written."""

import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.image import imread

from pipeline.writers.columns import fmt

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
browser = pytest.mark.skipif(CHROMIUM is None or shutil.which("pdfimages") is None,
                             reason="chromium or poppler-utils not installed: run `make system-deps`")


def chromium(tmp: Path, page: Path, *args: str) -> None:
    """Headless chromium on `page` (a private profile: tests and people may run it at once; as
    root it needs --no-sandbox)."""
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    f"--user-data-dir={tmp / 'profile'}", *args, page.as_uri()],
                   check=True, capture_output=True, timeout=180)


def non_white(png: Path) -> float:
    return float((imread(png)[..., :3] < 0.94).any(axis=-1).mean())


def images(html: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', html)


@pytest.fixture(scope="module")
def printed(sample_out, tmp_path_factory) -> Path:
    """The sample's report printed to PDF by chromium (paper size from the report's print CSS)."""
    tmp = tmp_path_factory.mktemp("print")
    chromium(tmp, sample_out / "report.html", "--no-pdf-header-footer", f"--print-to-pdf={tmp / 'report.pdf'}")
    return tmp / "report.pdf"


@browser
def test_every_map_loads_in_the_browser(sample_out, printed):
    # each <img> that loaded is one image in the printed PDF, at its PNG's pixel size (a broken
    # image prints as its alt text, or a 16-pixel icon)
    srcs = images((sample_out / "report.html").read_text(encoding="utf-8"))
    assert len(srcs) == 8  # the sample's eight products (it releases land: released_share, residual)
    want = sorted(imread(sample_out / s).shape[1::-1] for s in srcs)  # (width, height)
    listing = subprocess.run(["pdfimages", "-list", str(printed)], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in listing.splitlines()[2:]]
    got = sorted((int(r[3]), int(r[4])) for r in rows if r[2] == "image")
    assert got == want


@browser
def test_the_page_on_screen_shows_the_maps(sample_out, tmp_path):
    # the same page without its images (only report.html copied) is the control: title and
    # captions alone; the real page must show far more colour than that
    shot, bare_dir = tmp_path / "shot.png", tmp_path / "bare"
    bare_dir.mkdir()
    shutil.copy(sample_out / "report.html", bare_dir / "report.html")
    chromium(tmp_path, sample_out / "report.html", "--hide-scrollbars", "--window-size=1400,3000",
             f"--screenshot={shot}")
    chromium(tmp_path, bare_dir / "report.html", "--hide-scrollbars", "--window-size=1400,3000",
             f"--screenshot={tmp_path / 'bare.png'}")
    full, bare = non_white(shot), non_white(tmp_path / "bare.png")
    # with images, the first two maps (~920 × 950 px each, mostly coloured region) fill the 1400 × 3000
    # window below the summary and the task table (measured 28 %); without, text and tables alone (7 %)
    assert full > 0.15 and bare < 0.1 and full > 3 * bare, (full, bare)


@browser
def test_printed_report_is_a4_landscape_with_the_whole_table(sample_out, printed):
    info = subprocess.run(["pdfinfo", str(printed)], capture_output=True, text=True, check=True).stdout
    size = next(line for line in info.splitlines() if line.startswith("Page size:")).split()
    assert abs(float(size[2]) - 841.9) < 1 and abs(float(size[4]) - 595.3) < 1  # A4 landscape, points
    text = subprocess.run(["pdftotext", "-layout", str(printed), "-"], capture_output=True, text=True,
                          check=True).stdout
    lines = [line.split() for line in text.splitlines()]
    table = pd.read_csv(sample_out / "districts.csv")
    # headers wrap over several lines; the one naming "District" ends with the last column's unit
    header = next(line for line in lines if line[:1] == ["District"] and "Assessment" in line)
    assert header[-1] == "(est.)"  # the last column's header (remaining mines) is on the page, not cut off
    for _, row in table.iterrows():
        # every district's row, from its name to its last column shown (the remaining mines, whole)
        line = next(line for line in lines if line and line[0] == row["district"])
        assert line[1] == fmt(row["area_km2"], 2) and line[-1] == fmt(row["remaining_mines"], 0), line


def test_report_links_every_file_and_reads_in_words(sample_out):
    html = (sample_out / "report.html").read_text(encoding="utf-8")
    links = re.findall(r'<a href="([^"]+)"', html)
    assert all(not re.match(r"[a-z]+:|/", link) for link in links)  # relative: the folder travels
    assert all((sample_out / link).is_file() for link in links)
    products = [p.stem for p in sample_out.glob("*.tif")]
    assert len(products) == 8
    want = {f"{p}{ext}" for p in products for ext in (".tif", ".qml")} | {
        "districts.gpkg", "priority_zones.gpkg", "districts.csv", "minemap.qgz", "item.json", "briefing.pdf", "catalog.json"}
    assert want <= set(links)
    districts = html[html.index("<h2>Districts</h2>"):]  # the district table (the tasks' table comes first)
    heads = re.findall(r"<th[^>]*>([^<]*)</th>", districts[:districts.index("</table>")])
    assert heads[:5] == ["District", "Area (km²)", "Assessed (share of area)", "Assessment", "Priority (1 = brief first)"]
    # the main columns, readable at 1,400 px (#22 §4): the mean the zones use, km² per class, the mines
    assert heads[5:] == ["Mean residual P_res (assessed cells)", "Low (km²)", "Medium (km²)", "High (km²)",
                         "Very high (km²)", "Not assessed (km²)", "Remaining mines (est.)"]
    assert "The main 12 of 24 columns; all of them in districts.csv." in html
    assert not [h for h in heads if "_" in h and h not in (
        "Mean P_c (assessed cells)", "Max P_c", "Mean P_c, all cells (not assessed too)", "Mean R_e",
        "Mean residual P_res (assessed cells)", "Max residual P_res")]
    # listed by priority: the mostly-not-assessed districts after every assessed one (issue #20)
    names = re.findall(r"<tr><td>([^<]*)</td>", re.search(r"<tbody>(.*?)</tbody>", districts).group(1))
    assert names[-2:] == ["Kalbajar", "Lachin"] and names[0] == "Aghdam", names
    # one rounding per column: every area cell has 2 decimals
    table = re.search(r"<tbody>(.*?)</tbody>", districts).group(1)
    areas = [re.findall(r"<td[^>]*>([^<]*)</td>", row)[1] for row in re.findall(r"<tr>(.*?)</tr>", table)]
    assert len(areas) == 9 and all(re.fullmatch(r"[\d,]+\.\d\d", a) for a in areas), areas
    assert "@page{size:A4 landscape" in html


def test_unknown_columns_get_readable_headers_and_one_rounding():
    from pipeline.writers.columns import column, readable

    assert column("km2_very_low") == ("Very low (km²)", 2)  # a class added later
    assert column("km2_insufficient_evidence") == ("Not assessed (km²)", 2)  # named as the maps' hatch
    assert column("released_km2_cleared") == ("Released cleared (km²)", 2)
    assert column("events_per_km2") == ("Events per km²", 2)
    assert column("mean_evidence_x") == ("Mean evidence x", 3)
    frame = pd.DataFrame({"district": ["A", "B"], "km2_new_class": [1.005, 12345.0], "mines": [2.6, 0.4],
                          "mean_pc": [0.1234, float("nan")], "flag": [True, False]})
    headers, rows, numeric = readable(frame)
    assert headers == ["District", "New class (km²)", "Mines", "Mean P_c", "Flag"]
    assert rows == [["A", "1.00", "3", "0.123", "True"], ["B", "12,345.00", "0", "–", "False"]]
    assert numeric == [False, True, True, True, False]


def measured(tmp: Path, report: Path, width: int) -> dict[str, int]:
    """The page's widths as chromium lays it out in a `width` px window: the document's scroll
    width and each table's own (a table in an overflow box scrolls inside it, not the page). A copy
    of the page with a script that writes them into the DOM, read back with --dump-dom."""
    page = report.read_text(encoding="utf-8")
    script = ("<script>document.addEventListener('DOMContentLoaded',()=>{const d=document.scrollingElement;"
              "const w=[...document.querySelectorAll('table')].map(t=>t.parentElement.scrollWidth-t.parentElement.clientWidth);"
              "document.body.setAttribute('data-measured',`${d.scrollWidth} ${Math.max(0,...w)}`)});</script>")
    copy = tmp / "measured.html"
    copy.write_text(page.replace("</head>", script + "</head>", 1), encoding="utf-8")
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                          f"--user-data-dir={tmp / 'profile'}", f"--window-size={width},1000", "--dump-dom",
                          copy.as_uri()], check=True, capture_output=True, text=True, timeout=180).stdout
    page_w, overflow = re.search(r'data-measured="(\d+) (\d+)"', dom).groups()
    return {"page": int(page_w), "table_overflow": int(overflow)}


@browser
def test_report_opens_with_the_summary_and_reads_at_1400_px(sample_out, tmp_path):
    """#22 §4: the summary and the top tasks come first, before the maps; the district table fits
    a 1,400 px window: no horizontal scrolling of the page nor inside the table's box."""
    html = (sample_out / "report.html").read_text(encoding="utf-8")
    heads = re.findall(r"<h2>([^<]*)</h2>", html)
    assert heads[:2] == ["Summary", "Where to send teams first: the top field tasks"]
    assert html.index("<h2>Summary</h2>") < html.index("<figure") and html.index("38SPJ88508350") < html.index("<figure")
    tasks = re.search(r"top field tasks</h2>.*?<tbody>(.*?)</tbody>", html, re.S).group(1)
    found = re.findall(r"<td>(\d{1,2}[C-X][A-Z]{2}\d{4,10})</td>", tasks)  # the MGRS references (10 m)
    every = pd.read_csv(sample_out / "tasks.csv")
    every["code"] = every["risk_class"].map({"low": 1, "medium": 2, "high": 3, "very high": 4})
    top = every.sort_values(["code", "mean_residual", "area_km2", "task_id"], ascending=[False, False, False, True])
    assert found == list(top["mgrs"][:10])
    assert "Mostly not assessed</strong> (too little evidence to rank: unknown, not safe): Kalbajar (7 % assessed), " \
           "Lachin (11 % assessed)." in html
    size = measured(tmp_path, sample_out / "report.html", 1400)
    assert size["page"] <= 1400 and size["table_overflow"] == 0, size
    narrow = measured(tmp_path, sample_out / "report.html", 700)  # the control: a narrow window does scroll
    assert narrow["table_overflow"] > 0, narrow
