"""`minemap watch`: update the products whenever files land in the config's raster folders, objects
under an S3 prefix (a raster glob by URL) or items in a STAC catalogue or API search (`stac` sources).

Polls (works on network shares, where file-system events often do not arrive, and on object stores
and catalogues, which have none), waits until arrivals have stopped growing and a batch has settled,
runs `update`, and logs one line per update. A failed update or poll is logged and the watch goes on.
"""

from __future__ import annotations

import glob
import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable

from . import store
from .config import RasterSource, StacSource, load_config
from .errors import MinemapError
from .logline import summary_line

Snapshot = dict[str, tuple]


@dataclass(frozen=True)
class Watched:
    """What a watch polls: local raster globs, object-store globs (s3://…) and STAC sources."""

    patterns: tuple[str, ...] = ()
    objects: tuple[str, ...] = ()
    stac: tuple[tuple[StacSource, object, object], ...] = ()  # (source, config, grid)

    def names(self) -> list[str]:
        return [*self.patterns, *map(store.redact, self.objects),
                *(f"STAC {_stac_name(s, cfg)}" for s, cfg, _ in self.stac)]

    def __call__(self) -> Snapshot:
        """One poll: every file, object and item seen, with what tells a new version from the old."""
        out = snapshot(list(self.patterns))
        for url in self.objects:
            out.update({str.__str__(u): (st.size, st.etag, st.modified) for u, st in store.listed(url).items()})
        for spec, cfg, grid in self.stac:
            out.update(stac_snapshot(spec, cfg, grid))
        return out


def watched(config: Path, grid_path: Path | None = None) -> Watched:
    """What the config's raster and stac sources make a watch poll (a STAC API is searched with the
    bbox of the region of `grid_path`, default the config's grid)."""
    cfg = load_config(config)
    rasters = [s.path if store.is_url(s.path) else str(cfg.resolve(s.path))
               for s in cfg.spec.inputs.values() if isinstance(s, RasterSource)]
    stac = [s for s in cfg.spec.inputs.values() if isinstance(s, StacSource)]
    grid = None
    if stac:
        from .grid import load_grid
        grid = load_grid(grid_path or cfg.resolve(cfg.spec.grid))
    return Watched(tuple(p for p in rasters if not store.is_url(p)), tuple(p for p in rasters if store.is_url(p)),
                   tuple((s, cfg, grid) for s in stac))


def raster_patterns(config: Path) -> list[str]:
    return list(watched(config).patterns)


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


def stac_snapshot(spec: StacSource, cfg, grid) -> Snapshot:
    """The items a stac source finds now: id → datetime, `updated` and asset href (a local asset also
    by its stat, as a raster glob's file)."""
    from .sources.stac import find_items

    items, problems = find_items(spec, cfg, grid, "V_i")
    out: Snapshot = {f"stac:{_stac_name(spec, cfg)}#{p.where}": ("problem", p.what) for p in problems}
    for item in items:
        local = snapshot([item.href]).get(item.href, ()) if not store.is_url(item.href) else ()
        out[f"stac:{_stac_name(spec, cfg)}#{item.id}"] = (item.acquired, item.updated, item.href, *local)
    return out


def _stac_name(spec: StacSource, cfg) -> str:
    from .sources.stac import source_name
    return source_name(spec, cfg)


def watch(config: Path, out_dir: Path, update: Callable[[], dict], log: Callable[[str], None],
          settle: float = 5.0, interval: float = 1.0, stop: threading.Event | None = None,
          poll: Callable[[], Snapshot] | None = None) -> None:
    """Run `update` now and after each settled batch of changes, until `stop` is set (or SIGTERM).
    `poll` (default: what the config's sources make, see `watched`) says what is there now."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    poll = poll or watched(config)
    names = ", ".join(poll.names()) + " " if isinstance(poll, Watched) else ""
    log(f"watching {names}→ {out_dir}")
    log = _once(log)  # a store that stays down: its failure logged once, not at every poll
    seen: Snapshot | None = None
    while not stop.is_set():
        current = _poll(poll, log)
        if current is not None and current != seen:
            current = _settled(poll, current, settle, interval, stop, log)
            if stop.is_set():
                break
            _attempt(update, log)
            seen = current
        stop.wait(interval)
    log("stopped")


def _once(log: Callable[[str], None]) -> Callable[[str], None]:
    """`log`, but a "poll failed" line the same as the last line is left out."""
    last: list[str] = [""]

    def logged(line: str) -> None:
        if not (line.startswith("poll failed") and line == last[0]):
            log(line)
        last[0] = line

    return logged


def _poll(poll: Callable[[], Snapshot], log: Callable[[str], None]) -> Snapshot | None:
    """One poll; None (no news) when the store or catalogue cannot be read just now: logged, retried."""
    try:
        return poll()
    except MinemapError as e:
        log("poll failed: " + "; ".join(str(p) for p in e.problems))
    except Exception as e:  # a store that is down: the next poll may reach it
        log(f"poll failed: {type(e).__name__}: {store.redact_all(str(e))}")
    return None


def _settled(poll: Callable[[], Snapshot], current: Snapshot, settle: float, interval: float,
             stop: threading.Event, log: Callable[[str], None]) -> Snapshot:
    """Wait until nothing has changed (no new file, no file still growing) for `settle` seconds."""
    quiet_since = time.monotonic()
    while not stop.is_set() and time.monotonic() - quiet_since < settle:
        stop.wait(interval)
        now = _poll(poll, log)
        if now is not None and now != current:
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
