"""OUT in object storage (`s3://bucket/prefix`): the output-folder protocol (see `outdir`) without renames.

An object store has no rename and no flock, so a run never writes where a reader looks:

    prefix/runs/<run-id>/…     one run's whole set: products (COGs uploaded in parts from the chunks the
                               workers staged in runs/<run-id>/.chunks/, removed after), styles, summaries,
                               deliverables, its item.json, catalog.json, history item, run.json, and its
                               .minemap/state.json and summary parts (what `update` reads back)
    prefix/item.json           the pointer files, written after the whole set and in this order, run.json
    prefix/catalog.json        last of all: item.json's assets link into runs/<run-id>/, catalog.json links
    prefix/run.json            the history items of the kept runs, run.json is the run record plus `set`:
                               the run, its prefix and every file of it (key, SHA-256, size, ETag)
    prefix/.minemap/lock       the lock object

Why the COGs are streamed and not composed server-side (UploadPartCopy from the chunk objects): GDAL's
COG layout puts tiles row-major over the whole grid, so a chunk's tiles are spread over the file, and a
copied part must be ≥ 5 MiB; the assembly instead fetches each chunk's run of tiles of one level with one
ranged GET, keeps it only until its last tile is written, and sends store.PART-sized parts (`cog.assemble_stream`).

run.json at the root is what makes a set current: a reader reads it once and follows its keys (every one
under the run's prefix, never rewritten), so it never sees a mixed set, and a run killed before it leaves
the previous set current. The lock is a conditional PUT (If-None-Match: *), kept alive by a heartbeat and
taken over (If-Match on its ETag) once older than LOCK_TTL by the store's clock: a killed run's lock
blocks the next run for at most that long. After a publish, run prefixes that neither run.json nor the
history catalog names are deleted (a killed run's leftovers, runs past keep_history), and multipart
uploads left unfinished under runs/ are aborted.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Callable, Iterator

from . import __version__
from .errors import LockedError, Problem
from .outdir import FULL_RUN, STATE, STATE_DIR, State, file_hashes
from .store import Upload, client, split

RUNS = "runs"
LOCK = f"{STATE_DIR}/lock"
SCRATCH = ".chunks"  # inside a run's prefix: the workers' staged chunks, removed once the COGs are made
ITEM, CATALOG, RECORD = "item.json", "catalog.json", "run.json"
POINTERS = (ITEM, CATALOG, RECORD)  # written in this order: run.json last
ROOT_COPY = f"{STATE_DIR}/root-"  # the run's own copies of its root item and catalog (to repair the root)
LOCK_TTL = float(os.environ.get("MINEMAP_S3_LOCK_TTL", "300"))  # seconds without a heartbeat: stale
TEST_FAIL = "MINEMAP_TEST_S3_FAIL_BEFORE"  # tests: raise before writing this pointer file


def is_s3(out: object) -> bool:
    return isinstance(out, str) and out.startswith("s3://")


def new_run_id() -> str:
    """Sortable and unique: UTC time, then a random part (two runs in one second differ)."""
    return f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


@dataclass
class S3Out:
    """One run's view of an OUT in object storage: where its set goes, the lock, the publish."""

    url: str
    run_id: str = field(default_factory=new_run_id)
    uploaded: dict[str, dict] = field(default_factory=dict)  # product file → size, sha256, etag

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self.bucket, self.root = split(self.url)
        self._lock = threading.Lock()

    # --- where things go ---------------------------------------------------------------------------

    def key(self, name: str) -> str:
        return f"{self.root}/{name}" if self.root else name

    def run_key(self, name: str, run: str | None = None) -> str:
        return self.key(f"{RUNS}/{run or self.run_id}/{name}")

    def gdal(self, name: str, run: str | None = None) -> Path:
        """A run's file as a GDAL path (rasterio opens it; the chunk stages upload to it)."""
        return Path(f"/vsis3/{self.bucket}/{self.run_key(name, run)}")

    @property
    def scratch(self) -> Path:
        return self.gdal(SCRATCH)

    def product(self, name: str) -> Path:
        return self.gdal(f"{name}.tif")

    def assemble(self, path: Path, stream: Callable[[Callable[[bytes], None]], int]) -> None:
        """Upload one product COG as `stream` writes it (parts of store.PART bytes), noting its SHA-256."""
        name = Path(path).name
        upload = Upload(self.bucket, self.run_key(name))
        try:
            stream(upload.write)
            done = upload.close()
        except BaseException:
            upload.abort()
            raise
        with self._lock:
            self.uploaded[name] = done

    def drop_scratch(self) -> None:
        self._delete(self._list(self.run_key(SCRATCH) + "/"))

    # --- the lock ----------------------------------------------------------------------------------

    @contextmanager
    def lock(self, wait: float = 0.0) -> Iterator[list[Problem]]:
        """Hold OUT's lock object while writing; another live holder → wait up to `wait` s, then
        LockedError. Yields what was repaired (root pointers left mixed by a killed publish)."""
        c, key = client(), self.key(LOCK)
        body = json.dumps({"run": self.run_id, "host": socket.gethostname(), "pid": os.getpid()}).encode()
        deadline = time.monotonic() + wait
        while True:
            try:
                etag = c.put_object(Bucket=self.bucket, Key=key, Body=body, IfNoneMatch="*")["ETag"]
                break
            except c.exceptions.ClientError as e:
                if _code(e) not in ("PreconditionFailed", "ConditionalRequestConflict", "412", "409"):
                    raise  # denied, no such bucket…: the runner makes it a StoreError naming OUT
            if (etag := self._take_stale(key, body)) is not None:
                break
            if time.monotonic() >= deadline:
                raise LockedError("another minemap run or update is writing this OUT; try again when it has "
                                  "finished (or pass --wait SECONDS)", self.url) from None
            time.sleep(0.5)
        held = self.held = {"etag": etag}
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(key, body, held, stop), daemon=True)
        beat.start()
        try:
            yield self._repair_root()
        finally:
            stop.set()
            beat.join()
            try:
                if c.head_object(Bucket=self.bucket, Key=key)["ETag"] == held["etag"]:  # still ours
                    c.delete_object(Bucket=self.bucket, Key=key)
            except c.exceptions.ClientError:
                pass

    def _take_stale(self, key: str, body: bytes) -> str | None:
        """Take over a lock whose holder stopped beating LOCK_TTL ago (the store's clock); None: it is live."""
        c = client()
        try:
            head = c.head_object(Bucket=self.bucket, Key=key)
        except c.exceptions.ClientError:
            return None  # released meanwhile: try the conditional PUT again
        now = parsedate_to_datetime(head["ResponseMetadata"]["HTTPHeaders"]["date"])
        if (now - head["LastModified"]).total_seconds() < LOCK_TTL:
            return None
        try:
            return c.put_object(Bucket=self.bucket, Key=key, Body=body, IfMatch=head["ETag"])["ETag"]
        except c.exceptions.ClientError:
            return None  # someone else took it first

    def _heartbeat(self, key: str, body: bytes, held: dict, stop: threading.Event) -> None:
        while not stop.wait(LOCK_TTL / 4):
            try:
                held["etag"] = client().put_object(Bucket=self.bucket, Key=key, Body=body,
                                                   IfMatch=held["etag"])["ETag"]
            except Exception:  # lost (taken over after a long stall): the publish checks before its pointers
                held["etag"] = None
                return

    def _repair_root(self) -> list[Problem]:
        """A publish killed between its pointer files leaves item.json or catalog.json naming a set
        run.json does not: put back the current run's copies (run.json decides what is current)."""
        pointer = self.pointer()
        if pointer is None:
            return []
        run, repaired = pointer["set"]["run"], []
        for name in (ITEM, CATALOG):
            try:
                current = json.loads(self._get(self.key(name)))
            except (self._missing, ValueError):
                current = {}
            if _run_of(current) != run:
                client().copy_object(Bucket=self.bucket, Key=self.key(name),
                                     CopySource={"Bucket": self.bucket, "Key": self.run_key(ROOT_COPY + name, run)})
                repaired.append(name)
        return [Problem(self.url, f"an interrupted publish was undone: {', '.join(repaired)} again name the current "
                                  f"run {run}")] if repaired else []

    # --- the previous set --------------------------------------------------------------------------

    def pointer(self) -> dict | None:
        """The root run.json (the current set), None if there is none or it is not one."""
        try:
            record = json.loads(self._get(self.key(RECORD)))
        except self._missing:
            return None
        except ValueError:
            return None
        return record if isinstance(record, dict) and isinstance(record.get("set"), dict) else None

    def previous(self, shadow: Path) -> tuple[dict | None, Problem | None, Path | None]:
        """The current set's state and summary parts, fetched through the pointer into `shadow`/.minemap
        (where `outdir.load_state` and `read_parts` read them), each checked against the pointer's
        SHA-256; and the set's folder as a GDAL path (its products are read back from there).
        (None, problem, None): a full run, and why."""
        pointer = self.pointer()
        if pointer is None:
            return None, None, None
        files, run = pointer["set"]["files"], pointer["set"]["run"]
        state_name = f"{STATE_DIR}/{STATE}"
        if state_name not in files:
            return None, Problem(self.url, f"{FULL_RUN} the current set has no state"), None
        folder = shadow / STATE_DIR
        folder.mkdir(parents=True, exist_ok=True)
        for name, entry in files.items():
            if name.startswith(f"{STATE_DIR}/parts-") or name == state_name:
                (folder / Path(name).name).write_bytes(self._get(entry["key"]))
        if (hashes := file_hashes(folder, [STATE]))[STATE] != files[state_name]["sha256"]:
            return None, Problem(self.url, f"{FULL_RUN} the state is not the one the pointer names"), None
        from .outdir import load_state

        state, problem = load_state(shadow)
        if state is None:
            return None, problem, None
        listed = {o["Key"]: o for o in self._list(self.run_key("", run))}
        for name in state["published"]:
            entry, found = files.get(name), listed.get(files.get(name, {}).get("key"))
            if entry is None or found is None or found["Size"] != entry["size"] \
                    or found["ETag"].strip('"') != entry["etag"]:
                return None, Problem(f"{self.url}/{name}", f"{FULL_RUN} missing or not the object the last run "
                                                            "wrote (size or ETag differs)"), None
        del hashes
        return state, None, Path(f"/vsis3/{self.bucket}/{self.key(f'{RUNS}/{run}')}")

    # --- publish -----------------------------------------------------------------------------------

    def publish(self, staging: Path, names: list[str], record: dict, state: dict, keep: int) -> dict:
        """Upload the staged files `names` under this run's prefix, then the pointer files (run.json
        last), then delete what no pointer needs. `record`: the run record (run.json); `state`: what
        `update` reads back. Returns the `set` written into the root run.json."""
        c = client()
        state = {**state, "version": __version__, "published": {
            n: {"sha256": record["files"][n], "size": self._size(staging, n)} for n in record["files"]}}
        State.model_validate(state)  # as outdir checks it when read
        state_file = staging / STATE_DIR / STATE
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps(state))
        item = _root_item(json.loads((staging / ITEM).read_text()), f"./{RUNS}/{self.run_id}/", self.run_id)
        catalog = self._root_catalog(json.loads((staging / CATALOG).read_text()), keep)
        for name, doc in ((ITEM, item), (CATALOG, catalog)):  # the run's own copies, to repair a root left mixed
            (staging / f"{ROOT_COPY}{name}").write_bytes(_json(doc))
        extra = [f"{STATE_DIR}/{p.name}" for p in sorted((staging / STATE_DIR).iterdir()) if p.is_file()]
        local = [n for n in dict.fromkeys([*names, *extra]) if n not in self.uploaded]
        hashes = file_hashes(staging, local)

        def put(name: str) -> tuple[str, dict]:
            path = staging / name
            with open(path, "rb") as f:
                etag = c.put_object(Bucket=self.bucket, Key=self.run_key(name), Body=f)["ETag"]
            return name, {"size": path.stat().st_size, "sha256": hashes[name], "etag": etag.strip('"')}

        with ThreadPoolExecutor(8, thread_name_prefix="minemap-upload") as pool:
            done = dict(pool.map(put, local))
        files = {n: {"key": self.run_key(n), **(self.uploaded.get(n) or done[n])} for n in [*self.uploaded, *local]}
        the_set = {"run": self.run_id, "prefix": self.run_key(""), "url": f"s3://{self.bucket}/{self.run_key('')}",
                   "files": dict(sorted(files.items()))}
        body = {ITEM: item, CATALOG: catalog, RECORD: {**record, "set": the_set}}
        if getattr(self, "held", {"etag": "not locked here"}).get("etag") is None:  # taken over: stalled too long
            raise LockedError("this run lost OUT's lock (no heartbeat for MINEMAP_S3_LOCK_TTL seconds) and another "
                              "run took it: nothing was published; run again", self.url)
        for name in POINTERS:
            if os.environ.get(TEST_FAIL) == name:
                raise RuntimeError(f"test: stopped before {name}")
            c.put_object(Bucket=self.bucket, Key=self.key(name), Body=_json(body[name]))
        self.clean(catalog)
        return the_set

    def _root_catalog(self, staged: dict, keep: int) -> dict:
        """The history catalog at the root: the kept runs' history items (each in its run's prefix,
        linking that run's files), this run's last; the last `keep`."""
        ours = [link for link in staged.get("links", []) if link.get("rel") == "item"][-1]
        mine = {**ours, "href": f"./{RUNS}/{self.run_id}/{ours['href'].removeprefix('./')}"}
        try:
            before = json.loads(self._get(self.key(CATALOG)))
        except (self._missing, ValueError):
            before = {}
        runs = self._runs()
        old = [link for link in before.get("links", []) if link.get("rel") == "item"
               and _href_run(link.get("href", "")) in runs]
        items = (old + [mine])[-keep:]
        rest = [link for link in staged.get("links", []) if link.get("rel") not in ("item", "current", "self")]
        return {**staged, "links": items + rest + [{"rel": "current", "href": f"./{ITEM}", "type": "application/json",
                                                     "title": "the newest run's item"}],
                "minemap:run": self.run_id}

    def clean(self, catalog: dict | None = None) -> list[str]:
        """Delete run prefixes neither the pointer nor the history catalog names (and their unfinished
        uploads); returns the runs removed. Call under the lock, after a publish."""
        pointer = self.pointer()
        keep = {pointer["set"]["run"]} if pointer else set()
        if catalog is None:
            try:
                catalog = json.loads(self._get(self.key(CATALOG)))
            except (self._missing, ValueError):
                catalog = {}
        keep |= {_href_run(link.get("href", "")) for link in catalog.get("links", []) if link.get("rel") == "item"}
        gone = sorted(self._runs() - keep)
        for run in gone:
            self._delete(self._list(self.key(f"{RUNS}/{run}/")))
        c = client()
        pages = c.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=self.key(f"{RUNS}/"))
        for page in pages:
            for up in page.get("Uploads", []):
                if up["Key"][len(self.key(RUNS)) + 1:].split("/")[0] not in keep:
                    c.abort_multipart_upload(Bucket=self.bucket, Key=up["Key"], UploadId=up["UploadId"])
        return gone

    # --- helpers -----------------------------------------------------------------------------------

    def _runs(self) -> set[str]:
        pages = client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.key(f"{RUNS}/"),
                                                                   Delimiter="/")
        return {p["Prefix"].rstrip("/").rsplit("/", 1)[-1] for page in pages for p in page.get("CommonPrefixes", [])}

    def _list(self, prefix: str) -> list[dict]:
        pages = client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [o for page in pages for o in page.get("Contents", [])]

    def _delete(self, objects: list[dict]) -> None:
        c = client()
        for i in range(0, len(objects), 1000):
            c.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": o["Key"]} for o in objects[i:i + 1000]],
                                                         "Quiet": True})

    def _get(self, key: str) -> bytes:
        return client().get_object(Bucket=self.bucket, Key=key)["Body"].read()

    @property
    def _missing(self) -> type[Exception]:
        return client().exceptions.NoSuchKey

    def _size(self, staging: Path, name: str) -> int:
        if name in self.uploaded:
            return self.uploaded[name]["size"]
        return (staging / name).stat().st_size


def _root_item(item: dict, prefix: str, run: str) -> dict:
    """The run's item for the root: its assets link into the run's prefix."""
    assets = {k: {**a, "href": prefix + a["href"].removeprefix("./")} for k, a in item.get("assets", {}).items()}
    return {**item, "assets": assets, "properties": {**item.get("properties", {}), "minemap:run": run}}


def _run_of(doc: dict) -> str | None:
    return doc.get("properties", {}).get("minemap:run") or doc.get("minemap:run")


def _href_run(href: str) -> str | None:
    parts = href.removeprefix("./").split("/")
    return parts[1] if len(parts) > 2 and parts[0] == RUNS else None


def _code(e: Exception) -> str:
    return str(getattr(e, "response", {}).get("Error", {}).get("Code", ""))


def _json(data: dict) -> bytes:
    return json.dumps(data, indent=2, default=str).encode()
