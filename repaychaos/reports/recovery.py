"""Recovery against the real floor: the same scenario without its faults, run through the
model with the same seed and replications (common random numbers: the same arrivals and
users), compared bin by bin with the result.

``result.json``'s own ``recovery`` compares with the stale share outside fault windows,
which still holds the drain of every backlog (on nightly-maintenance 7.6 % against a
fault-free floor below 1 %), so "back to baseline" there can mean "still draining".
The report uses this instead, for every result with faults and a time series.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Mapping

__all__ = ["fault_free_recovery", "TOLERANCE"]

#: Back to the floor: a bin's stale share within (1 + TOLERANCE) × the fault-free run's
#: share in the same bin, plus one read of noise.
TOLERANCE = 0.5


def _fault_free_series(result: Mapping[str, Any]) -> dict[str, Any]:
    from repaychaos.scenarios.loader import load_scenario_data
    from repaychaos.sim.simulate import run_model

    data = copy.deepcopy(result["scenario"])
    data["faults"] = []
    data["slo"] = {}  # phase-scoped SLOs name the faults removed here
    scenario = load_scenario_data(data, f"{data.get('name', 'scenario')} without its faults")
    base = run_model(scenario, seed=result.get("seed"), replications=result.get("replications") or 1,
                     progress=False)
    return base["series"]


def fault_free_recovery(result: Mapping[str, Any]) -> dict[str, Any] | None:
    """``{"baseline": ..., "baseline_stale_share", "windows": [{fault, start, end, recovered_after}]}``
    measured against a fault-free model run, or None when there is nothing to measure
    (no faults, no series, a synthetic record)."""
    windows = result.get("windows") or []
    series = result.get("series")
    if not windows or not series or (result.get("run") or {}).get("synthetic"):
        return None
    base = _fault_free_series(result)
    if base["bin_width"] != series["bin_width"] or len(base["reads"]) != len(series["reads"]):
        return None
    width = series["bin_width"]
    reads, stale = series["reads"], series["stale_reads"]
    b_reads, b_stale = base["reads"], base["stale_reads"]
    out = []
    for w in windows:
        end = math.inf if w.get("end") is None else float(w["end"])
        recovered = None
        first_bin = int(math.ceil(end / width)) if end != math.inf else len(reads)
        for i in range(first_bin, len(reads)):
            if reads[i] == 0:
                continue
            floor = b_stale[i] / b_reads[i] if b_reads[i] else 0.0
            if stale[i] <= floor * (1 + TOLERANCE) * reads[i] + 1:
                recovered = round(max(0.0, i * width - end), 6)
                break
        out.append({"fault": w["fault"], "start": w["start"], "end": w.get("end"),
                    "recovered_after": recovered})
    total_reads = sum(b_reads)
    return {
        "baseline": f"the same scenario without its faults (model, seed {result.get('seed')}, "
                    f"{base.get('replications', 1)} replication(s), common random numbers)",
        "baseline_stale_share": sum(b_stale) / total_reads if total_reads else 0.0,
        "windows": out,
    }
