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
