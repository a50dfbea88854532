"""The calibrated scenario: the measured scenario's workload, faults and SLOs with a
``pipeline`` fitted to the measurement, written as YAML with comments saying what was
fitted, from what, and how well."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import yaml

from repaychaos.calibrate.fit import Fit

__all__ = ["dist_yaml", "calibrated_data", "render_yaml", "EMPIRICAL_POINTS"]

#: Quantiles written for a family the scenario format has no name for (gamma, Weibull).
EMPIRICAL_POINTS = 200


def _s(x: float) -> float:
    """Seconds as a bare number (the scenario format's plainest duration), to the microsecond."""
    return round(float(x), 6)


def dist_yaml(fit: Fit, scale: float = 1.0) -> Any:
    """The fitted delay without its floor, times ``scale``, in scenario syntax."""
    params = list(fit.params)
    params[-2] = 0.0  # the floor goes to a constant stage of its own
    frozen = fit.frozen().dist(*params)
    if fit.family == "exponential":
        return {"dist": "exponential", "mean": _s(scale * float(frozen.mean()))}
    if fit.family == "lognormal":
        return {"dist": "lognormal", "median": _s(scale * float(frozen.median())),
                "p95": _s(scale * float(frozen.ppf(0.95)))}
    qs = (np.arange(EMPIRICAL_POINTS) + 0.5) / EMPIRICAL_POINTS
    return {"dist": "empirical", "samples": [_s(scale * float(v)) for v in frozen.ppf(qs)]}


def calibrated_data(measured: dict[str, Any], best: Fit, capacity: dict[str, Any], held_share: float) -> dict[str, Any]:
    """Scenario data: the measured scenario with the fitted pipeline."""
    data = copy.deepcopy(measured)
    # the measured scenario's name, so `repaychaos report` pairs the model run of this file
    # with the measurement it came from
    data["description"] = f"Calibrated from a measurement of {measured['name']}: {best.name} delay fitted by interval-censored MLE."
    pipeline = data.setdefault("pipeline", {})
    pipeline["channel"] = {"latency": 0}
    floor = best.params[-2] if best.shifted else 0.0
    if capacity.get("fitted"):
        mean_body = float(best.frozen().mean()) - floor
        scale = max(1e-9, (capacity["service_mean"] - floor) / mean_body) if mean_body > 0 else 1.0
        pipeline["sync"] = {"workers": int(capacity["workers"]), "service": dist_yaml(best, scale)}
    else:
        pipeline["sync"] = {"workers": "unlimited", "service": dist_yaml(best)}
    pipeline["credit"] = {"service": _s(floor), "risk_hold_ratio": round(held_share, 6)}
    pipeline["view"] = {"cache_ttl": 0}
    return data


def render_yaml(data: dict[str, Any], comments: list[str]) -> str:
    """YAML text led by ``comments`` (one ``#`` line each)."""
    head = "".join(f"# {line}\n" if line else "#\n" for line in comments)
    return head + yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=110)
