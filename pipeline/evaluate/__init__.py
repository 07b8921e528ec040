"""Measured skill of a finished run against known events (`minemap evaluate`, issue #14 §3):
`metrics` (pure NumPy), `events` (reading and checking them), `cv` (block cross-validation of
the settings behind P_c) and `run` (the command's work)."""

from .run import evaluate

__all__ = ["evaluate"]
