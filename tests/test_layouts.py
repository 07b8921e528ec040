"""The print layouts as written into minemap.qgz (no QGIS needed; tests/test_qgis_layouts.py
exports them in real QGIS)."""

import xml.etree.ElementTree as ET
import zipfile

import pytest

from pipeline.runner import run
from world import X0, X1, Y0, Y1


def project(out) -> ET.Element:
    return ET.fromstring(zipfile.ZipFile(out / "minemap.qgz").read("minemap.qgs").decode().split("\n", 1)[1])


def test_world_briefing_layout_without_districts(world, tmp_path):
    world.write_text('label = "TEST DATA"\n' + world.read_text())
    run(world, tmp_path / "out", workers=1)
    root = project(tmp_path / "out")
    assert [lay.get("name") for lay in root.iter("Layout")] == ["minemap briefing"]  # no districts: no atlas
    layout = root.find("Layouts/Layout")
    names = {m.findtext("id"): m.findtext("layername") for m in root.iter("maplayer")}
    shown = [(e.text, e.get("name")) for e in layout.iter("Layer")]
    assert [n for _, n in shown] == ["Priority zones", "Contamination probability (P_c)"]
    assert all(names[i] == n for i, n in shown)  # the map and legend name the project's own layers
    legend = [e.get("id") for e in layout.iter("layer-tree-layer")]
    assert legend == [i for i, _ in shown]
    m = next(i for i in layout.iter("LayoutItem") if i.get("type") == "65639")
    ext = m.find("Extent")
    xmin, ymin, xmax, ymax = (float(ext.get(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
    w, h = (float(v) for v in m.get("size").split(",")[:2])
    assert (xmax - xmin) / (ymax - ymin) == pytest.approx(w / h)  # the item's shape: QGIS draws it unstretched
    assert (xmin, ymin) <= (X0, Y0) and (xmax, ymax) >= (X1, Y1)  # the whole 10 km square shown
    assert xmax - xmin == pytest.approx(X1 - X0)  # ... filling the map's width (170 mm wide, 172 mm high)
    assert (ymin + ymax) / 2 == pytest.approx((Y0 + Y1) / 2)  # centred
    grid = m.find("ComposerMapGrid")
    assert float(grid.get("intervalX")) == float(grid.get("intervalY")) == 2000  # ~4 lines across 10 km
    labels = {i.get("labelText") for i in layout.iter("LayoutItem") if i.get("type") == "65641"}
    assert "TEST DATA" in labels and "minemap — square" in labels


def test_atlas_scales_give_segments_of_1_2_or_5_km():
    from pipeline.writers.layouts import MAP_BOX, atlas_scales

    # by hand for one district 71.4 × 51.9 km on the 170 × 172 mm map with a 10 % margin: at least
    # 1:462,000 (71.4 km / 170 mm × 1.1). QGIS takes the first significant digit of the longest segment
    # that fits (`widest` mm): 21 mm at 1:470,000 is 9.9 km → 9 km (no), at 1:480,000 10.1 → 10 km;
    # 22 mm at 1:470,000 (462,000 to 2 figures, up) is 10.3 → 10 km: the least zoom lost, so 22 mm
    scales, widest = atlas_scales([(71_400, 51_900)])
    assert (scales, widest) == ([470_000.0], 22.0)
    boxes = [(71_400, 51_900), (32_000, 22_700), (1_000, 800), (2_000_000, 1_000_000), (0, 0)]
    scales, widest = atlas_scales(boxes)
    assert len(scales) == 4  # the empty district has none
    for s in scales:
        km = widest * s / 1e6  # the longest segment, in km
        assert f"{km:e}"[0] in "125", (s, km)
    for bw, bh in boxes[:4]:  # every district fits its page with its margin at one of the scales
        needed = max(bw / MAP_BOX[2], bh / MAP_BOX[3]) * 1000 * 1.1
        assert min(s for s in scales if s >= needed) / needed < 1.7
