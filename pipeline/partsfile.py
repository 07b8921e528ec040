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
EDGES = ("top", "bottom", "left", "right")


def encode_parts(parts: dict[str, dict]) -> bytes:
    """The parts ({"i,j": {"districts": array, "zones": None | dict}}) as .npz bytes."""
    arrays: dict[str, np.ndarray] = {}
    for key, part in sorted(parts.items()):
        arrays[f"{key}.districts"] = np.asarray(part["districts"])
        zones = part["zones"]
        if zones is None:
            continue
        arrays[f"{key}.zones.n"] = np.asarray(zones["n"], dtype=np.int64)
        for name, values in zones["stats"].items():
            arrays[f"{key}.zones.stats.{name}"] = np.asarray(values)
        for side, labels in zones["edges"].items():
            arrays[f"{key}.zones.edges.{side}"] = np.asarray(labels)
        arrays[f"{key}.zones.wkb"] = np.frombuffer(b"".join(zones["wkb"]), dtype=np.uint8)
        arrays[f"{key}.zones.wkb_sizes"] = np.array([len(w) for w in zones["wkb"]], dtype=np.int64)
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
        part = parts.setdefault(key, {"districts": None, "zones": None})
        if field == "districts":
            _expect(values.ndim == 2 and values.dtype == np.float64, name)
            part["districts"] = values
            continue
        head, _, rest = field.partition(".")
        _expect(head == "zones", name)
        zones = part["zones"] = part["zones"] or {"stats": {}, "edges": {}}
        kind, _, sub = rest.partition(".")
        if kind == "stats" and sub in ZONE_STATS:
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
        if part["zones"] is not None:
            part["zones"] = _zones(key, part["zones"])
    return parts


def _zones(key: str, z: dict) -> dict:
    """Check one chunk's zone pieces fit together and split the WKB back into outlines."""
    _expect(all(k in z for k in ("n", "wkb", "wkb_sizes")) and set(z["edges"]) == set(EDGES), f"{key}.zones")
    n = int(z["n"]) if z["n"].ndim == 0 else -1
    sizes = z["wkb_sizes"]
    _expect(n > 0 and sizes.shape == (n,) and (sizes > 0).all() and int(sizes.sum()) == z["wkb"].size
            and z["wkb"].dtype == np.uint8, f"{key}.zones.wkb")
    _expect(all(len(v) == n for v in z["stats"].values()) and {"cells", "pc_n", "pc_sum", "pc_max",
                                                                 "by_class", "districts"} <= set(z["stats"]), f"{key}.zones.stats")
    blob = z["wkb"].tobytes()
    ends = np.cumsum(sizes).tolist()
    wkb = [blob[a:b] for a, b in zip([0, *ends[:-1]], ends)]
    try:
        shapely.from_wkb(wkb)
    except shapely.errors.GEOSException as e:
        raise ValueError(f"{key}.zones.wkb: not WKB ({e})") from None
    return {"n": n, "stats": z["stats"], "wkb": wkb, "edges": z["edges"]}


def _expect(ok: bool, name: str) -> None:
    if not ok:
        raise ValueError(f"malformed entry {name!r}")
