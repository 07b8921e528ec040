"""Export minemap.qgz's print layouts in real QGIS (Debian's python3-qgis, headless).

Run with /usr/bin/python3: `qgis_layouts_check.py FILE.qgz DIR [NAME,…]` exports the briefing layout to
DIR/briefing.pdf and .png and the atlas's first two pages (and those of the districts NAME,…) to PNG,
DIR/atlas_<page>.png, and prints one JSON object:
the layouts found, their items, the atlas's page count and each image's non-white share.
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (QgsApplication, QgsLayoutExporter, QgsLayoutUtils, QgsNumericFormatContext, QgsProject,  # noqa: E402
                       QgsSymbolLayer,
                       QgsUnitTypes)
from qgis.PyQt.QtCore import Qt  # noqa: E402
from qgis.PyQt.QtGui import QColor, QImage  # noqa: E402

BRIEFING, ATLAS = "minemap briefing", "minemap districts atlas"


def ink(png: str) -> float:
    """Share of pixels that are not (near) white, on a 4-pixel lattice."""
    image = QImage(png)
    points = [(x, y) for y in range(0, image.height(), 4) for x in range(0, image.width(), 4)]
    return sum(1 for x, y in points if QColor(image.pixel(x, y)).lightness() < 245) / len(points)


def items(layout) -> dict:
    """Item kinds on the page, with the labels' evaluated texts and the legend's entries."""
    found = {"labels": [], "legend": [], "legend_text": [], "maps": 0, "pictures": [], "scalebars": 0, "grids": 0,
             "scale": []}
    for item in layout.items():
        kind = type(item).__name__
        if kind == "QgsLayoutItemLabel":
            found["labels"].append(item.currentText())
        elif kind == "QgsLayoutItemLegend":
            model = item.model()
            found["legend"] = [n.name() for n in model.rootGroup().findLayers()]
            for n in model.rootGroup().findLayers():  # every line the legend prints, ramps' end labels too
                for node in model.layerLegendNodes(n):
                    found["legend_text"].append(str(node.data(Qt.DisplayRole) or ""))
                    if type(node).__name__ == "QgsColorRampLegendNode":
                        found["legend_text"] += [node.settings().minimumLabel(),
                                                 node.settings().maximumLabel()]
        elif kind == "QgsLayoutItemMap":
            found["maps"] += 1
            found["grids"] += item.grids().size()
            found["map_layers"] = [l.name() for l in item.layers()]
        elif kind == "QgsLayoutItemPicture":
            found["pictures"].append(item.picturePath())
        elif kind == "QgsLayoutItemScaleBar":
            found["scalebars"] += 1
            found["scale"].append({"units": QgsUnitTypes.toAbbreviatedString(item.units()),
                                   "per_segment": item.unitsPerSegment(), "segments": item.numberOfSegments(),
                                   "label": item.unitLabel(), "map_units_per_unit": item.mapUnitsPerScaleBarUnit(),
                                   "texts": bar_texts(item)})
    return found


def bar_texts(bar) -> list:
    """The scale bar's labels as QGIS prints them (its number format; the unit after the last)."""
    context = QgsNumericFormatContext()
    values = [k * bar.unitsPerSegment() for k in range(bar.numberOfSegments() + 1)]
    return [bar.numericFormat().formatDouble(v, context) for v in values]


def outline_widths(layout, project) -> dict:
    """The Districts outline width (mm) QGIS evaluates on the layout's current atlas page, by district."""
    layer = project.mapLayersByName("Districts")[0]
    prop = layer.renderer().symbol().symbolLayer(0).dataDefinedProperties().property(QgsSymbolLayer.PropertyStrokeWidth)
    context = layout.createExpressionContext()
    widths = {}
    for feature in layer.getFeatures():
        context.setFeature(feature)
        widths[feature["district"]] = prop.valueAsDouble(context, 0.0)[0]
    return widths


def _box(rect) -> list:
    return [rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()]


def main() -> None:
    app = QgsApplication([], False)
    app.initQgis()
    path, out = sys.argv[1], sys.argv[2]
    project = QgsProject.instance()
    report = {"read": project.read(path), "layouts": [l.name() for l in project.layoutManager().layouts()]}
    briefing = project.layoutManager().layoutByName(BRIEFING)
    if briefing is not None:
        report["briefing"] = items(briefing)
        report["briefing"]["outlines"] = outline_widths(briefing, project)
        exporter = QgsLayoutExporter(briefing)
        png, pdf = os.path.join(out, "briefing.png"), os.path.join(out, "briefing.pdf")
        settings = QgsLayoutExporter.ImageExportSettings()
        settings.dpi = 60
        settings.generateWorldFile = False
        report["briefing_png"] = exporter.exportToImage(png, settings) == QgsLayoutExporter.Success
        report["briefing_pdf"] = exporter.exportToPdf(pdf, QgsLayoutExporter.PdfExportSettings()) == QgsLayoutExporter.Success
        report["briefing_ink"] = ink(png)
        report["briefing_pdf_bytes"] = os.path.getsize(pdf) if os.path.exists(pdf) else 0
    atlas_layout = project.layoutManager().layoutByName(ATLAS)
    if atlas_layout is not None:
        atlas = atlas_layout.atlas()
        # the project's scales, as QGIS's layout designer and processing exports hand them to the atlas
        atlas_layout.renderContext().setPredefinedScales(QgsLayoutUtils.predefinedScales(atlas_layout))
        report["atlas"] = {"enabled": atlas.enabled(), "coverage": atlas.coverageLayer().name()
                           if atlas.coverageLayer() else None, "count": 0, "pages": []}
        atlas.beginRender()
        report["atlas"]["count"] = atlas.count()
        exporter = QgsLayoutExporter(atlas_layout)
        settings = QgsLayoutExporter.ImageExportSettings()
        settings.dpi = 60
        wanted = set(sys.argv[3].split(",")) if len(sys.argv) > 3 else set()
        for i in range(atlas.count()):
            atlas.seekTo(i)
            if i >= 2 and atlas.layout().reportContext().feature().attribute("district") not in wanted:
                continue
            png = os.path.join(out, f"atlas_{i}.png")
            ok = exporter.exportToImage(png, settings) == QgsLayoutExporter.Success
            page = {"ok": ok, "name": atlas.currentFilename(), "ink": ink(png) if ok else 0.0, "png": os.path.basename(png),
                    "district": atlas.layout().reportContext().feature().attribute("district"),
                    "labels": items(atlas_layout)["labels"], "outlines": outline_widths(atlas_layout, project),
                    "legend_text": items(atlas_layout)["legend_text"],
                    "extent": _box(atlas_layout.referenceMap().extent()),
                    "feature_box": _box(atlas.layout().reportContext().feature().geometry().boundingBox()),
                    "scale": atlas_layout.referenceMap().scale(), "scalebar": items(atlas_layout)["scale"]}
            report["atlas"]["pages"].append(page)
        atlas.endRender()
        report["atlas"]["items"] = items(atlas_layout)
        report["atlas"]["map_layers"] = report["atlas"]["items"].get("map_layers")
        report["atlas"]["scales"] = list(atlas_layout.renderContext().predefinedScales())
    print(json.dumps(report))
    app.exitQgis()


if __name__ == "__main__":
    main()
