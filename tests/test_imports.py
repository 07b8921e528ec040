"""No import circle between reading products, the engine and the sinks (issue #22 §7): each
module imported alone, in a fresh interpreter, loads none of the others."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def loaded(module: str) -> set[str]:
    code = f"import sys, {module}; print(' '.join(m for m in sys.modules if m.startswith('pipeline.')))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True,
                          env={"PYTHONPATH": str(REPO), "PATH": ""})
    return set(proc.stdout.split())


@pytest.mark.parametrize("module, not_loaded", [
    ("pipeline.dataset", {"pipeline.engine", "pipeline.engine.plan", "pipeline.writers.geotiff", "pipeline.writers.zarr"}),
    ("pipeline.engine.plan", {"pipeline.dataset", "pipeline.writers.geotiff", "pipeline.writers.zarr"}),
    ("pipeline.writers.zarr", {"pipeline.dataset", "pipeline.writers.geotiff", "pipeline.engine.plan"}),
    ("pipeline.targets", {"pipeline.dataset", "pipeline.writers.geotiff", "pipeline.writers.zarr",
                          "pipeline.engine.plan"}),
])
def test_reading_products_engine_and_sinks_import_apart(module, not_loaded):
    found = loaded(module)
    assert module in found
    assert not found & not_loaded, found & not_loaded
