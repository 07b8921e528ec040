"""Object-storage URLs (issue #23): which paths are URLs, how GDAL and boto3 reach them, how they are shown.

The standard AWS environment is honoured as boto3 reads it (credentials, AWS_REGION, AWS_ENDPOINT_URL for
S3-compatible stores); GDAL reads its own (AWS_S3_ENDPOINT, AWS_HTTPS, AWS_VIRTUAL_HOSTING). A URL is
never shown or recorded with its query string or user info (`redact`).
"""
from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlsplit, urlunsplit

SCHEMES = {"s3": "/vsis3/", "gs": "/vsigs/", "http": "/vsicurl/http://", "https": "/vsicurl/https://"}


def is_url(path: object) -> bool:
    """True for s3://, gs://, http:// and https:// paths (str only: a Path is local by construction)."""
    return isinstance(path, str) and urlsplit(path).scheme in SCHEMES


def split(url: str) -> tuple[str, str]:
    """s3://bucket/key/… → ("bucket", "key/…")."""
    parts = urlsplit(url)
    return parts.netloc, parts.path.lstrip("/")


def gdal_path(url: str) -> str:
    """The GDAL virtual-file-system path of a URL (rasterio and pyogrio open it)."""
    scheme = urlsplit(url).scheme
    if scheme in ("s3", "gs"):
        bucket, key = split(url)
        return f"{SCHEMES[scheme]}{bucket}/{key}"
    return "/vsicurl/" + url


def redact(url: str) -> str:
    """The URL without user info and query string (signed URLs carry credentials there)."""
    p = urlsplit(url)
    host = p.hostname or ""
    if p.port:
        host = f"{host}:{p.port}"
    return urlunsplit((p.scheme, host, p.path, "", ""))


@lru_cache(maxsize=1)
def client():
    """One boto3 S3 client per process, configured from the standard AWS environment (bounded retries)."""
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(retries={"max_attempts": 4, "mode": "standard"},
                                            connect_timeout=10, read_timeout=60))


# --- added for STAC sources and `watch` (issue #23 §3) -------------------------------------------

def read_bytes(url: str, timeout: float = 60.0) -> bytes:
    """The bytes of an object (s3:// through boto3, http(s):// through urllib): a catalogue, an item."""
    if urlsplit(url).scheme == "s3":
        bucket, key = split(url)
        return client().get_object(Bucket=bucket, Key=key)["Body"].read()
    from urllib.request import urlopen

    with urlopen(url, timeout=timeout) as r:  # noqa: S310 (the scheme is checked by is_url's callers)
        return r.read()


def object_info(url: str, timeout: float = 60.0) -> dict:
    """What identifies an object's version without reading it: size, ETag, last-modified (seconds).

    Object stores have no inode or change time; an ETag changes with every rewrite."""
    if urlsplit(url).scheme == "s3":
        bucket, key = split(url)
        head = client().head_object(Bucket=bucket, Key=key)
        return {"size": int(head["ContentLength"]), "etag": head.get("ETag", "").strip('"'),
                "modified": head["LastModified"].timestamp()}
    from email.utils import parsedate_to_datetime
    from urllib.request import Request, urlopen

    with urlopen(Request(url, method="HEAD"), timeout=timeout) as r:  # noqa: S310
        modified = r.headers.get("Last-Modified")
        return {"size": int(r.headers.get("Content-Length") or -1), "etag": (r.headers.get("ETag") or "").strip('"'),
                "modified": parsedate_to_datetime(modified).timestamp() if modified else 0.0}


def list_objects(url_glob: str) -> dict[str, dict]:
    """s3://bucket/prefix/*.tif → {url: {size, etag, modified}} of the objects whose key matches the glob
    (`*` and `?` do not cross `/`; `**` does), listed under the glob's fixed prefix."""
    import re

    bucket, pattern = split(url_glob)
    fixed = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
    regex = re.compile(_glob_regex(pattern))
    out = {}
    for page in client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=fixed):
        for o in page.get("Contents", []):
            if regex.fullmatch(o["Key"]):
                out[f"s3://{bucket}/{o['Key']}"] = {"size": int(o["Size"]), "etag": o.get("ETag", "").strip('"'),
                                                    "modified": o["LastModified"].timestamp()}
    return out


def _glob_regex(pattern: str) -> str:
    """A key glob as a regular expression (`**` any depth, `*` and `?` within one path part)."""
    import re

    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


class ObjectPath(str):
    """A URL input where a local `Path` would stand (a project layer, a bundled copy): its key's name,
    stem and suffix; the URL itself as the string (rasterio opens it)."""

    @property
    def name(self) -> str:
        return urlsplit(self).path.rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        name = self.name
        return name[name.rfind("."):] if "." in name.strip(".") else ""

    @property
    def stem(self) -> str:
        return self.name[: len(self.name) - len(self.suffix)]


def download(url: str, target) -> None:
    """Copy an object byte for byte into the local file `target`."""
    if urlsplit(url).scheme == "s3":
        bucket, key = split(url)
        client().download_file(bucket, key, str(target))
        return
    with open(target, "wb") as f:
        f.write(read_bytes(url))
