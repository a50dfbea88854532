"""What both engines do to one message at the fault hooks, and how a finished one is observed.

The event engine (:mod:`repaychaos.sim.event_engine`) runs every message through these;
the fast engine (:mod:`repaychaos.sim.fast_engine`) only the messages a fault window or a
cache touches, and computes the rest in bulk to the same result
(:mod:`repaychaos.sim.bulk_observe`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable

from repaychaos.core.records import Repayment, Touch
from repaychaos.sim.users import reads_general, reads_simple, view_history

if TYPE_CHECKING:
    from repaychaos.core.collector import MetricsCollector
    from repaychaos.sim.message import Msg
    from repaychaos.sim.schedule import Schedule, Schedules

__all__ = ["gate", "past", "cross", "start_service", "downstream", "Observer"]

_INF = math.inf


def gate(sched: Schedule, component: str, msg: Any, t: float) -> float | None:
    """Pass every gate in force at ``component``; re-judge after each delay (None: deferred)."""
    while True:
        for inj in sched.at(t):
            t2 = inj.gate(component, msg, t)
            if t2 is None:
                return None
            if t2 != t:
                t = t2
                break
        else:
            return t
        if t == _INF:
            return t


def past(sched: Schedule, component: str, msg: Any, t: float) -> float:
    """:func:`gate` at a component where nothing defers a message (only ``sync`` does)."""
    passed = gate(sched, component, msg, t)
    if passed is None:
        raise RuntimeError(f"a fault deferred a message at {component}, where only sync may")
    return passed


def cross(sched: Schedule, link: str, msg: Any, t: float) -> None:
    """``msg`` crosses ``link`` at ``t``: every injector in force there judges it."""
    for inj in sched.at(t):
        inj.link(link, msg, t)


def start_service(h: Schedules, msg: Msg, t: float) -> float | None:
    """A worker takes ``msg`` at ``t``: the sync gates, then every ``sync_start`` in force at
    the instant they let it through, each adding its extra service time. The instant its
    service starts (None: deferred)."""
    if h.gate_sync is not None:
        passed = gate(h.gate_sync, "sync", msg, t)
        if passed is None:
            return None
        t = passed
    if h.sync_start is not None and t != _INF:
        for inj in h.sync_start.at(t):
            msg.extra += inj.sync_start(msg, t)
    return t


def downstream(h: Schedules, msg: Msg, t: float) -> float | None:
    """From sync completion at ``t`` to the view write: its instant, or None (dropped, lost, never)."""
    if h.link_sync_credit is not None:
        cross(h.link_sync_credit, "sync->credit", msg, t)
        if msg.dropped:
            return None
    if h.gate_credit is not None:
        t = past(h.gate_credit, "credit", msg, t)
    t += msg.csvc
    if h.link_credit_view is not None and t != _INF:
        cross(h.link_credit_view, "credit->view", msg, t)
        if msg.dropped:
            return None
    if h.gate_view is not None and t != _INF:
        t = past(h.gate_view, "view", msg, t)
    if t == _INF:
        return None
    if h.write is not None:
        for inj in h.write.at(t):
            inj.write(msg, t)
    if h.settle is not None:
        for inj in h.settle.at(t):
            inj.settle(msg, t)
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
