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


def get_range(path: object, offset: int, length: int) -> bytes:
    """`length` bytes at `offset` of a /vsis3/ object (one ranged GET) or a local file."""
    if (where := vsis3(path)) is None:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read(length)
    end = offset + length - 1
    return client().get_object(Bucket=where[0], Key=where[1], Range=f"bytes={offset}-{end}")["Body"].read()


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
