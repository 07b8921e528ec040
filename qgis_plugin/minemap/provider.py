"""The "minemap" Processing provider: its algorithms and its one setting, the command to call."""

from __future__ import annotations

from qgis.core import QgsProcessingProvider

from .algorithms import ALGORITHMS, SETTING
from .command import DEFAULT


class MinemapProvider(QgsProcessingProvider):
    """Processing Toolbox entries for `minemap run`, `update`, `validate` and `evaluate`."""

    def id(self) -> str:
        return "minemap"

    def name(self) -> str:
        return "minemap"

    def longName(self) -> str:  # noqa: N802 (QGIS's name)
        return "minemap: landmine-contamination maps"

    def load(self) -> bool:
        try:
            from processing.core.ProcessingConfig import ProcessingConfig, Setting
        except ImportError:  # Processing's Python part not loaded: the command comes from the environment
            self.refreshAlgorithms()
            return True
        ProcessingConfig.settingIcons[self.name()] = self.icon()  # its page in Options → Providers
        ProcessingConfig.addSetting(Setting(self.name(), SETTING, "minemap command", DEFAULT,
                                            valuetype=Setting.STRING))
        ProcessingConfig.readSettings()
        self.refreshAlgorithms()
        return True

    def unload(self) -> None:
        try:
            from processing.core.ProcessingConfig import ProcessingConfig
        except ImportError:
            return
        if SETTING in ProcessingConfig.settings:
            ProcessingConfig.removeSetting(SETTING)

    def loadAlgorithms(self) -> None:  # noqa: N802 (QGIS's name)
        for algorithm in ALGORITHMS:
            self.addAlgorithm(algorithm())
