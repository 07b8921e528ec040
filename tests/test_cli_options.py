"""pipeline/cli/options.py: options declared once and shared; watch does not import the CLI."""

from __future__ import annotations

import subprocess
import sys

from pipeline.cli import main


def params(command: str) -> dict:
    return {p.name: (p.opts, p.default, p.help if hasattr(p, "help") else None)
            for p in main.commands[command].params}


def test_run_and_update_share_their_compute_options():
    run, update = params("run"), params("update")
    shared = ["config", "grid_path", "out_dir", "workers", "address", "wait", "max_cells", "bundle_rasters"]
    assert all(run[n] == update[n] for n in shared)
    assert run["max_cells"][1] == 2_000_000_000 and run["wait"][1] == 0
    assert params("watch")["wait"][1] == 600  # watch waits for another writer by default
    assert params("validate")["grid_path"] == run["grid_path"] == params("evaluate")["grid_path"]


def test_watch_does_not_import_the_cli():
    """Not even when it logs an update (it imported summary_line from the CLI then)."""
    code = ("import sys, pipeline.watch as w\n"
            "s = dict(status='updated', added=['a.tif'], changed=[], removed=[], rejected=[], chunks_recomputed=1,"
            " chunks_total=4, seconds=1.25, reason=None)\n"
            "w._attempt(lambda: s, print)\n"
            "print('pipeline.cli' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    logged, imported = done.stdout.strip().splitlines()
    assert logged.endswith(" updated: 1 added, 0 changed, 0 removed, 0 rejected inputs; 1/4 chunks recomputed in 1.2 s")
    assert imported == "False"


def test_module_entry_point_runs():
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "--version"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.startswith("minemap, version")
