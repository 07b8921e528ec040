"""Object-storage URLs (issue #23): which paths are URLs, how GDAL and boto3 reach them, how they are shown.

The standard AWS environment is honoured as boto3 reads it (credentials, AWS_REGION, AWS_ENDPOINT_URL for
S3-compatible stores); GDAL reads its own (AWS_S3_ENDPOINT, AWS_HTTPS, AWS_VIRTUAL_HOSTING), derived from
AWS_ENDPOINT_URL when not set (`gdal_options`). A URL is never shown or recorded with its query string or
user info (`redact`; a `Url` prints itself redacted). A store that refuses, lacks or does not answer ends in
one of three errors (`errors.StoreDeniedError`, `StoreMissingError`, `StoreUnreachableError`).
"""
from __future__ import annotations

import fnmatch
import os
import posixpath
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit, urlunsplit

from .errors import StoreDeniedError, StoreError, StoreMissingError, StoreUnreachableError

SCHEMES = {"s3": "/vsis3/", "gs": "/vsigs/", "http": "/vsicurl/http://", "https": "/vsicurl/https://"}
GLOB_CHARS = "*?["
HTTP_TIMEOUT_S = 30
# GDAL's own retries of transient HTTP answers (429, 502, 503, 504) and its time-outs; boto3's are in `client`
# (only HTTP settings: a local run's GDAL behaves as before)
GDAL_RETRY = {"GDAL_HTTP_MAX_RETRY": "4", "GDAL_HTTP_RETRY_DELAY": "1", "GDAL_HTTP_CONNECTTIMEOUT": "10",
              "GDAL_HTTP_TIMEOUT": "60"}


def is_url(path: object) -> bool:
    """True for s3://, gs://, http:// and https:// paths (str only: a Path is local by construction)."""
    return isinstance(path, str) and urlsplit(str.__str__(path)).scheme in SCHEMES


def split(url: str) -> tuple[str, str]:
    """s3://bucket/key/… → ("bucket", "key/…"). An object key may hold `?` (a glob's, too): no query there."""
    parts = urlsplit(str.__str__(url))
    key = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query or str.__str__(url).endswith("?") else "")
    return parts.netloc, key + (f"#{parts.fragment}" if parts.fragment else "")


def gdal_path(url: str) -> str:
    """The GDAL virtual-file-system path of a URL (rasterio and pyogrio open it)."""
    raw = str.__str__(url)
    scheme = urlsplit(raw).scheme
    if scheme in ("s3", "gs"):
        bucket, key = split(raw)
        return f"{SCHEMES[scheme]}{bucket}/{key}"
    return "/vsicurl/" + raw


def redact(url: str) -> str:
    """The URL without user info and query string (signed URLs carry credentials there); an s3:// or gs://
    URL is all bucket and key (credentials come from the environment), kept whole."""
    p = urlsplit(str.__str__(url))
    if p.scheme in ("s3", "gs"):
        return f"{p.scheme}://{p.hostname or ''}/{split(url)[1]}"
    host = p.hostname or ""
    if p.port:
        host = f"{host}:{p.port}"
    return urlunsplit((p.scheme, host, p.path, "", ""))


