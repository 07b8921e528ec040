"""minemap's QGIS plugin: a Processing provider calling the installed `minemap` command."""


def classFactory(iface):  # noqa: N802 (QGIS's name)
    """QGIS's entry point for the plugin (GUI and qgis_process alike)."""
    from .plugin import MinemapPlugin

    return MinemapPlugin(iface)
