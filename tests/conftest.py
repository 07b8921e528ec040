import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from world import make_world  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def world(tmp_path: Path) -> Path:
    """The tiny hand-checkable world (see tests/world.py); returns its config path."""
    return make_world(tmp_path / "world")


def engine_only(config: Path) -> Path:
    """`config` with `[output] deliverables = false` (no maps, report, PDF, project): for tests of
    the products, summaries and the output folder only. The config must have no [output] yet."""
    config.write_text(config.read_text() + "\n[output]\ndeliverables = false\n")
    return config


@pytest.fixture
def engine_sample(tmp_path: Path) -> Path:
    """A private copy of the sample (config, data, grids) with `[output] deliverables = false`:
    for tests of products, summaries and the output folder (see test_deliver); returns its config."""
    import shutil

    shutil.copytree(REPO / "sample_data", tmp_path / "sample_data", ignore=shutil.ignore_patterns("*.py", "*.md"))
    shutil.copytree(REPO / "grids", tmp_path / "grids")
    return engine_only(tmp_path / "sample_data" / "minemap.toml")


def run_sample(out: Path, *extra: str) -> dict:
    """`minemap run` on the bundled sample through the CLI; returns the run record."""
    from click.testing import CliRunner

    from pipeline.cli import main

    result = CliRunner().invoke(main, ["run", str(REPO / "sample_data" / "minemap.toml"), "--out", str(out),
                                       "--quiet", *extra])
    assert result.exit_code == 0, result.output
    return json.loads((out / "run.json").read_text())


@pytest.fixture(scope="session")
def sample_out(tmp_path_factory) -> Path:
    """The sample's outputs, made once per test session: read them, do not change them."""
    out = tmp_path_factory.mktemp("sample") / "out"
    run_sample(out)
    return out


@pytest.fixture
def local_s3():
    """A local S3-compatible server with an empty bucket (tests/s3server.py); stopped after the test."""
    from s3server import LocalS3

    with LocalS3() as s3:
        yield s3
