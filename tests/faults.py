"""Shared checks for the fault matrix (tests/test_faults_*.py): one way to say "refused cleanly".

A clean refusal: the documented exit code, no traceback, a message naming the file (or key) and
the problem, the previous output folder byte-identical, no staging folder left and the lock free.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

from click.testing import CliRunner, Result

from pipeline.cli import main


def run_cli(*args: str) -> Result:
    """The `minemap` command in-process (stdout and stderr both in `result.output`)."""
    return CliRunner().invoke(main, [str(a) for a in args])


def snapshot(out: Path) -> dict[str, bytes]:
    """Every file under OUT, by relative path (the lock file's bytes included: it stays empty)."""
    if not out.exists():
        return {}
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def lock_is_free(out: Path) -> bool:
    """Whether nobody holds OUT's lock (the file may exist: an flock is released, not deleted)."""
    lock = out / ".minemap" / "lock"
    if not lock.exists():
        return True
    with open(lock, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
    return True


def no_leftovers(out: Path) -> bool:
    """No staging folder inside OUT and the lock free."""
    return not list(out.glob(".staging-*")) and lock_is_free(out)


def assert_refused(args: list, out: Path | None, code: int, *needles: str) -> str:
    """Run `minemap *args`; assert exit `code`, no traceback, every needle in the output, and
    (with `out`) OUT byte-identical and clean afterwards. Returns the output."""
    before = snapshot(out) if out is not None else None
    result = run_cli(*args)
    assert result.exit_code == code, f"exit {result.exit_code}, wanted {code}:\n{result.output}"
    assert "Traceback" not in result.output, result.output
    for needle in needles:
        assert needle in result.output, f"{needle!r} not in:\n{result.output}"
    if out is not None:
        assert snapshot(out) == before, "the output folder changed"
        assert no_leftovers(out)
    return result.output
