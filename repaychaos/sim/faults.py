"""Fault injectors: one class per scenario fault ``type``, found through :data:`INJECTORS`.

An injector says at which pipeline points and in which windows it is in force
(:meth:`Injector.hooks`); the stage at that point calls :meth:`Injector.apply` for a
message passing while the window is open, and the injector may delay it (return a later
time), defer it (return ``None`` after re-submitting it itself), or mark it dropped,
corrupted or lost, recording a :class:`~repaychaos.core.records.Touch`. Injectors that act
on the stage's state at an instant (a cutover emptying the queue) schedule SimPy events
in :meth:`Injector.start`. Adding a fault type means adding one class here.

Points, in path order: ``ledger`` (commit attempt), ``ledger->sync`` (at the ack),
``sync`` (a worker starts the message), ``sync->credit`` (sync done), ``credit``
(arrival at credit), ``credit->view`` (credit done), ``view`` (the write),
``write`` (the instant the view is written), ``final`` (the same instant, for
in-flight checks). See docs/SEMANTICS.md.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import TYPE_CHECKING, ClassVar

from repaychaos.semantics import DROP, CORRUPT, REJECT_RETRY, flip, judge_bug, release_time
from repaychaos.sim.message import U_CUT_LOSS, U_LINK, U_UNMAPPED, Msg

if TYPE_CHECKING:  # pragma: no cover
    from repaychaos.scenarios import Scenario
    from repaychaos.scenarios.faults.base import FaultBase
    from repaychaos.scenarios.faults.cutover import Cutover as CutoverFault
    from repaychaos.scenarios.faults.interface_bug import InterfaceBug as InterfaceBugFault
    from repaychaos.scenarios.faults.maintenance import Maintenance as MaintenanceFault
    from repaychaos.scenarios.faults.sync_delay import SyncDelay as SyncDelayFault
    from repaychaos.sim.pipeline import InjectorAPI

__all__ = ["REJECT_RETRY", "Injector", "INJECTORS", "register", "build_injectors", "POINTS",
           "Maintenance", "SyncDelay", "InterfaceBug", "Cutover"]

POINTS: tuple[str, ...] = ("ledger", "ledger->sync", "sync", "sync->credit", "credit", "credit->view",
                           "view", "write", "final")

_INF = math.inf


class Injector:
    """Base class: one scenario fault, its windows and what it does to a passing message."""

    type: ClassVar[str] = ""
    #: Gates (work waits) run before modifiers so a modifier is judged at the real start.
    order: ClassVar[int] = 1
    fault: FaultBase

    def __init__(self, fault: FaultBase, label: str, model: "InjectorAPI"):
        self.fault = fault
        self.label = label
        self.model = model
        self.windows = fault.windows(model.horizon)
        self._starts = [s for s, _ in self.windows]

    def hooks(self) -> list[tuple[str, float, float]]:
        """``(point, start, end)`` for every window in which this injector acts."""
        raise NotImplementedError

    def apply(self, point: str, msg: Msg, t: float) -> float | None:
        """Act on ``msg`` passing ``point`` at ``t``; the time it may proceed (None: deferred)."""
        raise NotImplementedError

    def start(self) -> None:
        """Schedule any SimPy events this fault needs (called once before the run)."""

    def window_at(self, t: float) -> tuple[float, float]:
        """The window holding ``t`` (the schedule only calls an injector inside one)."""
        return self.windows[bisect_right(self._starts, t) - 1]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label})"


INJECTORS: dict[str, type[Injector]] = {}


def register(cls: type[Injector]) -> type[Injector]:
    """Class decorator: make ``cls`` the injector for faults of type ``cls.type``."""
    INJECTORS[cls.type] = cls
    return cls


def build_injectors(scenario: Scenario, model: "InjectorAPI") -> list[Injector]:
    """One injector per fault of the scenario, in scenario order."""
    out = []
    for index, fault in enumerate(scenario.faults):
        cls = INJECTORS.get(fault.type)
        if cls is None:  # the scenario model only admits known types; guard the registry anyway
            raise NotImplementedError(f"no injector for fault type {fault.type!r}")
        out.append(cls(fault, scenario.fault_label(index), model))
    return out


@register
class Maintenance(Injector):
    """A component paused (work waits for the window end) or rejecting (work retries)."""

    type = "maintenance"
    fault: MaintenanceFault
    order = 0

    def hooks(self) -> list[tuple[str, float, float]]:
        return [(self.fault.component, s, e) for s, e in self.windows]

    def apply(self, point: str, msg: Msg, t: float) -> float | None:
        start, end = self.window_at(t)
        through = release_time(t, end, self.fault.mode)
        if point == "sync":
            since = max(msg.enq, start)
            msg.touch("maintenance", since, through - since)
            if self.fault.mode == "reject":
                self.model.defer(msg, through)
                return None
            return through
        # ledger: the commit (= the ack) waits; credit, view: the stage waits.
        msg.touch("maintenance", through if point == "ledger" else t, through - t)
        return through

    def start(self) -> None:
        if self.fault.component != "sync":
            return
        # Messages still queued at a window's end waited in it (SEMANTICS 3).
        for start, end in self.windows:
            if end != _INF:
                self.model.at(end, self._touch_queue, (start, end))
        self.model.on_leave_queue(self._touch_leaving)

    def _touch_leaving(self, msg: Msg, t: float) -> None:
        # A message taken out of the queue early (a cutover loses it) still waited in
        # every window it was queued in.
        for start, end in self.windows:
            if start < t and end > msg.enq:
                since = max(msg.enq, start)
                msg.touch("maintenance", since, end - since)

    def _touch_queue(self, window: tuple[float, float]) -> None:
        start, end = window
        self.model.blame_backlog("maintenance")  # the backlog it left drains next
        for msg in self.model.waiting():
            since = max(msg.enq, start)
            msg.touch("maintenance", since, end - since)


@register
class SyncDelay(Injector):
    """Each sync message whose service starts in the window takes ``extra`` longer."""

    type = "sync_delay"
    fault: SyncDelayFault

    def __init__(self, fault: SyncDelayFault, label: str, model: "InjectorAPI"):
        super().__init__(fault, label, model)
        self._extra = fault.extra.sampler(model.rng)

    def hooks(self) -> list[tuple[str, float, float]]:
        return [("sync", s, e) for s, e in self.windows]

    def apply(self, point: str, msg: Msg, t: float) -> float:
        extra = self._extra()
        msg.extra += extra
        msg.touch("sync_delay", t, extra)
        return t


@register
class InterfaceBug(Injector):
    """On one link, a share of messages is lost and a share has its state flipped.

    Each bug judges a message with its own uniform (:func:`repaychaos.semantics.judge_bug`):
    the first bug on a link uses the repayment's pre-drawn link uniform (common random
    numbers), any further bug on the same link draws its own from the fault stream.
    """

    type = "interface_bug"
    fault: InterfaceBugFault

    def __init__(self, fault: InterfaceBugFault, label: str, model: "InjectorAPI"):
        super().__init__(fault, label, model)
        self._slot = U_LINK[fault.link]
        self._drop = fault.drop_ratio
        self._corrupt = fault.corrupt_ratio
        self._own_draw = not model.claim_link_draw(fault.link)
        self._draw = model.rng.random

    def hooks(self) -> list[tuple[str, float, float]]:
        return [(self.fault.link, s, e) for s, e in self.windows]

    def apply(self, point: str, msg: Msg, t: float) -> float:
        if msg.dropped:
            return t
        u = self._draw() if self._own_draw else msg.u[self._slot]
        outcome = judge_bug(u, self._drop, self._corrupt)
        if outcome is DROP:
            msg.dropped = True
            msg.touch_until_repair("interface_bug", t)
        elif outcome is CORRUPT:
            msg.bad = flip(msg.bad)
            msg.touch_until_repair("interface_bug", t)
        return t


@register
class Cutover(Injector):
    """At ``at`` messages in flight are lost; writes during the window may be mis-mapped."""

    type = "cutover"
    fault: CutoverFault

    def hooks(self) -> list[tuple[str, float, float]]:
        out = []
        for s, e in self.windows:
            out.append(("write", s, e))
            out.append(("final", s, _INF))
        return out

    def apply(self, point: str, msg: Msg, t: float) -> float:
        if point == "write":
            if msg.u[U_UNMAPPED] < self.fault.unmapped_ratio:
                msg.bad = True
                msg.touch_until_repair("cutover", t)
        else:  # final: was it in flight at the switch?
            at = self.fault.at
            if msg.ack < at and not msg.lost and msg.u[U_CUT_LOSS] < self.fault.inflight_loss_ratio:
                msg.lost = True
                msg.touch_until_repair("cutover", at)
        return t

    def start(self) -> None:
        for s, _ in self.windows:
            self.model.at(s, self._switch, s)

    def _switch(self, at: float) -> None:
        # Queued messages lost at the switch never reach a worker of the new system.
        ratio = self.fault.inflight_loss_ratio
        if not ratio:
            return

        def lost(msg: Msg) -> bool:
            if msg.ack < at and msg.u[U_CUT_LOSS] < ratio:
                msg.lost = True
                msg.touch_until_repair("cutover", at)
                return True
            return False

        self.model.lose_waiting(lost, at)
