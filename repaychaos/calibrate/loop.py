"""Closing the loop: the model run on the calibrated scenario, and one report
that shows it beside the measurement it was fitted to.

``repaychaos calibrate`` calls :func:`close_loop` after the fit: ``calibrated-sim/result.json``
is the calibrated scenario's model run (as written: its faults, seed and replications), and
``calibration-report/`` holds report.html, summary.md and junit.xml of the measurement and
that model run together — the model-vs-measurement comparison and the calibration section
(measured Turnbull curve, fitted families, calibrated model's curve) on one page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

__all__ = ["close_loop"]


def close_loop(record: Mapping[str, Any], result_path: str | Path, *, progress: bool | None = None) -> dict[str, Path]:
    """Run the model on ``record``'s calibrated scenario and write the joint report; returns
    the paths written (``sim`` and the report's kinds)."""
    from repaychaos.core.result import read_result, write_result
    from repaychaos.reports.calibration import calibration_beside
    from repaychaos.reports.render import write_report
    from repaychaos.scenarios import load_scenario
    from repaychaos.sim.simulate import run_model

    scenario_path = Path(record["paths"]["scenario"])
    base = scenario_path.parent
    model = run_model(load_scenario(scenario_path), progress=progress)
    sim_path = write_result(model, base / "calibrated-sim")
    measured = read_result(result_path)
    shown = calibration_beside(result_path)
    if shown is None:  # calibrate --out elsewhere: the record and figure are beside the scenario
        figure = Path(record["paths"]["figure"])
        shown = (dict(record), figure.read_bytes() if figure.is_file() else None)
    paths = write_report([model, measured], base / "calibration-report", calibration=shown)
    return {"sim": sim_path, **paths}
