"""Drone layers published as STAC items (issue #23): the items of a static catalogue or of a STAC API
search, reduced to what a V_i raster needs: where its asset is, when it was flown, what version it is.

Static catalogues (catalog.json, collection.json, an ItemCollection, one item) are walked by their
`child` and `item` links, local or by URL; a STAC API is searched by GET `/search` (collection, the
region's bbox in lon/lat, datetime, optional `query` and `filter`) and every `next` page is read. Relative
hrefs are resolved against the document holding them, as the STAC spec says. Plain JSON, no code run.
"""

from __future__ import annotations

import json
import posixpath
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import unquote, urlencode, urljoin, urlsplit

from . import store
from .errors import InputError, Problem

MAX_PAGES = 10_000  # a search whose `next` links never end is refused, not followed for ever


@dataclass(frozen=True)
class StacItem:
    """One item as a V_i raster: its id, acquisition time (POSIX s), `updated` and the asset's href."""

    id: str
    acquired: float
    updated: str
    href: str  # absolute: a local path or a URL
    where: str  # the item's own document (or catalogue#id), for messages

    @property
    def identity(self) -> str:
        """What names this version of the item (its asset's content is fingerprinted apart)."""
        return f"{self.id}@{self.updated}"


# --- datetime: instants and intervals as the STAC API reads them ------------------------------------------

def interval(text: str) -> tuple[datetime | None, datetime | None]:
    """'2024-01-01/2024-06-30', '2024-05-01T10:00:00Z', '../2024-06-30' → (start, end), UTC, ends included;
    a date alone means the whole day. ValueError for anything else."""
    parts = text.split("/")
    if len(parts) > 2 or not text.strip():
        raise ValueError(f"datetime {text!r} is not an instant or a 'start/end' interval")
    if len(parts) == 1:
        return _instant(parts[0], False), _instant(parts[0], True)
    start, end = (None if p in ("", "..") else p for p in parts)
    lo, hi = (_instant(start, False) if start else None), (_instant(end, True) if end else None)
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"datetime {text!r}: the start is after the end")
    return lo, hi


def interval_text(text: str) -> str:
    """The interval in the RFC 3339 form STAC APIs take (`..` for an open end)."""
    lo, hi = interval(text)
    return "/".join(".." if t is None else t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in (lo, hi))


def _instant(text: str, end: bool) -> datetime:
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)
            return day + timedelta(days=1, microseconds=-1) if end else day
        t = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an RFC 3339 date or date-time (e.g. 2024-05-01 or "
                         f"2024-05-01T10:00:00Z)") from None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


# --- reading documents ----------------------------------------------------------------------------------

def join(base: str, href: str) -> str:
    """`href` resolved against the document `base` (a local path or a URL); absolute hrefs as they are."""
    if href.startswith("file://"):
        return unquote(urlsplit(href).path)
    if store.is_url(href) or Path(href).is_absolute():
        return href
    if store.is_url(base):
        parts = urlsplit(base)
        if parts.scheme in ("http", "https"):
            return urljoin(base, href)
        key = posixpath.normpath(posixpath.join(posixpath.dirname(parts.path), href))
        return f"{parts.scheme}://{parts.netloc}{key}"
    return str((Path(base).parent / href).resolve())


def read_json(where: str) -> dict:
    """A JSON document, local or by URL. A local failure is an InputError naming it; a store's or web
    server's refusal, absence or silence is its StoreError (exit 77, 66, 69), as for any input by URL."""
    shown = store.redact(where) if store.is_url(where) else where
    try:
        raw = store.read_bytes(where) if store.is_url(where) else Path(where).read_bytes()
    except FileNotFoundError:
        raise InputError("STAC document not found", where) from None
    except OSError as e:
        raise InputError(f"STAC document unreadable: {e.strerror or e}", where) from None
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"not a JSON document: {e}", shown) from None
    if not isinstance(doc, dict):
        raise InputError("not a STAC document (a JSON object was expected)", shown)
    return doc


