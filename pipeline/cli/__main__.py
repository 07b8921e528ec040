"""`python -m pipeline.cli`: the `minemap` command (the QGIS plugin and tests start it so).

Guarded, so a worker process spawned from it (which imports this module as `__mp_main__`)
does not run the command again: runs started this way use worker processes too."""

from . import entry

if __name__ == "__main__":
    entry()
