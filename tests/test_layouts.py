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
