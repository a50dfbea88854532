"""Capacity from how the delay grew with load: the sync pool's workers ``c`` and mean service
time ``s`` under an M/M/c approximation (mean delay = s + Erlang-C wait), fitted across
the levels of a piecewise arrival profile — or a plain statement that the data cannot tell.

Each level's mean delay comes from its own interval-censored fit (the chosen family) with
a standard error from the fitted spread; ``s`` is fitted per ``c`` by scipy's bounded
scalar minimiser; the 95 % set of ``c`` is where the weighted squared error is within
3.84 of its minimum (a profile-likelihood interval). A set that reaches the largest ``c``
tried, or spans more than ±2 workers, means the data cannot tell.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import optimize

__all__ = ["fit_capacity", "erlang_c_wait", "MAX_WORKERS"]

MAX_WORKERS = 64
MIN_LEVEL_USERS = 30


def erlang_c_wait(lam: float, c: int, s: float) -> float:
    """Mean wait in queue of M/M/c with arrival rate ``lam`` and mean service ``s`` (inf if unstable)."""
    a = lam * s
    rho = a / c
    if rho >= 1:
        return math.inf
    term, total = 1.0, 1.0
    for k in range(1, c):
        term *= a / k
        total += term
    last = term * a / c / (1 - rho)
    p_wait = last / (total + last)
    return p_wait * s / (c - a)


def fit_capacity(levels: list[dict[str, Any]]) -> dict[str, Any]:
    """``levels``: ``{"rate", "mean", "se", "users"}`` per arrival level. The verdict and the fit."""
    usable = [lv for lv in levels if lv["users"] >= MIN_LEVEL_USERS and lv["se"] > 0]
    rates = [lv["rate"] for lv in usable]
    if len(usable) < 2 or max(rates) < 1.5 * min(rates):
        return {"fitted": False, "levels": levels,
                "reason": "the arrival rate did not vary enough (needs two or more profile levels, the highest at "
                          "least 1.5x the lowest, each with 30+ users who saw usable): the data cannot tell "
                          "workers from service time"}
    lam = np.array(rates)
    mean = np.array([lv["mean"] for lv in usable])
    se = np.array([lv["se"] for lv in usable])

    def chi2(c: int) -> tuple[float, float]:
        hi = float(min(mean.min(), 0.999 * c / lam.max()))

        def err(s: float) -> float:
            pred = np.array([s + erlang_c_wait(x, c, s) for x in lam])
            return float(np.sum(((pred - mean) / se) ** 2)) if np.all(np.isfinite(pred)) else 1e300

        res = optimize.minimize_scalar(err, bounds=(1e-6, hi), method="bounded")
        return float(res.fun), float(res.x)

    table = {c: chi2(c) for c in range(1, MAX_WORKERS + 1)}
    best_c = min(table, key=lambda c: table[c][0])
    best_chi2, best_s = table[best_c]
    plausible = [c for c, (x, _) in table.items() if x <= best_chi2 + 3.84]
    low, high = min(plausible), max(plausible)
    out = {"levels": levels, "workers": best_c, "workers_ci95": [low, high], "service_mean": round(best_s, 6),
           "chi2": round(best_chi2, 3), "model": "M/M/c: mean delay = s + Erlang-C wait"}
    if high >= MAX_WORKERS or high - low > 4:
        out.update(fitted=False, reason=f"the data cannot tell the worker count: {low}..{high} workers fit "
                                        "equally well (the queue barely grew with load)")
    else:
        out["fitted"] = True
    return out
