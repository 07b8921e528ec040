"""`minemap watch`: update the products whenever files land in the config's raster folders.

Polls the folders (works on network shares, where file-system events often do not arrive),
waits until arrivals have stopped growing and a batch has settled, runs `update`, and logs one
line per update. A failed update is logged and the watch goes on.
"""

from __future__ import annotations

import glob
import signal
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Callable

from .config import RasterSource, load_config
from .errors import MinemapError
from .logline import summary_line

Snapshot = dict[str, tuple[int, ...]]


def raster_patterns(config: Path) -> list[str]:
    cfg = load_config(config)
    return [str(cfg.resolve(s.path)) for s in cfg.spec.inputs.values() if isinstance(s, RasterSource)]


def snapshot(patterns: list[str]) -> Snapshot:
    """Size, modification and change time and inode of every file the raster globs match (a file
    rewritten with its size and mtime put back still changes its ctime)."""
    out = {}
    for pattern in patterns:
        for path in glob.glob(pattern):
            try:
                st = Path(path).stat()
            except FileNotFoundError:  # removed while listing
                continue
            out[path] = (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    return out


def watch(config: Path, out_dir: Path, update: Callable[[], dict], log: Callable[[str], None],
          settle: float = 5.0, interval: float = 1.0, stop: threading.Event | None = None) -> None:
    """Run `update` now and after each settled batch of changes, until `stop` is set (or SIGTERM)."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    patterns = raster_patterns(config)
    log(f"watching {', '.join(patterns)} → {out_dir}")
    seen: Snapshot | None = None
    while not stop.is_set():
        current = snapshot(patterns)
        if current != seen:
            current = _settled(patterns, current, settle, interval, stop)
            if stop.is_set():
                break
            _attempt(update, log)
            seen = current
        stop.wait(interval)
    log("stopped")


def _settled(patterns: list[str], current: Snapshot, settle: float, interval: float,
             stop: threading.Event) -> Snapshot:
    """Wait until nothing has changed (no new file, no file still growing) for `settle` seconds."""
    quiet_since = time.monotonic()
    while not stop.is_set() and time.monotonic() - quiet_since < settle:
        stop.wait(interval)
        now = snapshot(patterns)
        if now != current:
            current, quiet_since = now, time.monotonic()
    return current


def _attempt(update: Callable[[], dict], log: Callable[[str], None]) -> None:
    stamp = datetime.now().astimezone().isoformat(timespec="seconds")
    try:
        summary = update()
    except MinemapError as e:
        log(f"{stamp} update failed: " + "; ".join(str(p) for p in e.problems))
        return
    except Exception as e:  # keep watching: the next arrival may fix it
        log(f"{stamp} update failed unexpectedly: {e!r}")
        return
    for problem in summary["rejected"]:
        log(f"{stamp} rejected: {problem}")
    log(f"{stamp} {summary_line(summary)}")
