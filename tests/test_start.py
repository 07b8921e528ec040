"""Start-up (issue #12, target 5): the command imports no heavy library, and its first line says
what is being run as soon as the config and grid are read, before any input (pipeline/cli)."""

from __future__ import annotations

import subprocess
import sys

from faults import run_cli

# what made `minemap` take seconds before its first line: none of them is needed to read the
# config and the grid definition, so none may load with the command itself
HEAVY = ["numpy", "dask", "distributed", "rasterio", "geopandas", "pyogrio", "shapely", "pandas", "scipy",
         "matplotlib", "pystac", "xarray", "odc.geo", "exactextract", "pyproj", "pydantic"]


def test_importing_the_command_loads_no_heavy_library():
    code = ("import sys, pipeline, pipeline.cli\n"
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""


# imported only to compute and deliver: after the first line
LATER = ["dask.array", "scipy", "matplotlib", "pystac", "exactextract"]


def test_first_line_names_config_and_cells_before_any_input_is_read(world, tmp_path):
    """The soil layer is missing: the refusal comes only once the inputs are read, the first line
    before it, and before the libraries of the computation are imported (-X importtime writes
    each import on stderr as it happens, between minemap's own lines)."""
    (world.parent / "soil.gpkg").unlink()
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "pipeline.cli", "run", str(world),
                           "--out", str(out)], capture_output=True, text=True)
    stderr = done.stderr.splitlines()
    first = next(k for k, line in enumerate(stderr) if not line.startswith("import time:"))
    imported = [line.split("|")[-1].strip() for line in stderr[:first]]
    assert "pipeline.grid" in imported and not [m for m in [*LATER, "xarray", "distributed"] if m in imported]
    assert all(m in [line.split("|")[-1].strip() for line in stderr[first:]] for m in LATER)
    lines = [line for line in stderr if not line.startswith("import time:")]
    assert done.returncode == 2, done.stderr
    assert lines[0] == f"run {world}: grid square, 100 × 100 = 10,000 cells of 100 m in 1 chunk → {out}"
    assert lines[1].startswith("error: ") and "soil.gpkg" in done.stderr
    assert not out.exists()


def test_update_says_its_chunks_and_quiet_says_nothing(world, tmp_path):
    """The world at 2 × 2 chunks of 5 120 m (the 10 km square needs 2 per side); --quiet: only the refusal."""
    (world.parent / "grid.toml").write_text((world.parent / "grid.toml").read_text()
                                            .replace("resolution = 100.0", "resolution = 10.0"))
    (world.parent / "soil.gpkg").unlink()
    out = tmp_path / "out"
    said = run_cli("update", world, "--out", out).output.splitlines()
    assert said[0] == f"update {world}: grid square, 1000 × 1000 = 1,000,000 cells of 10 m in 4 chunks → {out}"
    quiet = run_cli("run", world, "--out", out, "--quiet").output
    assert quiet.startswith("error: ") and "grid square" not in quiet


def test_the_grid_is_read_once(world, tmp_path, monkeypatch):
    """The command's first line and the run use one reading of the grid (the same Grid)."""
    import pipeline.engine.plan
    import pipeline.grid

    real, calls = pipeline.grid.load_grid, []

    def counted(path):
        calls.append(path)
        return real(path)

    monkeypatch.setattr(pipeline.grid, "load_grid", counted)
    monkeypatch.setattr(pipeline.engine.plan, "load_grid", counted)
    (world.parent / "soil.gpkg").unlink()
    assert run_cli("run", world, "--out", tmp_path / "out", "--quiet").exit_code == 2
    assert [p.resolve() for p in calls] == [(world.parent / "grid.toml").resolve()]
