"""Run a minemap Processing algorithm in PyQGIS the way the Toolbox does (results loaded into the
project), and report the layers a user then sees.

Run with /usr/bin/python3: `qgis_plugin_check.py PLUGIN_FOLDER ALGORITHM_ID PARAMETERS_JSON [COMMAND]`
prints one JSON object: the results, each loaded layer (name, source, valid, renderer), the renderer
Processing alone gives a product (no default style) to show what the plugin's styling adds, the
provider's "minemap command" setting as loaded, and what unloading the plugin leaves. COMMAND, if
given, is set as that setting before the algorithm runs.
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingUtils, QgsProject  # noqa: E402


def main(plugin_folder: str, algorithm: str, parameters: dict, setting: str | None) -> dict:
    sys.path.insert(0, os.path.join(QgsApplication.pkgDataPath(), "python", "plugins"))
    from processing.core.Processing import Processing

    import processing

    Processing.initialize()
    sys.path.insert(0, plugin_folder)
    from minemap import classFactory

    plugin = classFactory(None)
    plugin.initProcessing()
    from processing.core.ProcessingConfig import ProcessingConfig

    default = ProcessingConfig.getSetting("MINEMAP_COMMAND")
    if setting:
        ProcessingConfig.setSettingValue("MINEMAP_COMMAND", setting)
    results = processing.runAndLoadResults(algorithm, parameters)
    layers = [{"name": layer.name(), "source": layer.source(), "valid": layer.isValid(),
               "renderer": layer.renderer().type()} for layer in QgsProject.instance().mapLayers().values()]
    store = QgsProcessingContext()  # owns the bare layer while it is looked at
    bare = QgsProcessingUtils.mapLayerFromString(results["PRODUCTS"][0], store) if results.get("PRODUCTS") else None
    plugin.unload()
    return {"results": dict(results), "layers": layers, "bare_renderer": bare.renderer().type() if bare else None,
            "setting_default": default,
            "unloaded": QgsApplication.processingRegistry().providerById("minemap") is None
            and ProcessingConfig.getSetting("MINEMAP_COMMAND") is None}


if __name__ == "__main__":
    app = QgsApplication([], False)
    app.initQgis()
    report = main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None)
    print(json.dumps(report))
    sys.stdout.flush()
    os._exit(0)  # QGIS's teardown after Processing may crash on exit; the report is out
