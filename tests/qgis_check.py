"""Open minemap outputs in real QGIS (Debian's python3-qgis, headless) and report what a user sees.

Run with /usr/bin/python3: `qgis_check.py OUT_DIR NAME [NAME ...]`; prints one JSON object per layer.
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (QgsApplication, QgsMapRendererSequentialJob, QgsMapSettings, QgsPointXY,  # noqa: E402
                       QgsRasterLayer)
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


def main() -> None:
    app = QgsApplication([], False)
    app.initQgis()
    out = sys.argv[1]
    print(json.dumps({name: inspect(os.path.join(out, f"{name}.tif")) for name in sys.argv[2:]}))
    app.exitQgis()


if __name__ == "__main__":
    main()
