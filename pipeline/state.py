"""What the last successful run wrote, chunk by chunk, so `update` redoes only what changed.

OUT/.minemap/state.json holds one fingerprint per chunk: a hash of every job that computes
that chunk of every layer (file hashes and acquisition times, the geometries touching the
chunk, settings) plus the product settings. OUT/.minemap/lock keeps two processes from
writing the same folder at once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pickle
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from . import __version__
from .errors import LockedError, OutputError
from .summaries import part_columns
from .tiles import chunk_key

STATE_DIR = ".minemap"


def chunk_fingerprints(inputs, products: list[str]) -> dict[str, str]:
    """One fingerprint per chunk ("i,j") of everything that decides the products there."""
    cfg, grid = inputs.cfg, inputs.grid
    common = json.dumps({"version": __version__, "grid": grid.fingerprint(), "products": sorted(products),
                         "settings": cfg.spec.products.model_dump(mode="json"),
                         "output": cfg.spec.output.model_dump(mode="json"),
                         "summary_columns": part_columns(len(cfg.spec.products.risk_class.names)),  # parts' layout
                         "inputs": {v: s.model_dump(mode="json") for v, s in cfg.spec.inputs.items()},
                         "districts": [cfg.spec.districts.model_dump(mode="json"), inputs.districts.sha256]
                         if inputs.districts else None},
                        sort_keys=True)
    out = {}
    for idx in grid.tile_ids():
        h = hashlib.sha256(common.encode())
        for var in sorted(inputs.layers):
            h.update(f"|{var}={inputs.layers[var].fingerprint(idx)}".encode())
        out[chunk_key(idx)] = h.hexdigest()
    return out


def write_parts(out_dir: Path, parts: dict[str, object]) -> str:
    """Store per-chunk summary parts under a name made of their hash (the state then points to
    it, so a run killed between the two leaves the old state and its parts intact)."""
    folder = out_dir / STATE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    data = pickle.dumps(dict(sorted(parts.items())), protocol=5)
    name = f"parts-{hashlib.sha256(data).hexdigest()[:16]}.pkl"
    if not (folder / name).exists():
        tmp = folder / f"{name}.{os.getpid()}"
        tmp.write_bytes(data)
        os.replace(tmp, folder / name)
    return name


def read_parts(out_dir: Path, state: dict | None) -> dict[str, object] | None:
    """The summary parts the state points to (None if it points to none, or they are gone)."""
    name = (state or {}).get("summary_parts")
    if not name:
        return None
    try:
        return pickle.loads((out_dir / STATE_DIR / name).read_bytes())
    except (FileNotFoundError, pickle.UnpicklingError, EOFError):
        return None


def drop_stale_parts(out_dir: Path, keep: str | None) -> None:
    for old in (out_dir / STATE_DIR).glob("parts-*.pkl"):
        if old.name != keep:
            old.unlink(missing_ok=True)


def read_state(out_dir: Path) -> dict | None:
    try:
        return json.loads((out_dir / STATE_DIR / "state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_state(out_dir: Path, state: dict) -> None:
    """Atomically replace the state (after the products it describes are in place)."""
    folder = out_dir / STATE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"state.json.{os.getpid()}"
    tmp.write_text(json.dumps(state))
    os.replace(tmp, folder / "state.json")


@contextmanager
def output_lock(out_dir: Path, wait: float = 0.0) -> Iterator[None]:
    """Hold OUT's lock while writing; another holder → wait up to `wait` s, then LockedError.

    The lock is an flock: the kernel releases it when its holder dies, even by SIGKILL.
    Holding it, leftovers of killed runs (staging folders) can be removed safely.
    """
    try:
        folder = out_dir / STATE_DIR
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / "lock", "a+")
    except OSError as e:
        raise OutputError(f"cannot write the output folder: {e.strerror}", out_dir) from None
    deadline = time.monotonic() + wait
    with handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockedError("another minemap run or update is writing this folder; "
                                      "try again when it has finished (or pass --wait SECONDS)", out_dir) from None
                time.sleep(0.2)
        for stale in out_dir.glob(".staging-*"):
            shutil.rmtree(stale, ignore_errors=True)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
