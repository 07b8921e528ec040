"""`make plugin` (#22): a zip QGIS's Plugin Manager installs ("Install from ZIP"), installed by the
Plugin Manager's own code into a fresh headless QGIS 3.22 profile, its algorithms listed."""

from __future__ import annotations

import configparser
import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from conftest import REPO
from test_qgis import QGIS_PYTHON, qgis_available

CHECK = Path(__file__).parent / "qgis_plugin_zip_check.py"
ALGORITHMS = ["minemap:evaluate", "minemap:run", "minemap:update", "minemap:validate"]


def make_plugin(dist: Path) -> Path:
    """`make plugin DIST=dist`; returns the one zip it wrote."""
    done = subprocess.run(["make", "-s", "-C", str(REPO), "plugin", f"DIST={dist}"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    zips = sorted(dist.glob("*.zip"))
    assert len(zips) == 1, zips
    return zips[0]


@pytest.fixture(scope="module")
def plugin_zip(tmp_path_factory) -> Path:
    return make_plugin(tmp_path_factory.mktemp("dist"))


def test_zip_holds_one_plugin_folder_with_its_metadata(plugin_zip):
    meta = configparser.ConfigParser()
    meta.read(REPO / "qgis_plugin" / "minemap" / "metadata.txt", encoding="utf-8")
    assert plugin_zip.name == f"minemap-qgis-plugin-{meta['general']['version']}.zip"
    with zipfile.ZipFile(plugin_zip) as z:
        names = z.namelist()
        assert z.testzip() is None
        assert z.read("minemap/metadata.txt") == (REPO / "qgis_plugin/minemap/metadata.txt").read_bytes()
    assert {n.split("/")[0] for n in names} == {"minemap"}  # one top folder: the plugin's
    assert {"minemap/metadata.txt", "minemap/__init__.py", "minemap/provider.py", "minemap/LICENSE"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    tracked = subprocess.run(["git", "-C", str(REPO), "ls-files", "qgis_plugin/minemap"], capture_output=True,
                             text=True).stdout.split()
    if tracked:  # a git checkout: exactly the plugin's files
        assert sorted(names) == sorted("minemap/" + t.removeprefix("qgis_plugin/minemap/") for t in tracked)


def test_same_files_same_zip(plugin_zip, tmp_path):
    assert make_plugin(tmp_path).read_bytes() == plugin_zip.read_bytes()


@pytest.mark.qgis
@pytest.mark.skipif(not qgis_available(),
                    reason="QGIS not installed: run `make system-deps` (Debian: qgis python3-qgis)")
def test_plugin_manager_installs_the_zip_in_a_fresh_profile(plugin_zip, tmp_path):
    profile = tmp_path / "profile"
    done = subprocess.run([QGIS_PYTHON, str(CHECK), str(plugin_zip), str(profile)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["dialogs"] == []  # e.g. "The Zip file is not a valid QGIS python plugin. No root folder…"
    assert report["messages"] == ["<b>Plugin installed successfully</b>"]
    assert report["profile_plugins"] == str(profile / "python" / "plugins")
    assert {"metadata.txt", "__init__.py", "algorithms.py", "provider.py"} <= set(report["installed"])
    assert report["active"] and report["enabled_setting"]  # enabled, as the Plugin Manager leaves it
    assert report["settings_file"] == str(profile / "QGIS" / "QGIS3.ini")  # the fresh profile's, not the home's
    assert report["provider"] == "minemap"
    assert report["algorithms"] == ALGORITHMS
