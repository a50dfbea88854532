"""Which fault injectors are in force at a pipeline point, at a given instant.

Each pipeline point (``sync``, ``credit``, ``ledger->sync``, ...) gets one
:class:`Schedule` built from the injectors' windows. Between two window edges the set
of active injectors is constant, so a lookup is a range check against the cached
segment (the stages ask in nearly increasing time order) and a bisect otherwise. With
no faults on a point the stage skips the lookup entirely (:attr:`Schedule.empty`).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any, Iterable

__all__ = ["Schedule"]

_INF = math.inf


class Schedule:
    """Active injectors per time segment for one pipeline point; gates (``order`` 0) first."""

    __slots__ = ("_edges", "_sets", "_lo", "_hi", "_cur", "empty")

    def __init__(self, entries: Iterable[tuple[float, float, Any]]):
        entries = [(s, e, inj) for s, e, inj in entries if e > s]
        bounds = sorted({s for s, _, _ in entries} | {e for _, e, _ in entries if e != _INF})
        self._edges = [-_INF, *bounds, _INF]
        self._sets: list[tuple[Any, ...]] = []
        for lo in self._edges[:-1]:
            active = [inj for s, e, inj in entries if s <= lo < e]
            active.sort(key=lambda inj: inj.order)
            self._sets.append(tuple(active))
        self.empty = not entries
        self._lo, self._hi, self._cur = -_INF, self._edges[1], self._sets[0]

    def at(self, t: float) -> tuple[Any, ...]:
        """The injectors whose window holds ``t`` (``()`` for none)."""
        if self._lo <= t < self._hi:
            return self._cur
        if t == _INF:
            return ()
        i = bisect_right(self._edges, t) - 1
        self._lo, self._hi, self._cur = self._edges[i], self._edges[i + 1], self._sets[i]
        return self._cur
