"""Computing a run's chunks side by side: in worker processes, pool threads, or on a cluster.

A chunk is one job: the task graph culled to that chunk (plain, picklable tasks: no open
dataset or lock rides in it), the keys it must produce, and, for a full write, where its
blocks are staged (compressed, see `cog`). Staged blocks never travel back to the caller:
the process or thread that computed them writes them, so writing runs side by side too.

Where jobs run: on the local threaded scheduler with a large grid, in `num_workers` worker
processes (threads share one interpreter lock, which a chunk's work holds often enough that
121 M cells took 20.5 s in two threads and 16.9 s in two processes); with a small grid or
fewer chunks than workers, or when starting processes is not harmless (`spawn_is_harmless`),
in threads (starting processes costs ~1 s); synchronously, in one thread; on a distributed
cluster, through its client, from `window` threads (blocks are staged where the caller runs).
The runner starts the processes as soon as the grid is known, so their imports overlap the
loading of the inputs.
"""

from __future__ import annotations

import atexit
import ctypes
import multiprocessing
import os
import signal
import sys
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Callable, Hashable, Iterator, Protocol

import dask
import dask.local
import dask.threaded
from dask.base import get_scheduler
from dask.highlevelgraph import HighLevelGraph
from dask.optimization import cull

from ..runtime import enter_worker
from ..tiles import Index

# Below this many cells to compute, threads: worker processes take ~1 s to start (bench/).
PROCESS_MIN_CELLS = 2**25

Role = tuple[str, Hashable]  # (target name, level or "stats"); ("", None) for the extra parts


class Stage(Protocol):
    """Stages the blocks of one chunk in the process that computed them (see `cog.ChunkStage`)."""

    def takes(self, role: Role) -> bool: ...

    def __call__(self, blocks: dict[Role, object]) -> list[tuple[Role, object]]: ...


@dataclass(frozen=True)
class ChunkJob:
    """Everything one chunk produces, as one picklable job."""

    idx: Index
    graph: dict
    keys: list
    roles: list[Role]
    stage: Stage | None  # stages the blocks it takes (see `cog.ChunkStage`); None: return them all

    @classmethod
    def of(cls, idx: Index, graph: dict, arrays: list, roles: list[Role], stage: Stage | None) -> ChunkJob:
        """The job computing chunk `idx` of `arrays` (on the grid's chunks) from `graph`, the
        arrays' whole task graph as a dict (see `whole_graph`), culled to what that chunk needs."""
        keys = [(a.name, *idx) for a in arrays]
        culled, _ = cull(graph, keys)
        return cls(idx, culled, keys, roles, stage)

    @staticmethod
    def whole_graph(arrays: list) -> dict:
        """The task graph of `arrays`, made into a dict once for all chunks (culling the layered
        graph per chunk took ~30 ms a chunk at 121 M cells, on the main process beside the workers)."""
        return dict(HighLevelGraph.merge(*(a.__dask_graph__() for a in arrays)))

    def __call__(self, get: Callable = dask.local.get_sync) -> tuple[Index, list[tuple[Role, object]]]:
        """Compute; stage the blocks the stage takes (it returns what it made of them, e.g. a
        tile index); return (role, result) of everything else."""
        out, staged = [], {}
        for role, result in zip(self.roles, get(self.graph, self.keys)):
            if self.stage is not None and self.stage.takes(role):
                staged[role] = result
            else:
                out.append((role, result))
        if staged:
            out.extend(self.stage(staged))
        return self.idx, out


class WorkerProcesses:
    """The run's worker processes, if it will use them: started early and warmed up (they import
    what the jobs need while the caller loads its inputs), shut down by `close`."""

    def __init__(self) -> None:
        self.pool: ProcessPoolExecutor | None = None
        self.workers = 0

    def start(self, cells: int) -> None:
        """Start them if a run of `cells` cells on the current dask scheduler would use them."""
        workers = _local_workers()
        if self.pool is None and _use_processes(workers, cells):
            self.pool, self.workers = _spawn(workers), workers
            for _ in range(workers):
                self.pool.submit(_warm_up)

    def ready_to_draw(self) -> None:
        """Once the chunks are done: import what the maps and district drawings need (matplotlib,
        pikepdf: ~0.6 s a worker) while this process sums the districts and writes the project,
        not at the start, where the workers' imports and this process's loading share the cores."""
        if self.pool is not None:
            for _ in range(self.workers):
                self.pool.submit(_warm_up_drawing)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)
            self.pool = None


