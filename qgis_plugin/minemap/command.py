"""Calling the installed `minemap` command: which command, its arguments, its output, its exit code.

No QGIS import here: QGIS's Python is not minemap's environment, so the provider only talks to
the `minemap` command line (any minemap install, any Python), and this module is tested without QGIS.
"""

from __future__ import annotations

import os
import queue
import re
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

ENV_VAR = "MINEMAP_COMMAND"
DEFAULT = "minemap"
EXIT_OK, EXIT_REJECTED = 0, 3  # 3: `update` finished, some inputs were left out (listed)
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]|[\x00-\x08\x0b-\x1f\x7f]")
PROGRESS = re.compile(r"^computing\b.*?(\d+|\?)/(\d+|\?) chunks")  # the bar, not "3/9 chunks recomputed"
# minemap's progress bar (rich) draws only on a terminal: these make it draw on our pipe, plainly
PROGRESS_ENV = {"TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1", "NO_COLOR": "1", "COLUMNS": "240",
                "PYTHONIOENCODING": "utf-8"}


class CommandMissing(Exception):
    """The configured minemap command cannot be started."""


def command(setting: str | None = None) -> list[str]:
    """The minemap command as argv words: $MINEMAP_COMMAND, else the provider setting, else
    `minemap` on the PATH. May be several words (`/venv/bin/python -m pipeline.cli`); a path to an
    existing file is one word even with spaces in it."""
    text = (os.environ.get(ENV_VAR) or setting or DEFAULT).strip()
    if Path(text).is_file():
        return [text]
    return shlex.split(text, posix=os.name != "nt")


def arguments(action: str, config: str, out: str | None = None, grid: str | None = None,
              workers: int | None = None, events: str | None = None, outcome_field: str | None = None) -> list[str]:
    """The minemap command line for one algorithm (`validate` takes no OUT; only run and update take workers)."""
    args = [action, config]
    if grid:
        args += ["--grid", grid]
    if action != "validate" and out:
        args += ["--out", out]
    if action in ("run", "update") and workers:
        args += ["--workers", str(int(workers))]
    if action == "evaluate":
        args += ["--events", str(events), "--outcome-field", outcome_field or "outcome"]
    return args


@dataclass
class Outcome:
    """What the command did: its exit code, its message lines (progress left out), whether cancelled."""

    code: int
    lines: list[str] = field(default_factory=list)
    stdout: list[str] = field(default_factory=list)
    canceled: bool = False

    def errors(self) -> list[str]:
        """minemap's error lines (`error: FILE: problem`, click's `Error: …`), else the last lines."""
        found = [line for line in self.lines if line.lower().startswith("error")]
        return found or self.lines[-12:]

    def unknown_command(self) -> bool:
        """The installed minemap is older than the algorithm (click: `No such command`)."""
        return any("No such command" in line for line in self.lines)


def kind(line: str) -> str:
    """How the Processing log shows a line of minemap's stderr: error, warning, progress or info."""
    low = line.lower()
    if PROGRESS.search(line):
        return "progress"
    if low.startswith("error"):
        return "error"
    if low.startswith(("warning", "rejected")):
        return "warning"
    return "info"


def percent(line: str) -> float | None:
    """Chunk progress of a progress-bar line as 0–100, None while the total is unknown."""
    match = PROGRESS.search(line)
    if not match or "?" in match.groups() or int(match.group(2)) == 0:
        return None
    return 100.0 * int(match.group(1)) / int(match.group(2))


def _pump(stream, name: str, lines: queue.Queue) -> None:
    """Read a pipe to its end, cutting at newlines and carriage returns (progress redraws)."""
    buffer = b""
    for chunk in iter(lambda: stream.read1(4096), b""):
        buffer += chunk
        *complete, buffer = re.split(rb"[\r\n]", buffer)
        for raw in complete:
            lines.put((name, raw))
    if buffer:
        lines.put((name, buffer))
    stream.close()
    lines.put((name, None))


def execute(argv: Sequence[str], on_line: Callable[[str, str], None], on_progress: Callable[[float], None],
            canceled: Callable[[], bool], poll_s: float = 0.1, grace_s: float = 15.0) -> Outcome:
    """Run minemap, relaying each message line as `on_line(kind, text)` (stdout lines as "stdout")
    and chunk progress as `on_progress(percent)`. When `canceled()` turns true, minemap gets
    SIGINT (it stops and cleans up; OUT keeps its previous outputs), then SIGTERM and SIGKILL if
    it has not stopped `grace_s` later."""
    env = {**os.environ, **PROGRESS_ENV}
    try:
        proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                env=env, creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))  # no console on Windows
    except OSError as e:
        raise CommandMissing(f"cannot start the minemap command {argv[0]!r}: {e.strerror or e}. Set its "
                             "path in Processing → Options → Providers → minemap → minemap command "
                             f"(or the {ENV_VAR} environment variable).") from e
    lines: queue.Queue = queue.Queue()
    for stream, name in ((proc.stdout, "stdout"), (proc.stderr, "stderr")):
        threading.Thread(target=_pump, args=(stream, name, lines), daemon=True).start()
    outcome, open_streams, last = Outcome(code=-1), 2, None
    stops, next_stop, exited_at = [_interrupt, subprocess.Popen.terminate, subprocess.Popen.kill], 0.0, None
    while open_streams:
        now = time.monotonic()
        if not outcome.canceled and canceled():
            outcome.canceled = True
        if outcome.canceled and stops and now >= next_stop and proc.poll() is None:
            stops.pop(0)(proc)  # SIGINT, then SIGTERM, then SIGKILL, `grace_s` apart
            next_stop = now + grace_s
        if proc.poll() is not None:
            exited_at = exited_at or now
            if now - exited_at > grace_s:  # a leftover child process still holds the pipes
                break
        try:
            name, raw = lines.get(timeout=poll_s)
        except queue.Empty:
            continue
        if raw is None:
            open_streams -= 1
            continue
        text = ANSI.sub("", raw.decode("utf-8", "replace")).strip()
        if not text:
            continue
        if name == "stdout":
            outcome.stdout.append(text)
            on_line("stdout", text)
            continue
        if kind(text) == "progress":
            value = percent(text)
            if value is not None and value != last:
                on_progress(value)
                last = value
            continue
        outcome.lines.append(text)
        on_line(kind(text), text)
    outcome.code = proc.wait()
    return outcome


def _interrupt(proc: subprocess.Popen) -> None:
    """Ask minemap to stop as Ctrl-C would (SIGINT; where there is none, terminate)."""
    if os.name == "nt":
        proc.terminate()
    else:
        proc.send_signal(signal.SIGINT)
