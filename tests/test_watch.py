"""`minemap watch` in a real subprocess: arrivals are batched, updated, logged; failures don't stop it."""

import queue
import signal
import subprocess
import sys
import threading
import time

import numpy as np

from conftest import REPO
from test_update import drone_near, sample  # noqa: F401  (fixture)


def lines_of(proc) -> "queue.Queue[str]":
    q: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [q.put(line) for line in proc.stderr], daemon=True).start()
    return q


def wait_for(q, needle: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = q.get(timeout=0.5)
        except queue.Empty:
            continue
        if needle in line:
            return line
    raise AssertionError(f"no log line with {needle!r}")


def test_watch_updates_on_arrival_and_survives_a_bad_file(sample, tmp_path):  # noqa: F811
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.cli", "watch", str(sample), "--out", str(out),
                             "--settle", "0.5", "--interval", "0.2", "--workers", "2"],
                            cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        log = lines_of(proc)
        wait_for(log, "watching")
        assert "9/9 chunks recomputed" in wait_for(log, "full run:")
        drone_near(sample, "2026-04-04_aghdam.tif", 46.93, 39.99, 0.8)
        line = wait_for(log, "updated:")
        assert "1 added" in line and "/9 chunks" in line
        (sample.parent / "drone" / "2026-04-05_broken.tif").write_bytes(b"II*\x00garbage")
        assert "2026-04-05_broken.tif" in wait_for(log, "rejected:")
        wait_for(log, "1 rejected inputs")
        assert proc.poll() is None  # still watching
        (sample.parent / "drone" / "2026-04-05_broken.tif").unlink()
        drone_near(sample, "2026-04-06_fuzuli.tif", 47.15, 39.60, np.float32(0.3))
        assert "1 added" in wait_for(log, "updated:")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    assert proc.returncode == 0
