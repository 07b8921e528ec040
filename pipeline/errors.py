"""Exception types for user errors: one per kind, caught once in the CLI.

Every error names the file (or config key) at fault, so the CLI can print one clear line
per problem without a traceback. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one input: where, and what."""

    where: str
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


class MinemapError(Exception):
    """Base of all errors a user can fix; the CLI prints them and exits non-zero."""

    exit_code = 2

    def __init__(self, problems: list[Problem] | Problem | str, where: str | Path = "") -> None:
        if isinstance(problems, str):
            problems = [Problem(str(where), problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __reduce__(self):  # pickled as its problems (raised in a worker process, re-raised here)
        return type(self), (self.problems,)


class ConfigError(MinemapError):
    """The run config or grid definition is malformed (unknown key, wrong type, missing value)."""


class InputError(MinemapError):
    """An input file is missing, unreadable, or its content is unusable (no CRS, no overlap,
    values out of range, invalid geometry, unknown class)."""


class OutputError(MinemapError):
    """The output folder cannot be written."""


class LockedError(MinemapError):
    """Another minemap process holds the output folder's lock."""

    exit_code = 75  # EX_TEMPFAIL: try again later


class WorkerLostError(MinemapError):
    """A worker process ended mid-run without handing back its work: the system stopped it (most
    often the kernel, for memory) or it crashed. Nothing is published."""

    exit_code = 71  # EX_OSERR

    @classmethod
    def of(cls, out_dir: Path) -> WorkerLostError:
        return cls(Problem(str(out_dir), "a worker process stopped before finishing its work (the system stops one "
                                         "when memory runs out: see `dmesg`); nothing was published and the "
                                         "previous outputs are as they were. Run again with --workers 1 (fewer "
                                         "chunks in memory at once) or on a machine with more memory"))


class StoreError(MinemapError):
    """An input in object storage (s3://, https://) cannot be used as given (a glob on https, gs://)."""


class StoreDeniedError(StoreError):
    """The store refused to serve an input (HTTP 403: credentials, bucket policy)."""

    exit_code = 77  # EX_NOPERM


class StoreMissingError(StoreError):
    """An input URL names no object (HTTP 404)."""

    exit_code = 66  # EX_NOINPUT


class StoreUnreachableError(StoreError):
    """The store did not answer (connection refused, time-out, 5xx after retries)."""

    exit_code = 69  # EX_UNAVAILABLE
