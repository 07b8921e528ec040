"""`minemap calibrate` (issue #21): P_c's settings fitted to the team's own outcomes by spatial
block cross-validation, a calibrated probability, and skill shown beside a baseline:
`labels` (events from files), `evidence` (layers at cells), `fit` (candidates, CV, nesting),
`isotonic` (the monotone calibration, ECE) and `run` (the command's work)."""

from .run import calibrate

__all__ = ["calibrate"]
