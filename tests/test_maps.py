"""PNG maps (colours as the .qml styles) and the HTML report."""

import numpy as np
from matplotlib.image import imread

from pipeline.writers.maps import render_map
from pipeline.writers.report import write_report
from pipeline.writers.styles import product_legend, risk_class_legend

from world import write_raster


def colours(png) -> dict[tuple[int, int, int], int]:
    """Pixel count per colour (a legend patch is ~150 pixels; map areas are thousands)."""
    rgb = (imread(png)[..., :3] * 255).round().astype(int).reshape(-1, 3)
    values, counts = np.unique(rgb, axis=0, return_counts=True)
    return {tuple(int(x) for x in v): int(c) for v, c in zip(values, counts)}


def hex_rgb(h: str) -> tuple[int, int, int]:
    return tuple(int(h[k:k + 2], 16) for k in (1, 3, 5))


def test_csc_classes_break_exactly_at_0_7(tmp_path):
    # west half CSC 0.7 (not above 0.7: "below threshold"), east half 0.71 (sustainable), a nodata strip
    data = np.full((100, 100), 0.7, np.float32)
    data[:, 50:] = 0.71
    data[:10, :] = -9999
    tif = write_raster(tmp_path / "csc.tif", data, 500_000, 4_410_000, 100.0, "EPSG:32638", nodata=-9999.0)
    render_map(tif, tmp_path / "csc.png", title="CSC", subtitle="test", unit="coefficient",
               legend=product_legend("clearance_sustainability", 0.7, 0.71))
    seen = colours(tmp_path / "csc.png")
    # each half is ~45 % of a ~650 × 650-pixel map: far more than a legend patch
    assert seen[hex_rgb("#fc8d59")] > 50_000 and seen[hex_rgb("#91cf60")] > 50_000  # 0.50–0.70, 0.70–0.85
    assert 0 < seen.get(hex_rgb("#d73027"), 0) < 1_000  # only its legend patch: every class is listed
    assert seen[(255, 255, 255)] > 50_000  # nodata strip and page are white


def test_sample_maps_show_every_class_and_the_report_bundles_them(sample_out):
    seen = colours(sample_out / "risk_class.png")
    for stop in risk_class_legend(["low", "medium", "high", "very high"], [0.3, 0.45, 0.6]).stops:
        assert seen.get(hex_rgb(stop.color), 0) > 1_000, stop.label  # on the map, not only in the legend
    report = (sample_out / "report.html").read_text()
    for name in ("contamination_probability", "risk_class", "environmental_impact", "recovery_rate",
                 "clearance_sustainability", "evidence_count"):
        assert f"src='{name}.png'" in report and (sample_out / f"{name}.png").stat().st_size > 20_000
    assert "Khojavend" in report and "remaining_mines" in report and "SYNTHETIC" in report


def test_report_escapes_text_and_replaces_atomically(tmp_path):
    import pandas as pd

    table = pd.DataFrame({"district": ["<b>North</b>", "South"], "remaining_mines": [1234.5, 0.25]})
    write_report(tmp_path / "report.html", title="T & co", subtitle="s", maps=[("a.png", "A", "cap")], table=table)
    text = (tmp_path / "report.html").read_text()
    assert "&lt;b&gt;North&lt;/b&gt;" in text and "<b>North" not in text and "T &amp; co" in text
    assert "1,234" in text or "1,235" in text
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]
