"""Which fault injectors are in force at each hook of a repayment's path, at a given instant.

Each hook (:data:`~repaychaos.scenarios.faults.hooks.HOOKS`: a component's gate, a link,
a worker's start, the view write, its settling) gets one :class:`Schedule` built from the
windows the injectors declare there. Between two window edges the set of active injectors
is constant, so a lookup is a range check against the cached segment (the stages ask in
nearly increasing time order) and a bisect otherwise. A hook no injector acts at has no
schedule, and the stage skips it with one test (:class:`Schedules`).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import Any, Iterable

from repaychaos.scenarios.faults.hooks import HOOKS, Hook

__all__ = ["Schedule", "Schedules"]

_INF = math.inf


class Schedule:
    """Active injectors per time segment for one hook, in the order they were declared."""

    __slots__ = ("_edges", "_sets", "_lo", "_hi", "_cur", "empty")

    def __init__(self, entries: Iterable[tuple[float, float, Any]]):
        entries = [(s, e, inj) for s, e, inj in entries if e > s]
        bounds = sorted({s for s, _, _ in entries} | {e for _, e, _ in entries if e != _INF})
        self._edges = [-_INF, *bounds, _INF]
        self._sets: list[tuple[Any, ...]] = []
        for lo in self._edges[:-1]:
            self._sets.append(tuple(inj for s, e, inj in entries if s <= lo < e))
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


def _name(hook: Hook) -> str:
    """The attribute of :class:`Schedules` holding ``hook``'s schedule: ``gate_ledger``,
    ``link_sync_credit``, ``sync_start``, ..."""
    return hook.method if hook.where is None else f"{hook.method}_{hook.where.replace('->', '_')}"


class Schedules:
    """The schedule of every hook for a run's injectors, as attributes named after the hooks
    (``gate_ledger``, ``link_ledger_sync``, ``gate_sync``, ``sync_start``,
    ``link_sync_credit``, ``gate_credit``, ``link_credit_view``, ``gate_view``, ``write``,
    ``settle``); None where no injector acts."""

    __slots__ = ("entries", *(_name(hook) for hook in HOOKS))

    gate_ledger: Schedule | None
    link_ledger_sync: Schedule | None
    gate_sync: Schedule | None
    sync_start: Schedule | None
    link_sync_credit: Schedule | None
    gate_credit: Schedule | None
    link_credit_view: Schedule | None
    gate_view: Schedule | None
    write: Schedule | None
    settle: Schedule | None

    def __init__(self, injectors: Iterable[Any]):
        #: per hook, ``(start, end, injector)`` of every window declared there, in injector order
        self.entries: dict[Hook, list[tuple[float, float, Any]]] = {hook: [] for hook in HOOKS}
        for inj in injectors:
            for hook, s, e in inj.hooks():
                self.entries[hook].append((s, e, inj))
        for hook, entries in self.entries.items():
            sched = Schedule(entries)
            setattr(self, _name(hook), None if sched.empty else sched)

    def get(self, hook: Hook) -> Schedule | None:
        """``hook``'s schedule (None: no injector acts there)."""
        found: Schedule | None = getattr(self, _name(hook))
        return found

    def windows(self, hook: Hook) -> list[tuple[float, float]]:
        """The windows declared at ``hook``."""
        return [(s, e) for s, e, _ in self.entries[hook] if e > s]
