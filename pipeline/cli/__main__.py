"""`python -m pipeline.cli`: the `minemap` command (the QGIS plugin and tests start it so)."""

from . import entry

entry()