def redact_all(value):
    """`value` (JSON-like: dicts, lists, text) with every URL in it redacted, for what is written or shown."""
    if isinstance(value, dict):
        return {k: redact_all(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_all(v) for v in value)
    if isinstance(value, str) and is_url(value):
        return redact(value)
    if isinstance(value, str) and "://" in value:  # URLs inside a text (a "k=v, …" description)
        return re.sub(r"(?:s3|gs|https?)://[^\s,'\"]+", lambda m: redact(m.group(0)), value)
    return value


class Url(str):
    """An input URL: text, never a Path (Path("s3://b/k") is "s3:/b/k"), with the name parts a Path has.

    It prints itself redacted (str, format, repr), so messages and records never carry a signature;
    GDAL and boto3 get the whole URL through `gdal_path` and `split`."""

    __slots__ = ()

    def __new__(cls, value: str) -> Url:
        return super().__new__(cls, str.__str__(value))  # (not str(value): a Url's str is redacted)

    def __str__(self) -> str:
        return redact(self)

    def __format__(self, spec: str) -> str:
        return format(redact(self), spec)

    def __repr__(self) -> str:
        return f"Url({redact(self)!r})"

    @property
    def name(self) -> str:
        return PurePosixPath(urlsplit(str.__str__(self)).path).name

    @property
    def stem(self) -> str:
        return PurePosixPath(self.name).stem

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix


def resolve(base: Path | str, p: str) -> Path | Url:
    """`p` as an absolute path or URL: a URL as it is, a relative path against `base` (a folder or a URL's
    folder: a grid file in a bucket names its region beside it)."""
    if is_url(p):
        return Url(p)
    if is_url(base):
        u = urlsplit(str.__str__(base))
        return Url(urlunsplit((u.scheme, u.netloc, posixpath.normpath(posixpath.join(u.path or "/", p)), "", "")))
    return (Path(base) / p).resolve()


def parent(path: Path | str) -> Path | Url:
    """The folder of a file or URL (for resolving paths named in it)."""
    if is_url(path):
        u = urlsplit(str.__str__(path))
        return Url(urlunsplit((u.scheme, u.netloc, posixpath.dirname(u.path), "", "")))
    return Path(path).parent


# --- what is stored: existence, identity, listing, bytes -----------------------------------

@dataclass(frozen=True)
class Stat:
    """What a HEAD tells of an object: enough to see that it changed, without reading it."""

    size: int
    etag: str
    modified: str

    def fingerprint(self) -> str:
        """The object's identity for `update`: its ETag, size and last-modified time."""
        return f"etag {self.etag} size {self.size} modified {self.modified}"


def head(url: str) -> Stat:
    """The object's size, ETag and last-modified time; a StoreError when it cannot be had."""
    scheme = urlsplit(str.__str__(url)).scheme
    _supported(url)
    if scheme == "s3":
        bucket, key = split(url)
        try:
            h = client().head_object(Bucket=bucket, Key=key)
        except Exception as e:  # noqa: BLE001 (botocore's errors are mapped, the rest re-raised)
            raise store_error(url, e) from None
        return Stat(int(h["ContentLength"]), str(h.get("ETag", "")).strip('"'), h["LastModified"].isoformat())
    import urllib.request

    # a GET of one byte, not a HEAD: a presigned URL is signed for GET only (S3 refuses its HEAD)
    request = urllib.request.Request(str.__str__(url), headers={"Range": "bytes=0-0"})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as r:
            total = (r.headers.get("Content-Range") or "").rpartition("/")[2]
            size = int(total) if total.isdigit() else int(r.headers.get("Content-Length") or -1)
            return Stat(size, (r.headers.get("ETag") or "").strip('"'), r.headers.get("Last-Modified") or "")
    except Exception as e:  # noqa: BLE001
        raise store_error(url, e) from None


def fingerprint(url: str) -> str:
    return head(url).fingerprint()


def exists(url: str) -> bool:
    """Whether the object is there (False on 404; denial and silence are errors)."""
    try:
        head(url)
        return True
    except StoreMissingError:
        return False


def has_glob(url: str) -> bool:
    key = split(url)[1] if urlsplit(str.__str__(url)).scheme in ("s3", "gs") else urlsplit(str.__str__(url)).path
    return any(c in key for c in GLOB_CHARS)


def listing(pattern: str) -> list[Url]:
    """The objects matching a glob URL (s3 only: listed with list_objects_v2, matched with fnmatch, `*`
    crossing no `/`), sorted; an https glob is refused (HTTP has no listing)."""
    return sorted(listed(pattern))


def listed(pattern: str) -> dict[Url, Stat]:
    """The objects matching a glob URL, each with what its listing tells of it (as a HEAD would): what
    `watch` compares between polls, one request per thousand objects."""
    _supported(pattern)
    scheme = urlsplit(str.__str__(pattern)).scheme
    if scheme != "s3":
        raise StoreError(f"a {scheme}:// path cannot hold a glob (* ? [): HTTP servers have no listing; name "
                         "each file, or put them in an s3:// bucket", redact(pattern))
    bucket, key = split(pattern)
    prefix = key[:min((key.find(c) for c in GLOB_CHARS if c in key), default=len(key))]
    regex = re.compile(fnmatch.translate(key).replace(".*", "[^/]*"))
    found = {}
    try:
        for page in client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.update({Url(f"s3://{bucket}/{o['Key']}"): Stat(int(o["Size"]), str(o.get("ETag", "")).strip('"'),
                                                                  o["LastModified"].isoformat())
                          for o in page.get("Contents", []) if regex.match(o["Key"])})
    except Exception as e:  # noqa: BLE001
        raise store_error(f"s3://{bucket}/{prefix}", e) from None
    return found


def read_bytes(url: str) -> bytes:
    """The whole object (small files: tables, grid definitions)."""
    _supported(url)
    if urlsplit(str.__str__(url)).scheme == "s3":
        bucket, key = split(url)
        try:
            return client().get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as e:  # noqa: BLE001
            raise store_error(url, e) from None
    import urllib.request

    try:
        with urllib.request.urlopen(str.__str__(url), timeout=HTTP_TIMEOUT_S) as r:
            return r.read()
    except Exception as e:  # noqa: BLE001
        raise store_error(url, e) from None


def _supported(url: str) -> None:
    if urlsplit(str.__str__(url)).scheme == "gs":
        raise StoreError("gs:// is not supported yet (untested here): reach Google Cloud Storage through its "
                         "S3-compatible API instead, as s3://BUCKET/… with AWS_ENDPOINT_URL="
                         "https://storage.googleapis.com and an HMAC key as AWS_ACCESS_KEY_ID / "
                         "AWS_SECRET_ACCESS_KEY", redact(url))


# --- failures: one error per kind, the URL redacted -----------------------------------------

DENIED = ("the store refused access (HTTP 403): check the credentials (AWS_ACCESS_KEY_ID / AWS_PROFILE) and "
          "that they may read this object (bucket policy, IAM)")
MISSING = "no such object in the store (HTTP 404): check the bucket, the key and AWS_ENDPOINT_URL"
UNREACHABLE = ("the store did not answer ({why}), after retries: check AWS_ENDPOINT_URL (or AWS_S3_ENDPOINT) "
               "and the network, then run again")


def store_error(url: str, exc: BaseException) -> StoreError | BaseException:
    """The StoreError for a failure of boto3, urllib or GDAL on `url`; other exceptions are returned as
    they are (re-raised by the caller: a bug stays a bug)."""
    where = redact(url)
    code, why = _classify(exc)
    if code == 403:
        return StoreDeniedError(DENIED, where)
    if code == 404:
        return StoreMissingError(MISSING, where)
    if code == 0:
        return StoreUnreachableError(UNREACHABLE.format(why=why), where)
    if code is not None:
        return StoreUnreachableError(f"the store answered HTTP {code} ({why}), after retries", where)
    return exc


def _classify(exc: BaseException) -> tuple[int | None, str]:
    """(HTTP status, words): 0 for no answer, None for a failure that is not the store's."""
    try:
        import botocore.exceptions as bex
    except ImportError:  # pragma: no cover (boto3 is a dependency)
        bex = None
    if bex is not None:
        if isinstance(exc, bex.ClientError):
            err = exc.response.get("Error", {})
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            code = str(err.get("Code", ""))
            if code in ("AccessDenied", "Forbidden", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
                return 403, code
            if code in ("NoSuchKey", "NoSuchBucket", "NotFound", "404"):
                return 404, code
            return (status or 500), code or "error"
        if isinstance(exc, bex.NoCredentialsError):
            return 403, "no credentials"
        if isinstance(exc, (bex.EndpointConnectionError, bex.ConnectTimeoutError, bex.ReadTimeoutError,
                            bex.ConnectionClosedError)):
            return 0, _why(str(exc))
    import urllib.error

    if isinstance(exc, urllib.error.HTTPError):
        return (403 if exc.code in (401, 403) else exc.code), exc.reason or "error"
    if isinstance(exc, (urllib.error.URLError, TimeoutError, ConnectionError)):
        return 0, _why(str(getattr(exc, "reason", exc)))
    return gdal_status(str(exc))


def gdal_status(message: str) -> tuple[int | None, str]:
    """The HTTP status in a GDAL (rasterio, pyogrio) error message on a /vsis3/ or /vsicurl/ path."""
    m = re.search(r"HTTP (?:response )?(?:code|error|status)[: ]+(\d{3})", message, re.I)
    if m:
        status = int(m.group(1))
        return (403 if status in (401, 403) else status), "HTTP error"
    low = message.lower()
    if "access denied" in low or "accessdenied" in low or "invalidaccesskeyid" in low \
            or "signaturedoesnotmatch" in low or "forbidden" in low:
        return 403, "access denied"
    if "nosuchkey" in low or "nosuchbucket" in low or "does not exist in the file system" in low \
            or "no such file or directory" in low:
        return 404, "not found"
    if any(w in low for w in ("couldn't connect", "could not connect", "connection refused", "timed out",
                              "timeout", "could not resolve", "couldn't resolve", "connection reset",
                              "empty reply", "recv failure", "send failure")):
        return 0, _why(message)
    return None, ""


def _why(text: str) -> str:
    low = text.lower()
    if "refused" in low:
        return "connection refused"
    if "couldn't connect" in low or "could not connect" in low:
        return "could not connect"
    if "timed out" in low or "timeout" in low:
        return "timed out"
    if "resolve" in low:
        return "host not found"
    return "no answer"


def raise_gdal(url: str, exc: BaseException) -> None:
    """Raise the StoreError a GDAL failure on `url` means, if it is the store's (else return). GDAL's
    words vary (a denied GET can come back as "not recognized as being in a supported file format"):
    when they name no HTTP failure, one byte is read through boto3 or urllib, whose errors are exact."""
    code, why = gdal_status(str(exc))
    if code is not None:
        raise store_error(url, _Status(code, why)) from None
    first_byte(url)  # a StoreError if the store refuses, lacks or ignores it; else a real format problem


def first_byte(url: str) -> bytes:
    """The object's first byte (a GET: what a reader is allowed, unlike a HEAD's permission)."""
    _supported(url)
    if urlsplit(str.__str__(url)).scheme == "s3":
        bucket, key = split(url)
        try:
            return client().get_object(Bucket=bucket, Key=key, Range="bytes=0-0")["Body"].read()
        except Exception as e:  # noqa: BLE001
            raise store_error(url, e) from None
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(str.__str__(url), headers={"Range": "bytes=0-0"}),
                                    timeout=HTTP_TIMEOUT_S) as r:
            return r.read(1)
    except Exception as e:  # noqa: BLE001
        raise store_error(url, e) from None


class _Status(Exception):
    def __init__(self, code: int, why: str) -> None:
        super().__init__(f"HTTP status {code}" if code else why)


# --- configuration: boto3 and GDAL from the standard AWS environment ------------------------

def gdal_options(environ: os._Environ | dict | None = None) -> dict[str, str]:
    """GDAL's settings for reading object storage: bounded retries and time-outs, and GDAL's endpoint
    variables derived from AWS_ENDPOINT_URL (MinIO, Ceph) when they are not set. Explicit
    settings in the environment win."""
    env = os.environ if environ is None else environ
    out = {k: v for k, v in GDAL_RETRY.items() if k not in env}
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint and "AWS_S3_ENDPOINT" not in env:
        p = urlsplit(endpoint)
        out["AWS_S3_ENDPOINT"] = p.netloc + p.path.rstrip("/")
        if "AWS_HTTPS" not in env:
            out["AWS_HTTPS"] = "NO" if p.scheme == "http" else "YES"
        if "AWS_VIRTUAL_HOSTING" not in env:
            out["AWS_VIRTUAL_HOSTING"] = "FALSE"  # path-style, as S3-compatible stores serve
    return out


@lru_cache(maxsize=8)
def _client(endpoint: str | None, key: str | None, region: str | None, attempts: int, mode: str):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", config=Config(retries={"total_max_attempts": attempts, "mode": mode},
                                            connect_timeout=10, read_timeout=60))


