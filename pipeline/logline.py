"""The one-line log text of an update, shared by `minemap update` and `minemap watch` (a module of
its own, with no imports, so neither the command nor watch pulls in the other)."""

from __future__ import annotations


def summary_line(s: dict) -> str:
    """One log line per update, for cron and watch logs (`minemap update` prints it too)."""
    return (f"{s['status']}: {len(s['added'])} added, {len(s['changed'])} changed, {len(s['removed'])} removed, "
            f"{len(s['rejected'])} rejected inputs; {s['chunks_recomputed']}/{s['chunks_total']} chunks "
            f"recomputed in {s['seconds']:.1f} s" + (f"; {s['reason']}" if s.get("reason") else ""))
