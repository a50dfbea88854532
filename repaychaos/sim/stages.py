"""What both engines do to one message at the fault points, and how a finished one is observed.

The event engine (:mod:`repaychaos.sim.event_engine`) runs every message through these;
the fast engine (:mod:`repaychaos.sim.fast_engine`) only the messages a fault window or a
cache touches, and computes the rest in bulk to the same result
(:mod:`repaychaos.sim.bulk_observe`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Mapping

from repaychaos.core.records import Repayment, Touch
from repaychaos.sim.users import reads_general, reads_simple, view_history

if TYPE_CHECKING:
    from repaychaos.core.collector import MetricsCollector
    from repaychaos.sim.message import Msg
    from repaychaos.sim.schedule import Schedule

__all__ = ["through", "past", "downstream", "Observer"]

_INF = math.inf


def through(sched: Schedule, point: str, msg: Any, t: float) -> float | None:
    """Pass every injector in force at ``point``; re-judge after each delay (None: deferred)."""
    while True:
        for inj in sched.at(t):
            t2 = inj.apply(point, msg, t)
            if t2 is None:
                return None
            if t2 != t:
                t = t2
                break
        else:
            return t
        if t == _INF:
            return t


def past(sched: Schedule, point: str, msg: Any, t: float) -> float:
    """:func:`through` at a point where nothing defers a message (only ``sync`` does)."""
    passed = through(sched, point, msg, t)
    if passed is None:
        raise RuntimeError(f"a fault deferred a message at {point}, where only sync may")
    return passed


def downstream(h: Mapping[str, Schedule | None], msg: Msg, t: float) -> float | None:
    """From sync completion at ``t`` to the view write: its instant, or None (dropped, lost, never)."""
    if h["sync->credit"] is not None:
        through(h["sync->credit"], "sync->credit", msg, t)
        if msg.dropped:
            return None
    if h["credit"] is not None:
        t = past(h["credit"], "credit", msg, t)
    t += msg.csvc
    if h["credit->view"] is not None and t != _INF:
        through(h["credit->view"], "credit->view", msg, t)
        if msg.dropped:
            return None
    if h["view"] is not None and t != _INF:
        t = past(h["view"], "view", msg, t)
    if t == _INF:
        return None
    if h["write"] is not None:
        through(h["write"], "write", msg, t)
    if h["final"] is not None:
        through(h["final"], "final", msg, t)
    return None if msg.lost else t


class Observer:
    """Turns a message whose view history is known into its reads and feeds the collector."""

    __slots__ = ("collector", "warmup", "duration", "next_sweep", "ttl", "every", "max_checks")

    def __init__(self, scenario: Any, collector: MetricsCollector):
        self.collector = collector
        self.warmup = scenario.warmup
        self.duration = scenario.duration
        self.next_sweep: Callable[[float], float] = scenario.pipeline.reconcile.next_sweep
        self.ttl = scenario.pipeline.view.cache_ttl
        check = scenario.workload.check
        self.every = check.every
        self.max_checks = check.max_checks

    def finish(self, msg: Msg, write: float | None) -> None:
        """The repayment's view write is ``write`` (None: never): compute its reads and observe
        it. A user's second payment has no reads of its own (docs/explanation/semantics.md,
        10a): it is not observed."""
        ack = msg.ack
        if msg.second or not (self.warmup <= ack < self.duration):
            return
        held = msg.held
        usable_at, changes, repaired = view_history(ack, held, write, msg.bad, self.next_sweep, msg.kept_until)
        touches = msg.touches
        if msg.pending is not None:
            touches = list(touches or ())
            for cause, at in msg.pending:
                if repaired - at > 0:
                    touches.append(Touch(cause, at, repaired - at))
        rep = Repayment(ack, held, usable_at, touches or (), changes)
        if changes is None and self.ttl <= 0:
            reads = reads_simple(ack, usable_at, msg.first, self.every, self.max_checks)
        else:
            reads = reads_general(ack, rep.view_usable, msg.first, self.every, self.max_checks, self.ttl)
        self.collector.observe(rep, reads)
