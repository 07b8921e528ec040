"""Open minemap outputs in real QGIS (Debian's python3-qgis, headless) and report what a user sees.

Run with /usr/bin/python3: `qgis_check.py OUT_DIR NAME [NAME ...]` prints one JSON object per layer;
`qgis_check.py --project FILE.qgz PNG` opens the project, reports its layers and renders it to PNG.
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (QgsApplication, QgsMapRendererSequentialJob, QgsMapSettings, QgsPointXY,  # noqa: E402
                       QgsProject, QgsRasterLayer, QgsRectangle)
from qgis.PyQt.QtCore import QSize  # noqa: E402
from qgis.PyQt.QtGui import QColor  # noqa: E402


def inspect(path: str) -> dict:
    layer = QgsRasterLayer(path, os.path.basename(path))
    report = {"valid": layer.isValid()}
    if not layer.isValid():
        return report
    _, style_ok = layer.loadDefaultStyle()
    provider = layer.dataProvider()
    ext = layer.extent()
    corner = QgsPointXY(ext.xMinimum() + layer.rasterUnitsPerPixelX() / 2,
                        ext.yMaximum() - layer.rasterUnitsPerPixelY() / 2)
    value, sampled = provider.sample(corner, 1)
    report.update(
        style_loaded=style_ok,
        renderer=layer.renderer().type(),
        crs=layer.crs().authid(),
        has_nodata=provider.sourceHasNoDataValue(1),
        nodata=provider.sourceNoDataValue(1),
        corner_is_nodata=not sampled or value != value,
        painted_share=painted_share(layer),
    )
    return report


def painted_share(layer: QgsRasterLayer, size: int = 300) -> float:
    """Share of a rendered image's pixels that the layer painted (background is transparent)."""
    settings = QgsMapSettings()
    settings.setLayers([layer])
    settings.setDestinationCrs(layer.crs())
    settings.setExtent(layer.extent())
    settings.setOutputSize(QSize(size, size))
    settings.setBackgroundColor(QColor(0, 0, 0, 0))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    painted = sum(1 for y in range(0, size, 2) for x in range(0, size, 2) if QColor(image.pixelColor(x, y)).alpha() > 0)
    return painted / (size // 2) ** 2


def short_labels(layer) -> dict:
    """The label text QGIS evaluates for each feature (the label expression), by its task_id."""
    from qgis.core import QgsExpression, QgsExpressionContext, QgsExpressionContextUtils

    expression = QgsExpression(layer.labeling().settings().fieldName)
    context = QgsExpressionContext(QgsExpressionContextUtils.globalProjectLayerScopes(layer))
    out = {}
    for feature in layer.getFeatures():
        context.setFeature(feature)
        out[feature["task_id"]] = expression.evaluate(context)
    return out


def inspect_project(path: str, png: str) -> dict:
    """What a user sees opening the project: groups, layers (valid, renderer, labels), a render."""
    project = QgsProject.instance()
    report = {"read": project.read(path), "crs": project.crs().authid(), "groups": [], "layers": []}
    root = project.layerTreeRoot()
    for group in root.children():
        report["groups"].append(group.name())
        for node in group.children():
            layer = node.layer()
            entry = {"name": node.name(), "group": group.name(), "visible": node.isVisible(),
                     "valid": bool(layer and layer.isValid())}
            if entry["valid"]:
                entry["source"] = layer.source()
                entry["crs"] = layer.crs().authid()
                entry["renderer"] = layer.renderer().type()
                if hasattr(layer, "labelsEnabled"):
                    entry["labels"] = layer.labeling().settings().fieldName if layer.labelsEnabled() else None
                    entry["features"] = layer.featureCount()
                    if layer.labelsEnabled():  # labels shown from 1:label_scale inwards (0: always)
                        settings = layer.labeling().settings()
                        entry["label_scale"] = settings.minimumScale if settings.scaleVisibility else 0
                        entry["label_priority"] = settings.priority
                    entry["draw_scale"] = layer.minimumScale() if layer.hasScaleBasedVisibility() else 0
                if entry["renderer"] == "categorizedSymbol":  # value → outline colour(s), top layer last
                    entry["field"] = layer.renderer().classAttribute()
                    entry["categories"] = {c.value(): [c.symbol().symbolLayer(i).color().name()
                                                       for i in range(c.symbol().symbolLayerCount())]
                                           for c in layer.renderer().categories()}
                    entry["short_ids"] = short_labels(layer)
                    categories = layer.renderer().categories()  # kept: the symbols live as long as the list
                    symbol = categories[0].symbol()  # its lines drawn inside the polygon by (mm)
                    entry["insets"] = [symbol.symbolLayer(i).offset() for i in range(symbol.symbolLayerCount())]
            report["layers"].append(entry)
    settings = QgsMapSettings()
    settings.setLayers(root.checkedLayers())
    settings.setDestinationCrs(project.crs())
    extent = [l for l in root.checkedLayers() if l.type() == l.RasterLayer][0].extent()
    settings.setExtent(extent)
    settings.setOutputSize(QSize(700, 800))
    settings.setBackgroundColor(QColor(255, 255, 255, 255))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    image = job.renderedImage()
    image.save(png)
    colours = {image.pixel(x, y) for y in range(0, 800, 4) for x in range(0, 700, 4)}
    white = sum(1 for y in range(0, 800, 4) for x in range(0, 700, 4) if QColor(image.pixel(x, y)).lightness() > 250)
    report["render"] = {"distinct_colours": len(colours), "white_share": white / (200 * 175)}
    tasks = project.mapLayersByName("Field tasks")
    if tasks:  # the labels QGIS places around the first task (zone 1's) at two scales
        centre = next(tasks[0].getFeatures()).geometry().centroid().asPoint()
        report["labels_at"] = {str(scale): labels_at(project, centre, scale, png.replace(".png", f"_{scale}.png"))
                               for scale in (50_000, 100_000)}
    return report


def labels_at(project, centre, scale: int, png: str) -> dict:
    """Labels placed per layer name on a 1000 × 800 px (96 dpi) render at 1:`scale` about `centre`."""
    settings = QgsMapSettings()
    settings.setLayers(project.layerTreeRoot().checkedLayers())
    settings.setDestinationCrs(project.crs())
    settings.setOutputDpi(96)
    settings.setOutputSize(QSize(1000, 800))
    half = 0.5 * scale * 0.0254 / 96  # metres per pixel / 2
    settings.setExtent(QgsRectangle(centre.x() - 1000 * half, centre.y() - 800 * half,
                                    centre.x() + 1000 * half, centre.y() + 800 * half))
    job = QgsMapRendererSequentialJob(settings)
    job.start()
    job.waitForFinished()
    job.renderedImage().save(png)
    names = {layer.id(): layer.name() for layer in project.mapLayers().values()}
    counts: dict = {}
    for label in job.takeLabelingResults().allLabels():
        counts[names[label.layerID]] = counts.get(names[label.layerID], 0) + 1
    return counts


def main() -> None:
    app = QgsApplication([], False)
    app.initQgis()
    if sys.argv[1] == "--project":
        print(json.dumps(inspect_project(sys.argv[2], sys.argv[3])))
    else:
        out = sys.argv[1]
        print(json.dumps({name: inspect(os.path.join(out, f"{name}.tif")) for name in sys.argv[2:]}))
    app.exitQgis()


if __name__ == "__main__":
    main()
