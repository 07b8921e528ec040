"""What a run needs before it starts, and how it stops: size limits, a full disk, Ctrl-C.

A grid too large for the machine is refused from its definition alone (cells, staging disk,
memory), before any input is read in full. A write that fails for want of disk is reported
with the folder and the estimate, and Ctrl-C during the renames into OUT waits for them, so
OUT holds either the previous set or the new one.
"""

from __future__ import annotations

import errno
import math
import os
import re
import shutil
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from .errors import ConfigError, OutputError, Problem

MAX_CELLS = 2_000_000_000  # default of --max-cells: 2e9 cells (~96 GB staged)
OVERVIEWS = 4 / 3  # each overview level is a quarter of the one before: 1 + 1/4 + 1/16 + … = 4/3
# memory per cell of the chunks in flight: 1.3 GB peak for 4 chunks of 2048 × 2048 (bench/README.md)
MEMORY_PER_CELL = 80
DELIVERABLES = 2_000_000  # maps, report, QGIS project, GeoPackages: about the same at any grid size
DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS}
# what GDAL says (as text only: its errors carry no errno) when the disk refuses a write
DISK_WORDS = re.compile(r"no space left|disk quota|read-only file system|input/output error|write (error|failed)",
                        re.IGNORECASE)


class DiskError(OutputError):
    """Writing into the output folder failed: disk full, quota, read-only or I/O error."""

    exit_code = 74  # EX_IOERR


@dataclass(frozen=True)
class Budget:
    """A run's estimated needs: cells, bytes staged in OUT's filesystem, bytes of memory."""

    cells: int
    staging_bytes: int
    memory_bytes: int


def estimate(shape: tuple[int, int], chunk: int, dtypes: list[str], chunks_in_flight: int) -> Budget:
    """Every product's tiles, at every level, are staged compressed (counted at full size: an
    incompressible worst case); each product's COG is assembled from its tiles before they go,
    so one product is on disk twice at a time (see writers/cog); then the deliverables."""
    import numpy as np

    cells = int(shape[0]) * int(shape[1])
    sizes = [np.dtype(d).itemsize for d in dtypes]
    chunk_cells = min(cells, chunk * chunk)
    return Budget(cells, math.ceil(cells * (sum(sizes) + max(sizes, default=0)) * OVERVIEWS) + DELIVERABLES,
                  chunks_in_flight * chunk_cells * MEMORY_PER_CELL)


def free_bytes(folder: Path) -> int:
    """Free space for us in the filesystem that holds (or will hold) `folder`."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def gb(n: float) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e8 else f"{n / 1e6:,.1f} MB"


def check(budget: Budget, out_dir: Path | None, max_cells: int, where: str) -> None:
    """Refuse (ConfigError, exit 2) a grid above `max_cells`, or whose staging OUT cannot hold
    (no OUT, as for `validate`: the cells alone)."""
    free = free_bytes(out_dir) if out_dir is not None else None
    staged = f" in {out_dir} ({gb(free)} free there)" if out_dir is not None else ""
    figures = (f"{budget.cells:,} cells; about {gb(budget.staging_bytes)} staged{staged} "
               f"and {gb(budget.memory_bytes)} of memory")
    problems = []
    if budget.cells > max_cells:
        problems.append(Problem(where, f"grid too large: {figures}; the limit is --max-cells {max_cells:,} "
                                       "(choose a coarser resolution or a smaller region, or raise --max-cells)"))
    elif free is not None and budget.staging_bytes > free:
        problems.append(Problem(where, f"not enough disk for this grid: {figures} "
                                       "(free some space there, or choose a coarser grid)"))
    if problems:
        raise ConfigError(problems)


def disk_failure(e: BaseException, out_dir: Path) -> str | None:
    """Why writing into `out_dir` failed, if the disk refused it (None: some other error)."""
    seen: BaseException | None = e
    said, gdal = None, False
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in DISK_ERRNOS:
            name = getattr(seen, "filename", None)
            if name is None or Path(out_dir).absolute() in Path(name).absolute().parents:
                return seen.strerror or errno.errorcode[seen.errno]
        elif isinstance(seen, (OSError, *_gdal_errors())) and DISK_WORDS.search(str(seen)):
            said = said or str(seen)
        elif isinstance(seen, _gdal_errors()):
            gdal = True  # GDAL (or SQLite under a GeoPackage) may name anything but the disk
        seen = seen.__cause__ or seen.__context__
    if (said or gdal) and free_bytes(out_dir) < 2**20:  # "write failed", "no such table": the disk says why
        return os.strerror(errno.ENOSPC)
    return said


def _gdal_errors() -> tuple[type, ...]:
    """Errors of the GDAL-based libraries we write with: rasterio's, and pyogrio's (GeoPackages)."""
    from pyogrio.errors import DataLayerError, DataSourceError, FieldError
    from rasterio._err import CPLE_BaseError

    return (CPLE_BaseError, DataSourceError, DataLayerError, FieldError)


def disk_error(reason: str, out_dir: Path, needed: int | None) -> DiskError:
    """The one message for a failed write: which folder, why (see `disk_failure`), how much a
    run needs there."""
    need = f"; this grid needs about {gb(needed)} there while writing" if needed else ""
    return DiskError(Problem(str(out_dir), f"could not write the outputs ({reason}){need}, "
                                           f"{gb(free_bytes(out_dir))} free now; previous outputs kept as they were"))


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the block is done: the renames into OUT all happen, or none.
    Only the main thread can set signal handlers; elsewhere the block runs as is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and callable(previous):
        previous(signal.SIGINT, None)  # the default handler raises KeyboardInterrupt
