"""The output folder's protocol: lock, staging, journaled publish, state and summary parts.

OUT/.minemap/ holds `lock` (an flock), `state.json` (what the last complete run wrote),
`parts-*.npz` (per-chunk summary parts, data only) and, while a publish is under way,
`publish.json`, its journal. A publish moves a whole product set at once: the files are staged
in OUT/.staging-*, their SHA-256 and the new state go into the journal, the old files are
hard-linked beside the staged ones (to roll back to), then each file is renamed into place, the
state written and the journal removed. Whoever takes the lock next first completes an
interrupted publish (or rolls it back), so readers never keep a mixed set.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import __version__
from .errors import LockedError, OutputError, Problem
from .guard import disk_error, disk_failure
from .partsfile import decode_parts, encode_parts
from .sources.loaders import file_sha256, stat_values

STATE_DIR = ".minemap"
STATE = "state.json"
JOURNAL = "publish.json"
BACKUP = ".previous"  # inside a staging folder: the files a publish replaces, to roll back to
FULL_RUN = "full run:"  # how the problems that make `update` start afresh begin
KILL_HOOK = "MINEMAP_TEST_KILL_AFTER_RENAMES"  # tests: SIGKILL this process after that many renames


class RasterCheck(BaseModel):
    """What is remembered of one raster file (see sources.loaders.inspect_raster)."""

    size: int
    mtime_ns: int
    ctime_ns: int
    ino: int
    band: int
    sha256: str
    min: float
    max: float
    nodata: float | None = None  # the source's `nodata` option the range was read with
    zero_border: bool | None = None  # no nodata and every edge pixel exactly 0 (None: not known)


class ObjectCheck(BaseModel):
    """The same for a raster in object storage (issue #23): its HEAD (ETag, size, last-modified) instead
    of a stat; `sha256` holds that identity ("etag … size … modified …"), the object is not downloaded."""

    size: int
    etag: str
    modified: str
    band: int
    sha256: str
    min: float
    max: float
    nodata: float | None = None
    zero_border: bool | None = None


class GridKey(BaseModel):
    """The grid the products were computed on (see state.grid_key)."""

    model_config = ConfigDict(extra="forbid")
    crs: str
    transform: list[float] = Field(min_length=6, max_length=6)
    shape: list[int] = Field(min_length=2, max_length=2)
    chunk: int
    region_sha256: str


class Published(BaseModel):
    sha256: str
    size: int
    stat: list[int] | None = None  # size, mtime_ns, ctime_ns, inode once in OUT (see `is_published`)


class State(BaseModel):
    """state.json: checked in full when read, so a tampered or stale file means a full run."""

    model_config = ConfigDict(extra="forbid")
    version: str
    grid: GridKey
    chunks: dict[str, str]
    files: dict[str, str]
    parts: dict[str, dict[str, list[float]]]
    sizes: dict[str, int]
    summary_parts: str | None
    summary_parts_sha256: str | None
    raster_checks: dict[str, RasterCheck | ObjectCheck]
    published: dict[str, Published]
    pages: dict[str, str] = {}  # the briefing's kept district drawings: name → SHA-256
    made_from: dict[str, str] = {}  # published deliverables reused when remade from the same: name → key
    looks: dict[str, str] = {}  # the briefing pages' cells: window → digest (see writers.briefing.district.district_look)

    @field_validator("published", "made_from")
    @classmethod
    def _names(cls, v: dict) -> dict:
        for name in v:
            _plain_name(name)
        return v

    @field_validator("pages")
    @classmethod
    def _page_names(cls, v: dict) -> dict:
        for name in v:
            if not re.fullmatch(r"[0-9a-f]{32}-[0-9a-f]{16}\.pdf", name):
                raise ValueError(f"not a kept page's name: {name!r}")
        return v


def _plain_name(name: str) -> str:
    """A file name, or one in a subfolder of OUT (`evidence/x.tif`): never a way out of OUT."""
    if not re.fullmatch(r"(?:[A-Za-z0-9_][A-Za-z0-9_.-]*/)?[A-Za-z0-9_][A-Za-z0-9_.-]*", name):
        raise ValueError(f"not a plain file name: {name!r}")
    return name


class Journal(BaseModel):
    """publish.json: the staging folder, every file to move with its hash, and the state after."""

    model_config = ConfigDict(extra="forbid")
    staging: str
    files: dict[str, str]
    previous: list[str] | None  # files hard-linked into staging/.previous (None: no hard links here)
    state: State

    @field_validator("staging")
    @classmethod
    def _staging_name(cls, v: str) -> str:
        if not re.fullmatch(r"\.staging-[A-Za-z0-9_]+", v):
            raise ValueError(f"not a staging folder name: {v!r}")
        return v

    @field_validator("files", "previous")
    @classmethod
    def _names(cls, v):
        for name in v or ():
            _plain_name(name)
        return v


# --- lock and staging ------------------------------------------------------------------------

@contextmanager
def output_lock(out_dir: Path, wait: float = 0.0) -> Iterator[list[Problem]]:
    """Hold OUT's lock while writing; another holder → wait up to `wait` s, then LockedError.

    The lock is an flock: the kernel releases it when its holder dies, even by SIGKILL. Holding
    it, an interrupted publish is completed or rolled back first (yields what was done, as
    warnings), then leftovers of killed runs (staging folders) are removed.
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
        try:
            notes = recover(out_dir)
            for stale in out_dir.glob(".staging-*"):
                shutil.rmtree(stale, ignore_errors=True)
            yield notes
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def staging_folder(out_dir: Path, needed: int | None = None) -> Iterator[Path]:
    """A scratch folder inside OUT (same filesystem, so renames are atomic), removed afterwards
    unless a publish journal still needs it (the next lock holder completes that publish).
    A write the disk refuses (full, quota, read-only, I/O error) becomes one DiskError saying
    how much (`needed` bytes) a run needs there."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    except OSError as e:
        raise OutputError(f"cannot write the output folder: {e.strerror}", out_dir) from None

    def remove() -> None:
        journal = _read_journal(out_dir)
        if not (isinstance(journal, Journal) and journal.staging == folder.name):
            shutil.rmtree(folder, ignore_errors=True)

    try:
        yield folder
    except Exception as e:
        if reason := disk_failure(e, out_dir):
            remove()  # first, so the message tells the free space left
            raise disk_error(reason, out_dir, needed) from None
        raise
    finally:
        remove()


def file_hashes(folder: Path, names: list[str]) -> dict[str, str]:
    """SHA-256 of each named file in `folder` (a few at once: hashlib releases the GIL)."""
    with ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
        return dict(zip(names, pool.map(path_sha256, [folder / n for n in names])))


def path_sha256(path: Path) -> str:
    """A file's SHA-256; for a folder (a Zarr store), the SHA-256 of its files' relative paths
    and SHA-256s, sorted: any changed, added or removed file changes it."""
    if not path.is_dir():
        return file_sha256(path)
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(f"{f.relative_to(path).as_posix()}\0{file_sha256(f)}\n".encode())
    return h.hexdigest()


def is_published(path: Path, entry: dict) -> bool:
    """Whether OUT's `path` is the file the last run published (`entry`: its state record): its
    size, modification time, change time and inode as recorded (no one can set a ctime back: any
    write or rename moves it), else its SHA-256 read in full, as for input rasters."""
    try:
        if not path.is_dir() and entry.get("stat") == stat_values(path.stat()):
            return True
    except OSError:
        return False
    return path_sha256(path) == entry["sha256"]


def path_size(path: Path) -> int:
    """A file's size; a folder's: its files' sizes summed."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def _put(src: Path, dst: Path) -> None:
    """os.replace, for a folder too: a folder already at `dst` is first moved aside beside
    `src` (inside staging), then removed; a kill in between leaves it for the journal's
    completion or rollback, and the aside for the staging clean-up."""
    if dst.is_dir():
        aside = src.parent / f".replaced-{dst.name}"
        shutil.rmtree(aside, ignore_errors=True)
        os.replace(dst, aside)
        os.replace(src, dst)
        shutil.rmtree(aside)
    else:
        os.replace(src, dst)


# --- publish -----------------------------------------------------------------------------------

def publish(folder: Path, out_dir: Path, hashes: dict[str, str], state: dict) -> None:
    """Move the staged files (`hashes`: name → SHA-256, in order, run.json last) into OUT as one
    journaled step, then write `state`. Completed by the next lock holder if interrupted."""
    state = {**state, "version": __version__,
             "published": {n: {"sha256": h, "size": path_size(folder / n)} for n, h in hashes.items()}}
    backup, kept = folder / BACKUP, []
    backup.mkdir()
    for name in hashes:
        try:
            (backup / name).parent.mkdir(exist_ok=True)
            if (out_dir / name).is_dir():  # a store: its files hard-linked (a new store never writes into them)
                shutil.copytree(out_dir / name, backup / name, copy_function=os.link)
            else:
                os.link(out_dir / name, backup / name)
            kept.append(name)
        except FileNotFoundError:
            continue
        except OSError:  # no hard links on this filesystem: roll forward only
            kept = None
            break
    journal = Journal(staging=folder.name, files=hashes, previous=kept, state=State.model_validate(state))
    _write_json(out_dir / STATE_DIR / JOURNAL, journal.model_dump(mode="json"))
    _complete(out_dir, journal)


def _complete(out_dir: Path, journal: Journal) -> int:
    """Rename what is still staged, write the state, drop the journal; returns files moved."""
    folder, moved = out_dir / journal.staging, 0
    kill_after = os.environ.get(KILL_HOOK)
    for name in journal.files:
        if not (folder / name).exists():  # moved before an interruption
            continue
        if name.endswith(".tif"):  # QGIS's statistics of the old file
            Path(f"{out_dir / name}.aux.xml").unlink(missing_ok=True)
        (out_dir / name).parent.mkdir(exist_ok=True)  # evidence/ (bundled rasters)
        _put(folder / name, out_dir / name)
        moved += 1
        if kill_after is not None and moved >= int(kill_after):
            os.kill(os.getpid(), signal.SIGKILL)
    _fsync_dir(out_dir)
    state = journal.state.model_dump(mode="json")
    for name, entry in state["published"].items():  # as each file now is in OUT (a rename sets its ctime)
        if (out_dir / name).is_file():
            entry["stat"] = stat_values((out_dir / name).stat())
    write_state(out_dir, state)
    drop_stale_parts(out_dir, journal.state.summary_parts)
    (out_dir / STATE_DIR / JOURNAL).unlink()
    return moved


def recover(out_dir: Path) -> list[Problem]:
    """Complete (or roll back) a publish that was interrupted; say what was done."""
    path = out_dir / STATE_DIR / JOURNAL
    journal = _read_journal(out_dir)
    if journal is None:
        return []
    if isinstance(journal, str):  # cannot tell which files moved: the state no longer describes OUT
        _discard_state(out_dir)
        path.unlink()
        return [Problem(str(path), f"unreadable publish journal ({journal}): removed, with the state, "
                                   "so the products are made afresh (full run)")]
    folder = out_dir / journal.staging
    missing = [n for n, h in journal.files.items() if not _holds(folder / n, h) and not _holds(out_dir / n, h)]
    if not missing:
        left = _complete(out_dir, journal)
        return [Problem(str(out_dir), f"an interrupted publish was completed ({left} of {len(journal.files)} "
                                      f"files were still staged in {journal.staging})")]
    why = f"{', '.join(missing)} missing or changed in {journal.staging}"
    restored = _roll_back(out_dir, journal)
    path.unlink()
    if restored:
        return [Problem(str(out_dir), f"an interrupted publish could not be completed ({why}): "
                                      "the previous files were put back")]
    _discard_state(out_dir)
    return [Problem(str(out_dir), f"an interrupted publish could neither be completed ({why}) nor rolled back: "
                                  "the state was discarded, so the products are made afresh (full run)")]


def _roll_back(out_dir: Path, journal: Journal) -> bool:
    """Put the replaced files back and remove the new ones; False if that is impossible."""
    if journal.previous is None:
        return False
    backup = out_dir / journal.staging / BACKUP
    if any(not (backup / n).exists() for n in journal.previous):
        return False
    for name, sha in journal.files.items():
        if name in journal.previous:
            _put(backup / name, out_dir / name)
        elif _holds(out_dir / name, sha):
            shutil.rmtree(out_dir / name) if (out_dir / name).is_dir() else (out_dir / name).unlink()
    state = read_state(out_dir)
    if state == journal.state.model_dump(mode="json"):
        _discard_state(out_dir)
        state = None
    drop_stale_parts(out_dir, (state or {}).get("summary_parts"))
    return True


def _holds(path: Path, sha: str) -> bool:
    return path.exists() and path_sha256(path) == sha


def _read_journal(out_dir: Path) -> Journal | str | None:
    """The journal, None if there is none, or why it cannot be used."""
    try:
        return Journal.model_validate_json((out_dir / STATE_DIR / JOURNAL).read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError) as e:
        return _first_error(e)


# --- state and summary parts ---------------------------------------------------------------------

def load_state(out_dir: Path) -> tuple[dict | None, Problem | None]:
    """The last run's state; (None, None) if there is none, (None, problem) if it cannot be used
    (corrupt, tampered, or written by another minemap version)."""
    path = out_dir / STATE_DIR / STATE
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as e:
        return None, Problem(str(path), f"{FULL_RUN} unreadable ({_first_error(e)})")
    if not isinstance(data, dict) or data.get("version") != __version__:
        version = data.get("version") if isinstance(data, dict) else None
        return None, Problem(str(path), f"{FULL_RUN} written by {f'minemap {version}' if version else 'another minemap'}"
                                        f" (this is {__version__})")
    try:
        return State.model_validate(data).model_dump(mode="json"), None
    except ValidationError as e:
        return None, Problem(str(path), f"{FULL_RUN} not a valid state file ({_first_error(e)})")


def read_state(out_dir: Path) -> dict | None:
    return load_state(out_dir)[0]


def write_state(out_dir: Path, state: dict) -> None:
    """Atomically replace the state (after the products it describes are in place)."""
    _write_json(out_dir / STATE_DIR / STATE, state)


def _discard_state(out_dir: Path) -> None:
    (out_dir / STATE_DIR / STATE).unlink(missing_ok=True)


def write_parts(out_dir: Path, parts: dict[str, dict]) -> tuple[str, str]:
    """Store per-chunk summary parts under a name made of their hash (the state then points to
    it, so a run killed between the two leaves the old state and its parts intact); returns the
    file's name and SHA-256."""
    folder = out_dir / STATE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    data = encode_parts(parts)
    sha = hashlib.sha256(data).hexdigest()
    name = f"parts-{sha[:16]}.npz"
    if not (folder / name).exists():
        tmp = folder / f"{name}.{os.getpid()}"
        tmp.write_bytes(data)
        os.replace(tmp, folder / name)
    return name, sha


def read_parts(out_dir: Path, state: dict | None) -> tuple[dict[str, dict] | None, Problem | None]:
    """The summary parts the state points to: (None, None) if it points to none, (None, problem)
    if they are gone, changed or malformed. Never unpickles anything."""
    name, sha = (state or {}).get("summary_parts"), (state or {}).get("summary_parts_sha256")
    if not name:
        return None, None
    path = out_dir / STATE_DIR / name
    try:
        _plain_name(name)
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != sha:
            raise ValueError("its SHA-256 is not the one the state recorded")
        return decode_parts(data), None
    except (OSError, ValueError) as e:
        return None, Problem(str(path), f"{FULL_RUN} unusable summary parts ({_first_error(e)})")


@dataclass(frozen=True)
class Kept:
    """A deliverable the last run published (`path` in OUT, its SHA-256) and the key of what it
    was made from (see `kept_files`): a run that would make it from the same key copies it."""

    path: Path
    key: str
    sha256: str

    def reuse(self, key: str, target: Path) -> bool:
        """Copy the file to `target` (in staging) if `key` is its key and its bytes are still the
        ones published; False: make it again."""
        if key != self.key:
            return False
        h = hashlib.sha256()
        try:
            with open(self.path, "rb") as src, open(target, "wb") as dst:  # hashed as copied
                while block := src.read(1 << 20):
                    h.update(block)
                    dst.write(block)
        except FileNotFoundError:
            target.unlink(missing_ok=True)
            return False
        if h.hexdigest() != self.sha256:
            target.unlink()
            return False
        return True


def kept_files(out_dir: Path, state: dict | None) -> dict[str, Kept]:
    """The last run's deliverables that recorded what they were made from (maps, evidence.gpkg),
    by name: drawn or written again only when what they show changed."""
    published = (state or {}).get("published", {})
    return {name: Kept(out_dir / name, key, published[name]["sha256"])
            for name, key in (state or {}).get("made_from", {}).items() if name in published}


def kept_pages(out_dir: Path, state: dict | None) -> dict[Path, str]:
    """The briefing's district drawings OUT keeps for reuse (see writers.briefing.pack), each with the
    SHA-256 the last run's state recorded: only those are read, and only if their bytes match."""
    return {_pages(out_dir) / name: sha for name, sha in (state or {}).get("pages", {}).items()}


def _pages(out_dir: Path) -> Path:
    return out_dir / STATE_DIR / "pages"


def staged_pages(staging: Path) -> Path:
    return staging / ".pages"


def page_hashes(staging: Path) -> dict[str, str]:
    """The staged drawings' SHA-256, for the state (see `kept_pages`)."""
    staged = staged_pages(staging)
    return {p.name: file_sha256(p) for p in sorted(staged.iterdir())} if staged.is_dir() else {}


def keep_pages(staging: Path, out_dir: Path) -> None:
    """After a publish: the pages this run's briefing used become OUT's kept pages, the others go
    (a run without a briefing leaves them, unlisted in its state). A page lost or damaged here is
    only drawn again."""
    staged, kept = staged_pages(staging), _pages(out_dir)
    if not staged.is_dir():
        return
    kept.mkdir(parents=True, exist_ok=True)
    names = set()
    for path in staged.iterdir():
        os.replace(path, kept / path.name)
        names.add(path.name)
    for path in kept.iterdir():
        if path.name not in names:
            path.unlink(missing_ok=True)


def drop_stale_parts(out_dir: Path, keep: str | None) -> None:
    for old in (out_dir / STATE_DIR).glob("parts-*"):
        if old.name != keep:
            old.unlink(missing_ok=True)


# --- helpers -------------------------------------------------------------------------------------

def _write_json(path: Path, data: dict) -> None:
    """Write, flush to disk, rename into place: the file is either the old or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}")
    with open(tmp, "w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _first_error(e: Exception) -> str:
    if isinstance(e, ValidationError):
        err = e.errors()[0]
        return f"{'.'.join(str(x) for x in err['loc']) or 'top level'}: {err['msg']}"
    if isinstance(e, OSError):
        return e.strerror or str(e)
    return str(e).splitlines()[0] if str(e) else type(e).__name__
