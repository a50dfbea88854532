"""``repaychaos calibrate RESULT.json``: measure -> fit -> a scenario whose model predicts.

1. the baseline users' delays from ack to usable, interval-censored (:mod:`.data`);
2. maximum likelihood over several families, AIC choice, judged against the Turnbull
   estimate (:mod:`.fit`);
3. workers and service time when the arrival rate varied enough (:mod:`.capacity`);
4. the calibrated scenario (:mod:`.scenario`), then the model run on it (faults left out,
   as the fit is of the baseline) and its staleness curve compared with the measured one.

Verdict: ``good`` (exit 0) when the chosen fit's largest gap to the Turnbull curve is
one a correct fit would show by chance (parametric bootstrap p >= :data:`GOF_LEVEL`) and
the model's curve is within :data:`MAX_MODEL_RMS` RMS of the measured one (or twice the
measured curve's own sampling error, where that is larger) on the shared
grid (both judged against the Turnbull band: inside a cell the estimate only says the
curve lies between its values at the cell's edges); otherwise ``poor`` (exit 1) with the reasons.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from repaychaos.calibrate.capacity import fit_capacity
from repaychaos.calibrate.data import Observations, load_observations
from repaychaos.calibrate.fit import Fit, band_gap, censored_data, fit_families, fit_family, goodness, turnbull
from repaychaos.calibrate.scenario import calibrated_data, render_yaml

if TYPE_CHECKING:
    from repaychaos.scenarios import Scenario

__all__ = ["calibrate", "GOF_LEVEL", "MAX_MODEL_RMS"]

GOF_LEVEL = 0.05
MAX_MODEL_RMS = 0.02


def _level_stats(obs: Observations, scenario: Scenario, best: Fit) -> list[dict[str, Any]]:
    """Mean delay and its standard error per arrival-profile level (the chosen family refitted)."""
    steps = scenario.workload.arrivals.steps
    out = []
    for i, (at, rate) in enumerate(steps):
        end = steps[i + 1][0] if i + 1 < len(steps) else math.inf
        sel = (obs.acks >= at) & (obs.acks < end)
        low, high = obs.low[sel], obs.high[sel]
        users = int(np.isfinite(high).sum())
        row: dict[str, Any] = {"rate": rate, "from": at, "users": users, "mean": None, "se": 0.0}
        if users >= 10:
            fit = fit_family(best.family, False, censored_data(low, high), low, high, 0.0)
            if fit is not None:
                dist = fit.frozen()
                row["mean"] = round(float(dist.mean()), 6)
                row["se"] = round(float(dist.std()) / math.sqrt(len(low)), 6)
        out.append(row)
    return out


def _model_curve(data: dict[str, Any]) -> tuple[list[float], list[float]]:
    from repaychaos.scenarios import load_scenario_data
    from repaychaos.sim.simulate import run_model

    check = dict(data, faults=[], slo={}, replications=1)
    result = run_model(load_scenario_data(check, "<calibrated>"), replications=2, processes=1, progress=False)
    vis = result["metrics"]["visibility"]
    return vis["t"], vis["p_stale"]


def calibrate(result_path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Fit, write ``out`` (default ``calibrated.yaml`` beside the result), ``calibration.json`` and
    ``calibration.png`` beside it; return the calibration record (``verdict`` good/poor)."""
    from repaychaos.scenarios import load_scenario_data

    obs = load_observations(result_path)
    measured = obs.result["scenario"]
    scenario = load_scenario_data(measured, str(result_path))
    fits, floor = fit_families(obs.low, obs.high)
    if not fits:
        from repaychaos.core.errors import InvalidResult

        raise InvalidResult(f"{result_path}: no delay family could be fitted to these reads")
    best = fits[0]
    t, s_tb = turnbull(obs.low, obs.high)
    gof = goodness(best, obs.low, obs.high, obs.first, obs.every, obs.max_checks)
    n = obs.n
    capacity = fit_capacity(_level_stats(obs, scenario, best))
    held = obs.result["metrics"].get("risk_holds", 0) / max(1, obs.result["metrics"].get("repayments", 1))
    data = calibrated_data(measured, best, capacity, held)
    load_scenario_data(data, "<calibrated>")  # what we write must load

    grid, model_p = _model_curve(data)
    top = float(obs.high[np.isfinite(obs.high)].max())
    pairs = [(g, m, float(np.interp(g, t, s_tb))) for g, m in zip(grid, model_p) if g <= top]
    model_rms = None
    allowed = MAX_MODEL_RMS
    if pairs:
        gaps = band_gap(t, s_tb, np.array([g for g, _, _ in pairs]), np.array([m for _, m, _ in pairs]))
        model_rms = math.sqrt(float(np.mean(np.square(gaps))))
        # A perfect model still strays from a curve measured on n users by the sampling error
        # alone (RMS about sqrt(mean p(1-p)/n)); allow twice that where it exceeds the fixed bound.
        measured_p = np.array([m for _, _, m in pairs])
        allowed = max(MAX_MODEL_RMS, 2 * math.sqrt(float(np.mean(measured_p * (1 - measured_p))) / max(1, n)))

    reasons = []
    first_usable = float(np.mean(obs.low <= 0))
    if first_usable > 0.8:
        reasons.append(f"{first_usable:.0%} of users saw usable at their first read: the reads were too sparse to "
                       "resolve the delay (check sooner and more often, e.g. first_after well below the delay)")
    if gof["p_value"] < GOF_LEVEL:
        reasons.append(f"the {best.name} fit strays {gof['max_gap']:.3f} from the Turnbull curve; a correct fit strays "
                       f"that far with probability {gof['p_value']:.2f} (95% of the time under "
                       f"{gof['max_gap_p95_by_chance']:.3f})")
    if model_rms is None or model_rms > allowed:
        reasons.append(f"the calibrated model's staleness curve is {model_rms if model_rms is not None else float('nan'):.4f} "
                       f"RMS from the measured one (allowed {allowed:.4f}: {MAX_MODEL_RMS}, or twice the sampling "
                       f"error of a curve measured on {n} users where that is larger)")
    record = {
        "schema": "repaychaos.calibration/1",
        "source": {"result": str(result_path), "measured_source": obs.result.get("source"),
                   "scenario": measured["name"]},
        "data": {"users": n, "right_censored": obs.right_censored, "phases": obs.phases,
                 "used": "repayments acked in [warmup, duration) outside every fault window (baseline)"},
        "fits": [f.describe() for f in fits],
        "chosen": best.describe(),
        "floor_seen": floor,
        "goodness": gof,
        "capacity": capacity,
        "model_check": {"rms": None if model_rms is None else round(model_rms, 6), "allowed": round(allowed, 6),
                        "points": [[g, round(m, 6), round(x, 6)] for g, m, x in pairs]},
        "verdict": "good" if not reasons else "poor",
        "reasons": reasons,
    }
    out_path = Path(out) if out else Path(result_path).parent / "calibrated.yaml"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(render_yaml(data, _comments(record, best, fits, capacity)), encoding="utf-8")
    (out_path.parent / "calibration.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    from repaychaos.calibrate.figure import write_figure

    write_figure(out_path.parent / "calibration.png", t, s_tb, fits[:3], pairs, measured["name"])
    record["paths"] = {"scenario": str(out_path), "record": str(out_path.parent / "calibration.json"),
                       "figure": str(out_path.parent / "calibration.png")}
    return record


def _comments(record: dict[str, Any], best: Fit, fits: list[Fit], capacity: dict[str, Any]) -> list[str]:
    src, data, gof = record["source"], record["data"], record["goodness"]
    lines = [
        f"Calibrated by `repaychaos calibrate` from {src['result']} ({src['measured_source']} run of '{src['scenario']}').",
        f"Fitted: the delay from ack to usable of {data['users']} baseline users ({data['right_censored']} never saw",
        "usable: right-censored), each known only between their last stale and first usable read,",
        "by interval-censored maximum likelihood (scipy), family chosen by AIC:",
    ]
    for f in fits:
        d = f.describe()
        lines.append(f"  {d['family']:<20} AIC {d['aic']:>10.1f}  median {d['median']:.4g}s  p95 {d['p95']:.4g}s"
                     + ("   <- chosen" if f is best else ""))
    lines.append(f"How well: largest gap to the Turnbull estimate {gof['max_gap']:.3f} (a correct fit: under "
                 f"{gof['max_gap_p95_by_chance']:.3f} 95% of the time; p = {gof['p_value']:.2f});")
    mc = record["model_check"]
    lines.append(f"this scenario's model (faults left out) is {mc['rms']} RMS from the measured staleness curve "
                 f"(allowed {mc['allowed']}). Verdict: {record['verdict']}.")
    if best.shifted:
        lines.append(f"The floor of {best.params[-2]:.4g}s every delay paid is written as credit.service.")
    if capacity.get("fitted"):
        lines.append(f"Capacity: {capacity['workers']} sync workers (95% set {capacity['workers_ci95'][0]}.."
                     f"{capacity['workers_ci95'][1]}), mean service {capacity['service_mean']:.4g}s, from "
                     f"{len(capacity['levels'])} arrival levels ({capacity['model']}).")
    else:
        lines.append("Capacity: " + capacity["reason"] + "; sync is written with unlimited workers whose service")
        lines.append("time is the whole fitted delay, so the model will not predict queueing under more load.")
    if best.family not in ("exponential", "lognormal"):
        lines.append(f"The scenario format has no {best.family} distribution: it is written as 200 of its quantiles (empirical).")
    lines.append("channel.latency is 0: every delay is measured from the ack. workload, faults and slo are the measured scenario's.")
    return lines
