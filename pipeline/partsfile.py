"""Per-chunk summary parts (see `summaries.chunk_part`) as a NumPy .npz file: data only.

An update reads these back from OUT/.minemap, a folder teams often share: a pickle there would
run whatever code its writer put in it. An .npz read with allow_pickle=False holds only arrays;
zone outlines are kept as WKB bytes. Anything unexpected in the file is refused (ValueError).
"""

from __future__ import annotations

import io
import re
import zipfile

import numpy as np
import shapely

CHUNK = re.compile(r"\d+,\d+")
ZONE_STATS = {"cells", "pc_n", "pc_sum", "pc_max", "by_class", "districts", "n_sum", "n_min"}
TASK_STATS = {"cells", "pc_n", "pc_sum", "by_class", "districts", "n_sum", "n_min", "direct", "square", "first"}
STATS = {"zones": ZONE_STATS, "tasks": TASK_STATS}  # the pieces of a part, and the sums each holds
NEEDED = {"zones": {"cells", "pc_sum", "pc_max", "by_class", "districts"},
          "tasks": {"cells", "pc_sum", "by_class", "districts", "square", "first"}}
EDGES = ("top", "bottom", "left", "right")


def encode_parts(parts: dict[str, dict]) -> bytes:
    """The parts ({"i,j": {"districts": array, "zones": None | dict, "tasks": None | dict}}) as .npz bytes."""
    arrays: dict[str, np.ndarray] = {}
    for key, part in sorted(parts.items()):
        arrays[f"{key}.districts"] = np.asarray(part["districts"])
        for kind in STATS:
            pieces = part.get(kind)
            if pieces is None:
                continue
            arrays[f"{key}.{kind}.n"] = np.asarray(pieces["n"], dtype=np.int64)
            for name, values in pieces["stats"].items():
                arrays[f"{key}.{kind}.stats.{name}"] = np.asarray(values)
            for side, labels in pieces["edges"].items():
                arrays[f"{key}.{kind}.edges.{side}"] = np.asarray(labels)
            arrays[f"{key}.{kind}.wkb"] = np.frombuffer(b"".join(pieces["wkb"]), dtype=np.uint8)
            arrays[f"{key}.{kind}.wkb_sizes"] = np.array([len(w) for w in pieces["wkb"]], dtype=np.int64)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def decode_parts(data: bytes) -> dict[str, dict]:
    """The parts back from `encode_parts` bytes; ValueError for anything else (never unpickles)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, OSError, EOFError, KeyError) as e:
        raise ValueError(f"not a parts file ({e})") from None
    parts: dict[str, dict] = {}
    for name, values in arrays.items():
        key, _, field = name.partition(".")
        if not CHUNK.fullmatch(key) or values.dtype.kind not in "biuf":
            raise ValueError(f"unexpected entry {name!r}")
        part = parts.setdefault(key, {"districts": None, "zones": None, "tasks": None})
        if field == "districts":
            _expect(values.ndim == 2 and values.dtype == np.float64, name)
            part["districts"] = values
            continue
        head, _, rest = field.partition(".")
        _expect(head in STATS, name)
        zones = part[head] = part[head] or {"stats": {}, "edges": {}}
        kind, _, sub = rest.partition(".")
        if kind == "stats" and sub in STATS[head]:
            zones["stats"][sub] = values
        elif kind == "edges" and sub in EDGES:
            _expect(values.ndim == 1 and values.dtype.kind in "iu", name)
            zones["edges"][sub] = values
        elif kind in ("n", "wkb", "wkb_sizes") and not sub:
            zones[kind] = values
        else:
            raise ValueError(f"unexpected entry {name!r}")
    for key, part in parts.items():
        _expect(part["districts"] is not None, f"{key}.districts")
        for kind in STATS:
            if part[kind] is not None:
                part[kind] = _pieces(key, kind, part[kind])
    return parts


def _pieces(key: str, kind: str, z: dict) -> dict:
    """Check one chunk's zone or task pieces fit together and split the WKB back into outlines."""
    _expect(all(k in z for k in ("n", "wkb", "wkb_sizes")) and set(z["edges"]) == set(EDGES), f"{key}.{kind}")
    n = int(z["n"]) if z["n"].ndim == 0 else -1
    sizes = z["wkb_sizes"]
    _expect(n > 0 and sizes.shape == (n,) and (sizes > 0).all() and int(sizes.sum()) == z["wkb"].size
            and z["wkb"].dtype == np.uint8, f"{key}.{kind}.wkb")
    _expect(all(len(v) == n for v in z["stats"].values()) and NEEDED[kind] <= set(z["stats"]),
            f"{key}.{kind}.stats")
    blob = z["wkb"].tobytes()
    ends = np.cumsum(sizes).tolist()
    wkb = [blob[a:b] for a, b in zip([0, *ends[:-1]], ends)]
    try:
        shapely.from_wkb(wkb)
    except shapely.errors.GEOSException as e:
        raise ValueError(f"{key}.{kind}.wkb: not WKB ({e})") from None
    return {"n": n, "stats": z["stats"], "wkb": wkb, "edges": z["edges"]}


def _expect(ok: bool, name: str) -> None:
    if not ok:
        raise ValueError(f"malformed entry {name!r}")