def catalogue_items(root: str) -> list[tuple[dict, str]]:
    """Every item under a catalog, collection, ItemCollection or item, with the document it came from."""
    out: list[tuple[dict, str]] = []
    seen: set[str] = set()

    def visit(where: str) -> None:
        if where in seen:  # a catalogue may link a child twice (or in a loop)
            return
        seen.add(where)
        doc = read_json(where)
        kind = doc.get("type")
        if kind == "Feature":
            out.append((doc, where))
        elif kind == "FeatureCollection":
            out.extend((f, where) for f in doc.get("features", []) if isinstance(f, dict))
        elif kind in ("Catalog", "Collection"):
            for link in doc.get("links", []):
                if isinstance(link, dict) and link.get("rel") in ("child", "item") and link.get("href"):
                    visit(join(where, link["href"]))
        else:
            raise InputError(f"not a STAC catalog, collection, item collection or item (type {kind!r})",
                             store.redact(where))

    visit(root)
    return out


def search_items(api: str, params: dict) -> list[tuple[dict, str]]:
    """Every item a STAC API's GET /search returns for `params`, all pages (`next` links) read."""
    url = api.rstrip("/") + "/search?" + urlencode(params)
    out, seen = [], set()
    for _ in range(MAX_PAGES):
        if url in seen:
            raise InputError("the search's `next` link points back at a page already read", store.redact(url))
        seen.add(url)
        page = read_json(url)
        if page.get("type") != "FeatureCollection":
            raise InputError(f"not a STAC API search result (type {page.get('type')!r})", store.redact(url))
        out.extend((f, url) for f in page.get("features", []) if isinstance(f, dict))
        nxt = next((link for link in page.get("links", []) if isinstance(link, dict) and link.get("rel") == "next"),
                   None)
        if nxt is None or not page.get("features"):
            return out
        if nxt.get("method", "GET").upper() != "GET":
            raise InputError("the search's `next` link asks for a POST; minemap pages by GET (the STAC API "
                             "item-search conformance class)", store.redact(url))
        url = urljoin(url, nxt["href"])
    raise InputError(f"more than {MAX_PAGES} pages of search results: narrow the datetime or the filter",
                     store.redact(api))


# --- items → V_i rasters --------------------------------------------------------------------------------

def item_of(feature: dict, doc: str, asset: str, problems: list[Problem]) -> StacItem | None:
    """The item as a V_i raster, or None with a problem naming it (no asset `asset`, no datetime)."""
    iid = str(feature.get("id", "?"))
    self_href = next((link.get("href") for link in feature.get("links", [])
                      if isinstance(link, dict) and link.get("rel") == "self" and link.get("href")), None)
    base = join(doc, self_href) if self_href else doc
    where = f"{store.redact(base) if store.is_url(base) else base} (item {iid})"
    props = feature.get("properties") or {}
    text = props.get("datetime")
    if not text:
        problems.append(Problem(where, "has no datetime: the drone layers are mosaicked newest on top, so each "
                                       "item needs its acquisition time in properties.datetime"))
        return None
    try:
        acquired = _instant(str(text), False).timestamp()
    except ValueError as e:
        problems.append(Problem(where, f"properties.datetime: {e}"))
        return None
    assets = feature.get("assets") or {}
    if asset not in assets or not (assets[asset] or {}).get("href"):
        have = ", ".join(sorted(assets)) or "none"
        problems.append(Problem(where, f"has no asset {asset!r} (its assets: {have}): set `asset` in the source"))
        return None
    return StacItem(iid, acquired, str(props.get("updated", text)), join(base, assets[asset]["href"]), where)


def intersects(feature: dict, bbox: tuple[float, float, float, float]) -> bool:
    """Whether an item's bbox meets the region's (lon/lat); an item without one is kept."""
    b = feature.get("bbox")
    if not isinstance(b, list) or len(b) not in (4, 6):
        return True
    w, s, e, n = (b[0], b[1], b[3], b[4]) if len(b) == 6 else b
    return not (e < bbox[0] or w > bbox[2] or n < bbox[1] or s > bbox[3])


def within(feature: dict, span: tuple[datetime | None, datetime | None]) -> bool:
    """Whether an item's datetime lies in the interval (an item without one is kept, to be refused)."""
    text = (feature.get("properties") or {}).get("datetime")
    try:
        t = _instant(str(text), False) if text else None
    except ValueError:
        return True
    return t is None or ((span[0] is None or t >= span[0]) and (span[1] is None or t <= span[1]))
