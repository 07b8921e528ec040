"""The QGIS plugin (qgis_plugin/minemap/): its Processing algorithms in real headless QGIS 3.22
(`qgis_process.bin`, and PyQGIS as the Toolbox runs them), and the command runner they share.

The plugin calls the `minemap` command; here that is this repository's code through the venv's
Python (`MINEMAP_COMMAND="PYTHON -m pipeline.cli"`, PYTHONPATH = the repository).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from faults import no_leftovers
from test_qgis import QGIS_PYTHON, qgis_available
from world import make_world

PLUGINS = REPO / "qgis_plugin"
QGIS_PROCESS = "/usr/bin/qgis_process.bin"  # the `qgis_process` wrapper is broken on Debian 12
SAMPLE = REPO / "sample_data" / "minemap.toml"
MINEMAP = f"{shlex.quote(sys.executable)} -m pipeline.cli"
# the sample's products, in run.json's order (it releases land: released_share and the residual)
PRODUCTS = ["contamination_probability", "evidence_count", "risk_class", "environmental_impact", "recovery_rate",
            "clearance_sustainability", "released_share", "residual_probability"]
needs_qgis = pytest.mark.skipif(not (qgis_available() and Path(QGIS_PROCESS).exists()),
                                reason="QGIS not installed: run `make system-deps` (Debian: qgis python3-qgis)")


def load_command_module():
    """qgis_plugin/minemap/command.py, which imports no QGIS, in this (the project's) Python."""
    spec = importlib.util.spec_from_file_location("minemap_plugin_command", PLUGINS / "minemap" / "command.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


command = load_command_module()


# --- the command runner, without QGIS ---------------------------------------------------------

def test_command_comes_from_the_environment_then_the_setting_then_the_path(monkeypatch, tmp_path):
    monkeypatch.delenv("MINEMAP_COMMAND", raising=False)
    assert command.command(None) == ["minemap"]
    assert command.command("/opt/minemap/bin/minemap") == ["/opt/minemap/bin/minemap"]
    spaced = tmp_path / "QGIS tools" / "minemap"
    spaced.parent.mkdir()
    spaced.write_text("")
    assert command.command(str(spaced)) == [str(spaced)]  # an existing file is one word, spaces and all
    monkeypatch.setenv("MINEMAP_COMMAND", "/venv/bin/python -m pipeline.cli")
    assert command.command("/opt/minemap/bin/minemap") == ["/venv/bin/python", "-m", "pipeline.cli"]


def test_arguments_per_algorithm():
    assert command.arguments("run", "a.toml", "OUT", "g.toml", 2) == \
        ["run", "a.toml", "--grid", "g.toml", "--out", "OUT", "--workers", "2"]
    assert command.arguments("update", "a.toml", "OUT") == ["update", "a.toml", "--out", "OUT"]
    assert command.arguments("validate", "a.toml", "OUT", None, 4) == ["validate", "a.toml"]
    assert command.arguments("evaluate", "a.toml", "OUT", workers=2, events="ev.gpkg", outcome_field="found") == \
        ["evaluate", "a.toml", "--out", "OUT", "--events", "ev.gpkg", "--outcome-field", "found"]  # no --workers


FAKE = r"""
import sys, time
err = sys.stderr
err.write("\x1b[?25l\n\x1b[2K\x1b[1mcomputing\x1b[0m  ━━━━   0/? chunks 0:00:00\r")
for done in (0, 1, 1, 3, 4):
    err.write(f"\x1b[2K\x1b[1mcomputing\x1b[0m ━━━━ {done}/4 chunks 0:00:01\n")
err.write("\x1b[1;33mwarning\x1b[0m: districts.gpkg: 2 districts hold no cell\n")
err.write("\x1b[1;31merror\x1b[0m: /data/soil.gpkg: file not found\n")
print('{"status": "x"}')
sys.exit(2)
"""


def test_lines_relayed_by_kind_progress_parsed_from_the_bar(tmp_path):
    lines, progress = [], []
    outcome = command.execute([sys.executable, "-c", FAKE], lambda kind, text: lines.append((kind, text)),
                              progress.append, lambda: False)
    assert outcome.code == 2 and not outcome.canceled
    assert progress == [0.0, 25.0, 75.0, 100.0]  # unknown total and repeats left out
    assert ("warning", "warning: districts.gpkg: 2 districts hold no cell") in lines
    assert ("error", "error: /data/soil.gpkg: file not found") in lines
    assert ("stdout", '{"status": "x"}') in lines
    assert not any("chunks" in text for _, text in lines)  # the bar is progress, not log lines
    assert outcome.errors() == ["error: /data/soil.gpkg: file not found"]


def test_a_missing_command_says_where_to_set_it():
    with pytest.raises(command.CommandMissing, match="Providers → minemap → minemap command"):
        command.execute(["/nonexistent/minemap", "run"], lambda *a: None, lambda p: None, lambda: False)


STUBBORN = r"""
import signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
print("started", flush=True)
time.sleep(120)
"""


def test_cancel_escalates_to_sigterm_when_sigint_is_ignored():
    lines = []
    outcome = command.execute([sys.executable, "-c", STUBBORN], lambda kind, text: lines.append(text),
                              lambda p: None, lambda: bool(lines), grace_s=0.5)
    assert outcome.canceled and lines == ["started"]
    assert outcome.code == -signal.SIGTERM


def run_repo_minemap(monkeypatch, config: Path, out: Path, canceled=lambda progress: False):
    """`execute` on this repository's minemap; returns the outcome, the relayed lines and progress."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    lines, progress = [], []
    outcome = command.execute(shlex.split(MINEMAP) + command.arguments("run", str(config), str(out), workers=2),
                              lambda kind, text: lines.append((kind, text)), progress.append,
                              lambda: canceled(progress))
    return outcome, lines, progress


def test_progress_of_the_real_command_and_its_summary_lines(monkeypatch, tmp_path):
    config = make_world(tmp_path / "world")  # one chunk: 0/1, then 1/1
    out = tmp_path / "out"
    outcome, lines, progress = run_repo_minemap(monkeypatch, config, out)
    assert outcome.code == 0, lines
    assert progress[-1] == 100.0 and progress == sorted(progress)
    assert ("info", f"run record: {out / 'run.json'}") in lines
    assert (out / "contamination_probability.tif").is_file()


def test_cancel_interrupts_minemap_which_cleans_up(monkeypatch, tmp_path):
    out = tmp_path / "out"
    # cancelled as soon as a chunk is done: the sample has 9, so the run is well under way, not over
    outcome, lines, progress = run_repo_minemap(monkeypatch, SAMPLE, out, canceled=lambda p: bool(p) and p[-1] > 0)
    assert outcome.canceled and outcome.code != 0, lines
    # minemap's answer to SIGINT (exit 130): it stopped itself, not killed, and says what OUT holds
    assert any(text.startswith("interrupted: ") for kind, text in lines), lines
    assert not list(out.glob("*.tif")) and no_leftovers(out)


# --- inside real QGIS ---------------------------------------------------------------------------

def qgis_env(profile: Path) -> dict:
    """Headless QGIS with the repository's plugin folder, a throwaway profile, and the repository's
    minemap as the command."""
    return {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QGIS_PLUGINPATH": str(PLUGINS),
            "QGIS_CUSTOM_CONFIG_PATH": str(profile), "MINEMAP_COMMAND": MINEMAP, "PYTHONPATH": str(REPO)}


def qgis_process(profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([QGIS_PROCESS, *args], capture_output=True, text=True, env=qgis_env(profile), timeout=600)


@pytest.fixture(scope="module")
def profile(tmp_path_factory) -> Path:
    """A fresh QGIS profile with the plugin enabled (qgis_process loads enabled plugins only)."""
    folder = tmp_path_factory.mktemp("qgis-profile")
    done = qgis_process(folder, "plugins", "enable", "minemap")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "minemap=true" in (folder / "profiles" / "default" / "QGIS" / "QGIS3.ini").read_text()
    return folder


@pytest.fixture(scope="module")
def ran(profile, tmp_path_factory) -> tuple[Path, dict]:
    """`minemap:run` of the sample through qgis_process: OUT and qgis_process's JSON answer."""
    out = tmp_path_factory.mktemp("plugin-run") / "out"
    done = qgis_process(profile, "--json", "run", "minemap:run", "--", f"CONFIG={SAMPLE}", f"OUT={out}", "WORKERS=2")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out, json.loads(done.stdout)


@pytest.mark.qgis
@needs_qgis
def test_the_four_algorithms_are_in_the_toolbox(profile):
    done = qgis_process(profile, "list")
    assert done.returncode == 0, done.stderr
    listed = {line.split("\t")[1] for line in done.stdout.splitlines() if line.startswith("\tminemap:")}
    assert listed == {"minemap:run", "minemap:update", "minemap:validate", "minemap:evaluate"}


@pytest.mark.qgis
@needs_qgis
def test_run_writes_the_products_and_answers_with_out(ran):
    out, answer = ran
    results = answer["results"]
    assert results["OUT"] == str(out)
    assert results["PRODUCT_COUNT"] == len(PRODUCTS)
    assert results["PRODUCTS"] == [str(out / f"{name}.tif") for name in PRODUCTS]
    assert all((out / f"{name}.tif").is_file() and (out / f"{name}.qml").is_file() for name in PRODUCTS)
    info = answer["log"]["info"]
    assert info[0].endswith(f"run {SAMPLE} --out {out} --workers 2")  # the command, as run
    assert f"run record: {out / 'run.json'}" in info  # minemap's own lines, relayed


@pytest.mark.qgis
@needs_qgis
def test_update_with_nothing_new_relays_up_to_date(profile, ran):
    out, _ = ran
    before = {p: p.stat().st_mtime_ns for p in out.glob("*.tif")}
    done = qgis_process(profile, "run", "minemap:update", "--", f"CONFIG={SAMPLE}", f"OUT={out}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "up to date: 0 added, 0 changed, 0 removed, 0 rejected inputs" in done.stdout
    assert "STATUS:\tup to date" in done.stdout
    assert {p: p.stat().st_mtime_ns for p in out.glob("*.tif")} == before


def copy_sample(root: Path) -> Path:
    """A private copy of the sample (inputs and grids); returns its config."""
    shutil.copytree(REPO / "sample_data", root / "sample_data", ignore=shutil.ignore_patterns("*.py"))
    shutil.copytree(REPO / "grids", root / "grids")
    return root / "sample_data" / "minemap.toml"


@pytest.mark.slow
@pytest.mark.qgis
@needs_qgis
def test_update_with_a_rejected_drone_file_succeeds_with_a_warning(profile, tmp_path):
    from pipeline.runner import run

    config = copy_sample(tmp_path)
    run(config, tmp_path / "out", workers=2)
    bad = tmp_path / "sample_data" / "drone" / "2025-06-01_bad.tif"
    bad.write_text("not a GeoTIFF")
    done = qgis_process(profile, "run", "minemap:update", "--", f"CONFIG={config}", f"OUT={tmp_path / 'out'}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]  # minemap's exit 3: done, with warnings
    assert f"WARNING:\trejected: {bad}: corrupt or unreadable raster" in done.stdout
    assert "WARNING:\tminemap update left out the rejected inputs listed above and used the others" in done.stdout
    assert f"PRODUCT_COUNT:\t{len(PRODUCTS)}" in done.stdout


@pytest.mark.qgis
@needs_qgis
def test_validate_of_a_broken_config_fails_naming_the_file(profile, tmp_path):
    copy_sample(tmp_path)
    (tmp_path / "sample_data" / "soil.gpkg").unlink()
    done = qgis_process(profile, "run", "minemap:validate", "--", f"CONFIG={tmp_path / 'sample_data' / 'minemap.toml'}")
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert f"error: {tmp_path / 'sample_data' / 'soil.gpkg'}: file not found" in output
    assert "minemap validate failed (exit 2: bad config or input, nothing written)" in output
    assert "Traceback" not in output


@pytest.mark.qgis
@needs_qgis
def test_validate_of_the_sample_passes(profile):
    done = qgis_process(profile, "run", "minemap:validate", "--", f"CONFIG={SAMPLE}")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "ok: " in done.stdout and "VALID:\ttrue" in done.stdout


@pytest.mark.qgis
@needs_qgis
def test_run_in_pyqgis_loads_every_product_styled(tmp_path):
    """As the Toolbox runs it: products loaded into the project with their .qml renderer (Processing
    on its own would load them grey: `bare_renderer`)."""
    report = in_pyqgis(tmp_path, "minemap:run", {"CONFIG": str(SAMPLE), "OUT": str(tmp_path / "out"), "WORKERS": 2})
    layers = {layer["name"]: layer for layer in report["layers"]}
    assert sorted(layers) == sorted(PRODUCTS)
    assert all(layer["valid"] for layer in layers.values())
    assert layers["contamination_probability"]["renderer"] == "singlebandpseudocolor"
    assert layers["risk_class"]["renderer"] == "paletted"
    assert layers["evidence_count"]["renderer"] == "paletted"
    assert report["bare_renderer"] == "singlebandgray"
    assert report["unloaded"]  # provider and its setting gone with the plugin


@pytest.mark.qgis
@needs_qgis
def test_the_command_setting_is_used_without_the_environment_variable(tmp_path):
    # no MINEMAP_COMMAND and no minemap on the PATH: only the setting can find it
    report = in_pyqgis(tmp_path, "minemap:validate", {"CONFIG": str(SAMPLE)}, setting=MINEMAP, command=None)
    assert report["setting_default"] == "minemap"
    assert report["results"] == {"VALID": True}
    assert report["layers"] == []


def in_pyqgis(tmp_path: Path, algorithm: str, parameters: dict, setting: str | None = None,
              command: str | None = MINEMAP) -> dict:
    """qgis_plugin_check.py's report: ALGORITHM run in PyQGIS as the Toolbox runs it."""
    env = qgis_env(tmp_path / "profile")
    if command is None:
        del env["MINEMAP_COMMAND"]
        env["PATH"] = "/usr/bin:/bin"
        assert not shutil.which("minemap", path=env["PATH"])
    done = subprocess.run([QGIS_PYTHON, str(Path(__file__).with_name("qgis_plugin_check.py")), str(PLUGINS),
                           algorithm, json.dumps(parameters), *([setting] if setting else [])],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
