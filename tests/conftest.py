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
