"""A local S3-compatible server (moto's server mode) on 127.0.0.1, for the object-storage tests (issue #23).

Each server is its own process on a free port, so a test may stop it mid-run (a store that goes away) or
start a second one. `env` is the standard AWS environment a client of any kind (boto3, GDAL, a `dask
worker` process) needs to reach it; nothing is set in this process's environment unless a test asks.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

BUCKET = "minemap-test"


class LocalS3:
    """`with LocalS3() as s3:` starts a server with one empty bucket and stops it on exit."""

    def __init__(self, bucket: str = BUCKET) -> None:
        self.bucket = bucket
        self.port = _free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The AWS environment (boto3's AWS_ENDPOINT_URL, GDAL's AWS_S3_ENDPOINT and friends)."""
        return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing-secret",
                "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_S3_ENDPOINT": f"127.0.0.1:{self.port}", "AWS_HTTPS": "NO", "AWS_VIRTUAL_HOSTING": "FALSE"}

    def start(self) -> "LocalS3":
        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start on port {self.port}")
                time.sleep(0.05)
        self.client().create_bucket(Bucket=self.bucket)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing-secret")

    def upload_tree(self, folder: Path, prefix: str) -> str:
        """Every file under `folder` to s3://bucket/prefix/…; returns that URL."""
        c = self.client()
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file():
                c.upload_file(str(path), self.bucket, f"{prefix}/{path.relative_to(folder).as_posix()}")
        return f"s3://{self.bucket}/{prefix}"

    def keys(self, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def __enter__(self) -> "LocalS3":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_env(s3: LocalS3) -> dict[str, str]:
    """os.environ plus the server's AWS environment, for a subprocess (CLI, dask worker)."""
    return {**os.environ, **s3.env}
