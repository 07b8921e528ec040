"""The plugin object QGIS loads: it only registers (and removes) the Processing provider."""

from __future__ import annotations

from qgis.core import QgsApplication

from .provider import MinemapProvider


class MinemapPlugin:
    """Registers the provider from `initProcessing` (qgis_process, and QGIS for plugins declaring
    `hasProcessingProvider`) or `initGui` (the desktop), once."""

    def __init__(self, iface=None) -> None:
        self.iface = iface
        self.provider: MinemapProvider | None = None

    def initProcessing(self) -> None:  # noqa: N802 (QGIS's name)
        if self.provider is None:
            self.provider = MinemapProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self) -> None:  # noqa: N802 (QGIS's name)
        self.initProcessing()

    def unload(self) -> None:
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