def client():
    """One boto3 S3 client per process and AWS environment (a test's server, a rotated key), configured
    from the standard AWS environment; retries bounded: 4 attempts in `standard` mode unless
    AWS_MAX_ATTEMPTS / AWS_RETRY_MODE say otherwise."""
    env = os.environ
    return _client(env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL"), env.get("AWS_ACCESS_KEY_ID"),
                   env.get("AWS_REGION"), int(env.get("AWS_MAX_ATTEMPTS") or 4), env.get("AWS_RETRY_MODE") or "standard")


client.cache_clear = _client.cache_clear  # type: ignore[attr-defined] (as when it was an lru_cache)


def modified_time(url: str) -> float:
    """The object's last-modified time, POSIX seconds (a raster's acquisition time when untagged)."""
    from datetime import datetime
    from email.utils import parsedate_to_datetime

    text = head(url).modified
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return parsedate_to_datetime(text).timestamp()


def download(url: str, target: Path) -> None:
    """Copy the object into a local file (a drone raster bundled into OUT), streamed."""
    _supported(url)
    try:
        if urlsplit(str.__str__(url)).scheme == "s3":
            bucket, key = split(url)
            client().download_file(bucket, key, str(target))
            return
        import shutil
        import urllib.request

        with urllib.request.urlopen(str.__str__(url), timeout=HTTP_TIMEOUT_S) as r, open(target, "wb") as f:
            shutil.copyfileobj(r, f, 1 << 20)
    except Exception as e:  # noqa: BLE001
        raise store_error(url, e) from None


