"""Calibration (docs/reference/calibration.md): from a live or target measurement's read log to a model scenario.

Above the engines (it runs the model on what it fitted to check it) and beside the
reports; nothing below imports it.
"""

from repaychaos.calibrate.run import calibrate

__all__ = ["calibrate"]
