"""Measured skill of a finished run against known events (`minemap evaluate`, issue #14 §3):
`metrics` (pure NumPy), `events` (reading and checking them), `cv` (block cross-validation of
the settings behind P_c) and `run` (the command's work)."""

import sys
import types

from .run import evaluate

__all__ = ["evaluate"]


class _CallableModule(types.ModuleType):
    """`pipeline.evaluate` is this subpackage once it is imported (Python sets the attribute), and
    it must also be the API's function: calling the module calls `pipeline.api.evaluate`."""

    def __call__(self, *args, **kwargs):
        from ..api import evaluate as api_evaluate

        return api_evaluate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
