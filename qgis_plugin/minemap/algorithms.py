"""Processing algorithms `minemap:run`, `update`, `validate`, `evaluate`: each one minemap command.

They call the installed command (see `command.py`), relay its lines and progress to the Processing
log, turn a refusal into a `QgsProcessingException` carrying minemap's own messages (file and
problem), and load the products in OUT into the project with their `.qml` styles.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from qgis.core import (QgsProcessingAlgorithm, QgsProcessingContext, QgsProcessingException,
                       QgsProcessingLayerPostProcessorInterface, QgsProcessingOutputBoolean, QgsProcessingOutputFolder,
                       QgsProcessingOutputMultipleLayers, QgsProcessingOutputNumber, QgsProcessingOutputString,
                       QgsProcessingParameterBoolean, QgsProcessingParameterFile,
                       QgsProcessingParameterFolderDestination, QgsProcessingParameterNumber,
                       QgsProcessingParameterString)

from qgis.PyQt import sip

from .command import EXIT_OK, EXIT_REJECTED, CommandMissing, Outcome, arguments, command, execute

STATUS = re.compile(r"^(up to date|updated|full run)\b")
SETTING = "MINEMAP_COMMAND"  # the provider's "minemap command" setting
MEANING = {1: "unexpected failure, a bug in minemap: please report it", 2: "bad config or input, nothing written",
           75: "another minemap process is writing the output folder"}  # minemap's documented exit codes


def setting_value() -> str | None:
    """The "minemap command" of Processing → Options → Providers → minemap (None outside QGIS's
    Processing framework)."""
    try:
        from processing.core.ProcessingConfig import ProcessingConfig
    except ImportError:
        return None
    return ProcessingConfig.getSetting(SETTING)


class LoadDefaultStyle(QgsProcessingLayerPostProcessorInterface):
    """Applies the `.qml` beside a product: layers Processing loads on completion do not get it.

    Processing runs a clone of the algorithm, deletes it before loading the layers, and deletes
    each post-processor with its context (it owns them); so `create` keeps every new one referenced
    here, not by the algorithm, and forgets those QGIS has deleted.
    """

    alive: list = []

    @classmethod
    def create(cls) -> "LoadDefaultStyle":
        cls.alive = [p for p in cls.alive if not sip.isdeleted(p)]
        cls.alive.append(cls())
        return cls.alive[-1]

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS's name)
        message, ok = layer.loadDefaultStyle()
        if not ok:
            feedback.pushWarning(f"{layer.source()}: its style (.qml) was not applied: {message}")
        layer.triggerRepaint()


class MinemapAlgorithm(QgsProcessingAlgorithm):
    """One `minemap ACTION CONFIG …` call; subclasses name the action and say what it does."""

    ACTION = ""
    TITLE = ""
    HELP = ""
    OUT_EXISTS = False  # OUT is a finished run's folder to read, not one to (re)write

    def name(self) -> str:
        return self.ACTION

    def displayName(self) -> str:  # noqa: N802 (QGIS's name)
        return self.TITLE

    def shortHelpString(self) -> str:  # noqa: N802 (QGIS's name)
        return self.HELP + ("<p>Calls the installed <code>minemap</code> command: set its path in Processing → "
                            "Options → Providers → minemap (or the MINEMAP_COMMAND environment variable).</p>")

    def createInstance(self):  # noqa: N802 (QGIS's name)
        return type(self)()

    def initAlgorithm(self, config=None) -> None:  # noqa: N802 (QGIS's name)
        self.addParameter(QgsProcessingParameterFile("CONFIG", "minemap configuration (.toml)", extension="toml"))
        if self.OUT_EXISTS:
            self.addParameter(QgsProcessingParameterFile("OUT", "Output folder of a run",
                                                         behavior=QgsProcessingParameterFile.Folder))
            self.addOutput(QgsProcessingOutputFolder("OUT", "Output folder"))
        elif self.ACTION != "validate":
            self.addParameter(QgsProcessingParameterFolderDestination("OUT", "Output folder"))
        self.addParameter(QgsProcessingParameterFile("GRID", "Grid definition (.toml; default: the config's grid)",
                                                     extension="toml", optional=True))
        if self.ACTION != "validate":
            self.addParameter(QgsProcessingParameterNumber(
                "WORKERS", "Chunks computed at once (default: all cores)", QgsProcessingParameterNumber.Integer,
                optional=True, minValue=1))
        self.extra_parameters()
        if self.ACTION != "validate":
            self.addParameter(QgsProcessingParameterBoolean("LOAD_OUTPUTS", "Open the products in the project",
                                                            defaultValue=True))
            self.addOutput(QgsProcessingOutputMultipleLayers("PRODUCTS", "Products"))
            self.addOutput(QgsProcessingOutputNumber("PRODUCT_COUNT", "Number of products"))

    def extra_parameters(self) -> None:
        """Parameters only this action takes."""

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802 (QGIS's name)
        out = (self.parameterAsFile(parameters, "OUT", context) if self.OUT_EXISTS
               else self.parameterAsFileOutput(parameters, "OUT", context) if self.ACTION != "validate" else None)
        workers = parameters.get("WORKERS")
        argv = command(setting_value()) + arguments(
            self.ACTION, self.parameterAsFile(parameters, "CONFIG", context), out,
            self.parameterAsFile(parameters, "GRID", context) or None,
            self.parameterAsInt(parameters, "WORKERS", context) if workers not in (None, "") else None,
            **self.extra_arguments(parameters, context))
        feedback.pushCommandInfo(" ".join(shlex.quote(word) for word in argv))
        try:
            outcome = execute(argv, lambda kind, text: relay(feedback, kind, text), feedback.setProgress,
                              feedback.isCanceled)
        except CommandMissing as e:
            raise QgsProcessingException(str(e)) from e
        self.check(outcome, argv, feedback)
        if out is None:
            return {"VALID": True}
        results = {"OUT": out, **self.results(outcome)}
        products = product_files(Path(out), feedback)
        results.update(PRODUCTS=[str(p) for p in products], PRODUCT_COUNT=len(products))
        if self.parameterAsBool(parameters, "LOAD_OUTPUTS", context):
            self.load(products, context)
        return results

    def extra_arguments(self, parameters, context) -> dict:
        """Arguments only this action passes to `command.arguments`."""
        return {}

    def results(self, outcome: Outcome) -> dict:
        """Outputs only this action reports."""
        return {}

    def check(self, outcome: Outcome, argv: list[str], feedback) -> None:
        """Exit codes: 0 done, 3 `update` done with rejected inputs (warned), anything else refused."""
        if outcome.canceled and outcome.code != EXIT_OK:  # (a run that finished first stands)
            raise QgsProcessingException(f"minemap {self.ACTION} was cancelled; the output folder keeps its "
                                         "previous outputs (the next run or update completes it)")
        if outcome.code == EXIT_OK:
            return
        if outcome.code == EXIT_REJECTED and self.ACTION == "update":
            feedback.pushWarning("minemap update left out the rejected inputs listed above and used the others")
            return
        if outcome.unknown_command():
            raise QgsProcessingException(f"the minemap command ({' '.join(argv[:3])}) has no `{self.ACTION}`: "
                                         "it needs a newer minemap")
        meaning = MEANING.get(outcome.code, "unexpected failure")
        raise QgsProcessingException(f"minemap {self.ACTION} failed (exit {outcome.code}: {meaning}):\n"
                                     + "\n".join(outcome.errors()))

    def load(self, products: list[Path], context) -> None:
        """Add each product to the project when the algorithm completes, styled by its `.qml`."""
        for path in products:
            details = QgsProcessingContext.LayerDetails(path.stem, context.project(), "OUT")
            details.setPostProcessor(LoadDefaultStyle.create())
            context.addLayerToLoadOnCompletion(str(path), details)


def relay(feedback, kind: str, text: str) -> None:
    """One line of minemap's output into the Processing log, as an error, a warning or information."""
    if kind == "error":
        feedback.reportError(text, False)
    elif kind == "warning":
        feedback.pushWarning(text)
    else:
        feedback.pushInfo(text)