# --- writing objects (issue #23 §2: OUT in object storage) ------------------------------------------

PART = 8 * 2**20  # multipart part size: S3 wants ≥ 5 MiB for every part but the last


def vsis3(path: object) -> tuple[str, str] | None:
    """(bucket, key) of a GDAL /vsis3/ path (a str or Path), None for any other path."""
    text = str(path)
    if not text.startswith("/vsis3/"):
        return None
    bucket, _, key = text[len("/vsis3/"):].partition("/")
    return bucket, key


def put_bytes(path: object, data: bytes) -> None:
    """Write `data` to a local file, or to the object a /vsis3/ path names (one PUT)."""
    if (where := vsis3(path)) is None:
        with open(path, "wb") as f:
            f.write(data)
        return
    client().put_object(Bucket=where[0], Key=where[1], Body=data)


def get_range(path: object, offset: int, length: int | None) -> bytes:
    """`length` bytes (None: all the rest) at `offset` of a /vsis3/ object (one GET) or a local file."""
    if (where := vsis3(path)) is None:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(-1 if length is None else length)
    span = f"bytes={offset}-" + ("" if length is None else str(offset + length - 1))
    return client().get_object(Bucket=where[0], Key=where[1], Range=span)["Body"].read()


class Upload:
    """One object written front to back in PART-sized multipart parts (a small object: one PUT), its
    SHA-256 taken on the way. Only one part's bytes are held at a time; `abort` drops what was sent."""

    def __init__(self, bucket: str, key: str, part: int | None = None) -> None:
        import hashlib

        self.bucket, self.key, self.part = bucket, key, part or PART
        self.buffer, self.parts, self.size = bytearray(), [], 0
        self.sha = hashlib.sha256()
        self.upload_id: str | None = None

    def write(self, data: bytes) -> None:
        self.buffer += data
        self.sha.update(data)
        self.size += len(data)
        if len(self.buffer) >= self.part:
            self._send(bytes(self.buffer[:self.part]))
            del self.buffer[:self.part]

    def _send(self, data: bytes) -> None:
        c = client()
        if self.upload_id is None:
            self.upload_id = c.create_multipart_upload(Bucket=self.bucket, Key=self.key)["UploadId"]
        n = len(self.parts) + 1
        etag = c.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=n, Body=data)["ETag"]
        self.parts.append({"PartNumber": n, "ETag": etag})

    def close(self) -> dict:
        """Finish the object; returns its size, SHA-256 and ETag."""
        c = client()
        if self.upload_id is None:
            etag = c.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self.buffer))["ETag"]
        else:
            if self.buffer:
                self._send(bytes(self.buffer))
            etag = c.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                               MultipartUpload={"Parts": self.parts})["ETag"]
        self.buffer = bytearray()
        return {"size": self.size, "sha256": self.sha.hexdigest(), "etag": etag.strip('"')}

    def abort(self) -> None:
        if self.upload_id is not None:
            client().abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
            self.upload_id = None