def _warm_up() -> None:
    import pipeline.products  # noqa: F401  (and through it what the jobs' tasks use)
    import pipeline.summaries  # noqa: F401


def _warm_up_drawing() -> None:
    import pipeline.writers.pdf  # noqa: F401  (the maps and the briefing's district drawings are drawn here too)


def run_jobs(jobs: Iterator[ChunkJob], count: int, cells: int, window: int, staged: bool,
             processes: WorkerProcesses | None = None) -> Iterator[tuple[Index, list[tuple[Role, object]]]]:
    """Run `count` jobs, at most `window` at a time (a new one starts as soon as one is done:
    no core waits for the slowest chunk of a batch), and yield each result as it completes."""
    pool, get, in_flight = _executor(count, cells, window, staged, processes)
    with pool:
        submit = (lambda job: pool.submit(job)) if get is None else (lambda job: pool.submit(job, get))
        running = {submit(job) for job in islice(jobs, in_flight)}
        try:
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    result = future.result()
                    running |= {submit(job) for job in islice(jobs, 1)}  # keep the window full
                    yield result
        finally:
            for future in running:  # an error or a stop: start nothing more
                future.cancel()


def _local_workers() -> int:
    """Workers of the local threaded scheduler (0: another scheduler is set)."""
    if get_scheduler() is not dask.threaded.get:
        return 0
    return max(1, dask.config.get("num_workers", None) or os.cpu_count() or 1)


def _executor(count: int, cells: int, window: int, staged: bool,
              processes: WorkerProcesses | None) -> tuple[Executor | _Borrowed, Callable | None, int]:
    """The pool jobs run in, the scheduler inside each job (None: the job's own, synchronous,
    in a worker process), and how many jobs to keep in flight."""
    scheduler = get_scheduler()
    if scheduler is dask.local.get_sync:
        return _threads(1), dask.local.get_sync, 1
    if scheduler is not dask.threaded.get:  # a distributed client: it spreads the tasks
        return _threads(max(1, window)), scheduler, max(1, window)
    workers = _local_workers()
    if count < workers:  # fewer chunks than workers (an update): threads share each chunk's layers
        return _threads(max(1, count)), dask.threaded.get, max(1, count)
    if staged and _use_processes(workers, cells):
        if processes is not None and processes.pool is not None:
            return _Borrowed(processes.pool), None, 2 * workers
        return _spawn(workers), None, 2 * workers
    return _threads(workers), dask.local.get_sync, max(window, workers)


def _use_processes(workers: int, cells: int) -> bool:
    """Whether `workers` local workers computing `cells` cells are worth worker processes."""
    return workers > 1 and cells >= PROCESS_MIN_CELLS and spawn_is_harmless()


def spawn_is_harmless() -> bool:
    """Whether starting worker processes is safe: a spawned process first re-runs the parent's
    main script, so a script calling `pipeline.run` without an `if __name__ == "__main__":`
    guard would run twice. The minemap command and interactive sessions (notebooks) are safe;
    elsewhere chunks run in threads."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    spec = getattr(getattr(main, "__spec__", None), "name", "")
    return path is None or Path(path).name in ("minemap", "minemap.exe", "cli.py") or spec == "pipeline.cli.__main__"


def _spawn(n: int) -> ProcessPoolExecutor:
    # spawned, not forked: a fork copies GDAL's and dask's threads' locks mid-use and can hang
    return ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_setup)


def _worker_setup() -> None:
    """In a worker process: leave at once when told to stop (it holds nothing to flush; tearing
    down its modules took ~0.6 s, which the run waited for), and keep freed memory. Ctrl-C is
    the parent's to handle (it stops the pool and cleans up): a terminal sends it to us too."""
    atexit.register(os._exit, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _keep_freed_memory()
    enter_worker()  # the run's GDAL settings (runtime), as on the main process


def _keep_freed_memory() -> None:
    """(glibc only) Keep freed memory for reuse instead of handing each chunk-sized array back
    to the system and faulting it in again (zeroed, page by page) for the next one. Cut system
    time by a third and compute by ~8 % at 121 M cells (bench/)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    for option, value in ((-3, 2**30), (-1, 2**31 - 1), (-2, 2**28)):  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, M_TOP_PAD
        libc.mallopt(option, value)


def _threads(n: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=n, thread_name_prefix="minemap-chunk")


class _Borrowed:
    """Someone else's pool, used in a `with` without shutting it down."""

    def __init__(self, pool: Executor) -> None:
        self.submit = pool.submit

    def __enter__(self) -> _Borrowed:
        return self

    def __exit__(self, *exc) -> None:
        return None
