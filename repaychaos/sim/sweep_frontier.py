"""The capacity frontier: for each setting of the other keys, the best value of one key
that still meets every SLO — read off a finished grid, or found by bisection.

Pure logic on verdicts (no model runs here), so it is tested on its own. Both assume
the SLO verdict is monotone in the key (more workers never hurt; more traffic never
helps); the grid reading is conservative where noise breaks that: it walks from the
easy end and stops at the first failure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

__all__ = ["Bisection", "grid_frontier", "frontier_key", "numeric"]


def numeric(value: Any) -> float | None:
    """A plottable, orderable number, or None (bools, strings, mappings are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def frontier_key(keys: Sequence[str]) -> str | None:
    """Which varied key the frontier is about: an arrival rate (or the arrivals' ``scale``)
    if one is varied, else the last key."""
    if not keys:
        return None
    for key in keys:
        if key.split(".")[-1] == "rate" or key.endswith("arrivals.scale"):
            return key
    return keys[-1]


def grid_frontier(rows: Sequence[dict[str, Any]], keys: Sequence[str], key: str) -> dict[str, Any]:
    """The frontier of ``key`` over a finished grid, one entry per setting of the other keys.

    Each row needs ``values`` (the varied values), ``settings`` (their normalised form)
    and ``passed``. The goal is inferred: if low values of ``key`` pass more often than
    high ones, it is a load (``max``: the highest value meeting every SLO), otherwise a
    resource (``min``: the smallest value meeting every SLO).
    """
    others = [k for k in keys if k != key]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(_hashable(row["values"][k]) for k in others), []).append(row)

    def order(group: list[dict[str, Any]]) -> list[dict[str, Any]]:
        nums = [numeric(r["settings"][key]) for r in group]
        if all(n is not None for n in nums):
            return [r for _, r in sorted(zip(nums, group), key=lambda p: p[0] or 0.0)]
        return list(group)  # the order the user listed them in

    ordered = [order(g) for g in groups.values()]
    low_pass = sum(1 for g in ordered if g and g[0]["passed"])
    high_pass = sum(1 for g in ordered if g and g[-1]["passed"])
    goal = "max" if low_pass >= high_pass else "min"
    points = []
    for group in ordered:
        walk = group if goal == "max" else list(reversed(group))
        best = None
        for row in walk:
            if not row["passed"]:
                break
            best = row
        if best is None:
            status = "none_pass"
        elif best is walk[-1]:
            status = "all_pass"
        else:
            status = "found"
        first = group[0]
        points.append({
            "values": {k: first["values"][k] for k in others},
            "settings": {k: first["settings"][k] for k in others},
            "value": None if best is None else best["values"][key],
            "setting": None if best is None else best["settings"][key],
            "status": status,
        })
    return {"key": key, "goal": goal, "over": others, "method": "grid", "points": points}


def _round_inside(x: float, lo: float, hi: float) -> float:
    """``x`` with as few significant digits as keep it strictly inside (lo, hi): 18.32, not 18.3196159122."""
    for digits in range(3, 16):
        value = float(f"{x:.{digits}g}")
        if lo < value < hi:
            return value
    return x


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value


@dataclass
class Bisection:
    """Bisection of one numeric key between ``low`` and ``high`` for one setting of the others.

    Call :meth:`next_values` for the values to evaluate (both ends, then one midpoint
    per round; empty when done) and :meth:`record` with each verdict. Both ends are evaluated first; if they agree there
    is no frontier inside the range (``all_pass`` / ``none_pass``) and the search stops.
    """

    low: float
    high: float
    integer: bool
    tolerance: float = 0.01
    verdicts: dict[float, bool] = field(default_factory=dict)
    goal: str | None = None

    def snap(self, x: float) -> float | int:
        """A value as the search evaluates it (an int for an integer search)."""
        return int(round(x)) if self.integer else x

    def next_values(self, ways: int = 1) -> list[float | int]:
        """The values to evaluate next: both ends first, then ``ways`` evenly spaced interior
        values (1 = bisection; more keep idle workers busy); [] when done."""
        ends = [self.snap(e) for e in (self.low, self.high)]
        pending = [e for e in dict.fromkeys(ends) if e not in self.verdicts]
        if pending:
            return pending
        lo, hi = self._bracket()
        if lo is None or hi is None:
            return []
        if self.integer:
            if hi - lo <= 1:
                return []
            inner = [int(lo) + (int(hi) - int(lo)) * j // (ways + 1) for j in range(1, ways + 1)]
            return [v for v in dict.fromkeys(inner) if lo < v < hi and v not in self.verdicts]
        if hi - lo <= self.tolerance * max(abs(lo), abs(hi)):
            return []
        return [_round_inside(lo + (hi - lo) * j / (ways + 1), lo, hi) for j in range(1, ways + 1)]

    def record(self, value: float, passed: bool) -> None:
        self.verdicts[value] = passed
        if self.goal is None and len(self.verdicts) >= 2:
            low, high = self.verdicts.get(self.snap(self.low)), self.verdicts.get(self.snap(self.high))
            if low is not None and high is not None and low != high:
                self.goal = "max" if low else "min"

    def _bracket(self) -> tuple[float | None, float | None]:
        """The narrowest (lower, upper) pair of evaluated values whose verdicts differ."""
        if self.goal is None:
            return None, None
        easy_low = self.goal == "max"  # for a load, low values pass
        passing = [v for v, ok in self.verdicts.items() if ok]
        failing = [v for v, ok in self.verdicts.items() if not ok]
        if easy_low:
            lower = max(passing)
            above = [f for f in failing if f > lower]
            return lower, (min(above) if above else None)
        upper = min(passing)
        below = [f for f in failing if f < upper]
        return (max(below) if below else None), upper

    def outcome(self) -> dict[str, Any]:
        """Where the search ended: the best passing value (or None) and why."""
        low, high = self.verdicts.get(self.snap(self.low)), self.verdicts.get(self.snap(self.high))
        if self.goal is None:
            if low and high:
                return {"status": "all_pass", "value": None, "bracket": None}
            return {"status": "none_pass", "value": None, "bracket": None}
        lo, hi = self._bracket()
        best = lo if self.goal == "max" else hi
        return {"status": "found", "value": best, "bracket": [lo, hi]}
