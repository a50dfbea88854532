"""What the theory tests share: the scenario they start from and the closed forms they check."""

from __future__ import annotations

import math
from typing import Any

from builders import scenario_data
from repaychaos.scenarios import load_scenario_data


def theory_scenario(seed: int, max_checks: int, **over: Any):
    """A fault-free scenario with 1 ms unlimited sync, no channel/credit delay and reconcile
    off, checked first at 5 s then every 30 s; ``over`` sets dotted keys (``pipeline.sync.workers``)."""
    keys: dict[str, Any] = {
        "name": "theory", "duration": "1000s", "warmup": "0s", "seed": seed, "replications": 1,
        "workload.arrivals.rate": 10,
        "workload.check.max_checks": max_checks,
        "pipeline": {"channel": {"latency": 0}, "sync": {"workers": "unlimited", "service": "1ms"},
                     "credit": {"service": 0, "risk_hold_ratio": 0}, "view": {"cache_ttl": 0},
                     "reconcile": {"every": "off"}},
        **over,
    }
    return load_scenario_data(scenario_data(keys))


def erlang_c_wait(lam: float, mu: float, c: int) -> float:
    """Mean queueing delay Wq of M/M/c by the Erlang-C formula (inf when the queue is unstable)."""
    a = lam / mu
    if a >= c:
        return math.inf
    head = sum(a**k / math.factorial(k) for k in range(c))
    tail = a**c / math.factorial(c) * c / (c - a)
    return tail / (head + tail) / (c * mu - lam)
