"""What a run made, from the product registry, so equality tests compare every product (a new
product is compared without editing a hand list) and the cluster tests see where tasks ran."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from pipeline.config import load_config
from pipeline.products import enabled_products


def made_products(out: Path) -> list[str]:
    """The products the run in `out` made: those its config enables in the registry
    (pipeline.products.enabled_products), checked to be exactly those its run.json lists."""
    record = json.loads((out / "run.json").read_text())
    names = enabled_products(load_config(record["config"]["path"]))
    assert sorted(names) == sorted(record["products"]), (names, list(record["products"]))
    return names


@dataclass
class WorkerTasks:
    """The tasks a cluster's workers ran (the scheduler's task stream) and the workers it had."""

    workers: set[str] = field(default_factory=set)
    records: list[dict] = field(default_factory=list)

    def chunks(self, prefix: str) -> dict[tuple, str]:
        """Chunk index → worker of the tasks whose key name starts with `prefix` (e.g. 'density-L')."""
        return {tuple(r["key"][1:]): r["worker"] for r in self.records
                if isinstance(r["key"], tuple) and str(r["key"][0]).startswith(prefix)}


@contextmanager
def worker_tasks(address: str) -> Iterator[WorkerTasks]:
    """Record what the cluster at `address` computes inside the block. A run that ignores the
    address and falls back to local threads leaves no record: its outputs alone cannot tell."""
    from distributed import Client, get_task_stream

    seen = WorkerTasks()
    # not the default client: a run ignoring its address must not pick this one up instead
    with Client(address, set_as_default=False, timeout=60) as client:
        seen.workers = set(client.scheduler_info()["workers"])
        with get_task_stream(client=client) as stream:
            yield seen
        seen.records = list(stream.data)


def stop_all(procs: list) -> None:
    """Stop the test's server processes, last started first; kill one that does not stop in 30 s."""
    import subprocess

    for p in reversed(procs):
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
