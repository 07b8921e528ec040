"""Install a plugin zip as QGIS's Plugin Manager does ("Install from ZIP"), in a fresh profile, and
report what QGIS then has: the installed folder, the active plugins, the Processing algorithms.

Run with /usr/bin/python3: `qgis_plugin_zip_check.py ZIP PROFILE_FOLDER` prints one JSON object.
It calls the Plugin Manager's own code (pyplugin_installer's installFromZipFile); only what the
desktop application sets up before it is done here: the profile's plugin folder on sys.path and in
qgis.utils (as QgsPythonUtils does), a stand-in `iface` for the message bar it reports to, and
message boxes that record their text instead of waiting for a click.
"""

import json
import os
import sys
from unittest import mock

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import QgsApplication, QgsSettings  # noqa: E402


def main(zip_path: str) -> dict:
    import qgis.utils

    plugins = os.path.join(QgsApplication.qgisSettingsDirPath(), "python", "plugins")
    qgis.utils.home_plugin_path = plugins  # what QgsPythonUtils sets in the desktop application
    sys.path.insert(0, plugins)
    qgis.utils.iface = iface = mock.MagicMock()  # before pyplugin_installer imports it
    sys.path.insert(0, os.path.join(QgsApplication.pkgDataPath(), "python", "plugins"))  # Processing
    sys.path.insert(0, os.path.join(QgsApplication.pkgDataPath(), "python"))  # pyplugin_installer
    from processing.core.Processing import Processing

    Processing.initialize()
    import pyplugin_installer

    # a refusal opens a modal message box, which would wait for a click forever: record its text instead
    boxes = pyplugin_installer.installer.QMessageBox = mock.MagicMock()
    pyplugin_installer.instance().installFromZipFile(zip_path)
    provider = QgsApplication.processingRegistry().providerById("minemap")
    pushed = [str(c.args[0]) for c in iface.pluginManagerInterface().pushMessage.call_args_list]
    return {"profile_plugins": plugins,
            "installed": sorted(os.listdir(os.path.join(plugins, "minemap"))) if os.path.isdir(
                os.path.join(plugins, "minemap")) else [],
            "active": "minemap" in qgis.utils.active_plugins,
            "enabled_setting": QgsSettings().value("/PythonPlugins/minemap", False, type=bool),
            "settings_file": QgsSettings().fileName(),
            "provider": provider.name() if provider else None,
            "algorithms": sorted(a.id() for a in provider.algorithms()) if provider else [],
            "messages": pushed,
            "dialogs": [str(c.args[0]) for c in boxes.return_value.setText.call_args_list]}


def isolate_settings(profile: str) -> None:
    """Settings in the profile's QGIS/QGIS3.ini, as the desktop application keeps them (main.cpp),
    not in the user's home: the profile is fresh, nothing is left behind."""
    from qgis.PyQt.QtCore import QCoreApplication, QSettings

    QCoreApplication.setOrganizationName(QgsApplication.QGIS_ORGANIZATION_NAME)
    QCoreApplication.setOrganizationDomain(QgsApplication.QGIS_ORGANIZATION_DOMAIN)
    QCoreApplication.setApplicationName(QgsApplication.QGIS_APPLICATION_NAME)
    QSettings.setDefaultFormat(QSettings.IniFormat)
    QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, profile)


if __name__ == "__main__":
    isolate_settings(sys.argv[2])
    app = QgsApplication([], True, sys.argv[2])
    app.initQgis()
    print(json.dumps(main(sys.argv[1])))
    sys.stdout.flush()
    os._exit(0)  # QGIS's teardown after Processing may crash on exit; the report is out