def product_files(out: Path, feedback) -> list[Path]:
    """The GeoTIFF products the run record (`OUT/run.json`) lists, in its order."""
    try:
        record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        feedback.pushWarning(f"{out / 'run.json'}: cannot read the list of products ({e})")
        return []
    return [out / p["file"] for p in record.get("products", {}).values() if (out / p["file"]).is_file()]


class RunAlgorithm(MinemapAlgorithm):
    ACTION = "run"
    TITLE = "Run (compute every product)"
    HELP = ("<p>Computes every product of the configuration into the output folder (<code>minemap run</code>): "
            "contamination probability, risk classes, evidence count, environmental impact, recovery rate, "
            "clearance sustainability, with the QGIS project, priority zones, district table and report.</p>"
            "<p>Every input is checked first: a bad input stops the run with the file and the problem named, "
            "and the output folder is left as it was.</p>")


class UpdateAlgorithm(MinemapAlgorithm):
    ACTION = "update"
    TITLE = "Update (recompute what new inputs changed)"
    HELP = ("<p>Brings an output folder up to date with the configuration's inputs (<code>minemap update</code>), "
            "recomputing only the chunks new, replaced or removed drone layers (or changed vectors) touch. "
            "Nothing changed: it says <i>up to date</i> and touches no file.</p>"
            "<p>Unusable drone files are left out and listed as warnings; the rest are used.</p>")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802 (QGIS's name)
        super().initAlgorithm(config)
        self.addOutput(QgsProcessingOutputString("STATUS", "up to date, updated or full run"))

    def results(self, outcome: Outcome) -> dict:
        found = [m.group(1) for m in map(STATUS.match, outcome.lines) if m]
        return {"STATUS": found[-1] if found else ""}


class ValidateAlgorithm(MinemapAlgorithm):
    ACTION = "validate"
    TITLE = "Validate a configuration"
    HELP = ("<p>Checks every input of the configuration (<code>minemap validate</code>): exists, readable, has a "
            "CRS, overlaps the region, values in range, every class in its table, geometries valid. Lists all "
            "problems at once; writes nothing.</p>")

    def initAlgorithm(self, config=None) -> None:  # noqa: N802 (QGIS's name)
        super().initAlgorithm(config)
        self.addOutput(QgsProcessingOutputBoolean("VALID", "Every input usable"))


class EvaluateAlgorithm(MinemapAlgorithm):
    ACTION = "evaluate"
    OUT_EXISTS = True
    TITLE = "Evaluate against field outcomes"
    HELP = ("<p>Compares the maps in the output folder with field events (<code>minemap evaluate</code>): a "
            "vector file of places surveyed or cleared, with their outcome in a field.</p>")

    def extra_parameters(self) -> None:
        self.addParameter(QgsProcessingParameterFile(
            "EVENTS", "Field events (vector file)",
            fileFilter="Vector files (*.gpkg *.shp *.geojson *.json *.fgb *.csv);;All files (*.*)"))
        self.addParameter(QgsProcessingParameterString("OUTCOME_FIELD", "Outcome field", defaultValue="outcome"))

    def extra_arguments(self, parameters, context) -> dict:
        return {"events": self.parameterAsFile(parameters, "EVENTS", context),
                "outcome_field": self.parameterAsString(parameters, "OUTCOME_FIELD", context)}


ALGORITHMS = (RunAlgorithm, UpdateAlgorithm, ValidateAlgorithm, EvaluateAlgorithm)
