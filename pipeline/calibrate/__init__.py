"""`minemap calibrate` (issue #21): P_c's settings fitted to the team's own outcomes by spatial
block cross-validation, a calibrated probability, and skill shown beside a baseline:
`labels` (events from files), `evidence` (layers at cells), `fit` (candidates, CV, nesting),
`isotonic` (the monotone calibration, ECE), `run` (the command's work) and `apply` (what a run
does with a fitted [model]). `calibrate` is imported on first use (the products import `apply`)."""


def __getattr__(name: str):
    if name == "calibrate":
        from .run import calibrate

        return calibrate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["calibrate"]
