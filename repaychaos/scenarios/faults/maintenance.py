"""Fault type ``maintenance``: a component paused or rejecting work (docs/explanation/semantics.md, rules 1, 3, 4, 5).

Work reaching the component inside a window goes through at
:func:`repaychaos.semantics.release_time` — the window end (``pause``) or its first retry,
every ``REJECT_RETRY``, at or after the end (``reject``). Messages still queued for sync
at a window's end waited in it, and the backlog it leaves is blamed on it (docs/explanation/semantics.md, rule 3a).
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Literal

from pydantic import Field, model_validator

from repaychaos.scenarios.distributions import Duration
from repaychaos.scenarios.faults.base import MAX_FAULT_TIME, FaultBase, Window
from repaychaos.scenarios.faults.hooks import GATE, Gate, Hook, LiveAPI, LiveFault, LiveMessage, LiveRule, ModelInjector
from repaychaos.semantics import release_time

__all__ = ["Maintenance", "SPEC", "LABEL", "COLOUR", "ORDER", "MODEL", "LIVE", "EXAMPLE", "EXAMPLE_DESCRIPTION", "MEANINGS", "MIN_EVERY", "release_time"]

#: Shortest period of a recurring maintenance window (seconds); a shorter one is refused.
MIN_EVERY = 1.0

ORDER = 2
LABEL = "maintenance"
COLOUR = "#d1495b"

#: What the type's own keys mean (the scenario reference).
MEANINGS = {
    "component": "Which stage is down.",
    "mode": "`pause`: work waits and resumes after the window; `reject`: work is refused and retried.",
    "every": "Repeat the window with this period (needs `for`, shorter than `every`).",
}

#: The reference's runnable example (its ``faults`` and ``slo``; tests run it through the model).
EXAMPLE_DESCRIPTION = "The sync workers pause for five minutes."
EXAMPLE = """faults:
  - type: maintenance
    name: deploy
    component: sync
    mode: pause
    at: 10m
    for: 5m
slo:
  stale_read_ratio@deploy: "< 50%"
  stale_read_ratio@after: "< 1%"
"""

class Maintenance(FaultBase):
    """A component is paused (work waits) or rejects work for a window, optionally recurring."""

    type: Literal["maintenance"]
    component: Literal["sync", "credit", "ledger", "view"]
    mode: Literal["pause", "reject"] = "pause"
    every: Duration | None = Field(None, le=MAX_FAULT_TIME)

    @model_validator(mode="after")
    def _recurrence(self) -> "Maintenance":
        if self.every is not None:
            if self.for_ is None:
                raise ValueError("'for' when 'every' is given (a recurring window needs a length)")
            if self.for_ >= self.every:
                raise ValueError("'for' shorter than 'every'")
            if self.every < MIN_EVERY:
                raise ValueError(f"'every' of at least {MIN_EVERY:g}s (a shorter period is not a maintenance window)")
        return self

    def iter_windows(self, horizon: float = math.inf, since: float = -math.inf) -> Iterator[Window]:
        """The windows lazily (O(1) to start whatever ``every``): nothing builds the whole list."""
        if self.every is None:
            yield from super().iter_windows(horizon, since)
            return
        length = float(self.for_ or 0.0)
        k = 0 if since <= self.at + length else math.floor((since - self.at - length) / self.every)
        while True:
            start = self.at + k * self.every
            if start >= horizon:
                return
            if start + length > since:
                yield (start, start + length)
            k += 1

    def window_at(self, t: float) -> Window | None:
        if self.every is None:
            return super().window_at(t)
        if t < self.at:
            return None
        start = self.at + math.floor((t - self.at) / self.every) * self.every
        end = start + float(self.for_ or 0.0)
        return (start, end) if start <= t < end else None


SPEC = Maintenance

_INF = math.inf


class MaintenanceInjector(ModelInjector):
    """The model: work at the component waits for :func:`release_time` (a rejected sync
    message is deferred and its worker freed)."""

    fault: Maintenance

    def hooks(self) -> list[tuple[Hook, float, float]]:
        return [(GATE[self.fault.component], s, e) for s, e in self.windows]

    def gate(self, component: str, msg: Any, t: float) -> float | None:
        start, end = self.window_at(t)
        through = release_time(t, end, self.fault.mode)
        if component == "sync":
            since = max(msg.enq, start)
            msg.touch("maintenance", since, through - since)
            if self.fault.mode == "reject":
                self.model.defer(msg, through)
                return None
            return through
        # ledger: the commit (= the ack) waits; credit, view: the stage waits.
        msg.touch("maintenance", through if component == "ledger" else t, through - t)
        return through

    def placed(self) -> None:
        if self.fault.component != "sync":
            return
        # Messages still queued at a window's end waited in it (docs/explanation/semantics.md, rule 3).
        for start, end in self.windows:
            if end != _INF:
                self.model.at(end, self._touch_queue, (start, end))
        self.model.on_leave_queue(self._touch_leaving)

    def _touch_leaving(self, msg: Any, t: float) -> None:
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


class MaintenanceRule(LiveRule):
    """The service: the component answers as held for the window (the stages wait, a
    rejecting ledger answers 503, a rejected sync message retries on the grid)."""

    def gate(self, active: LiveFault, component: str, t: float) -> Gate | None:
        fault = active.fault
        if fault.component != component:
            return None
        window = active.window_at(t)
        return None if window is None else (window[0], window[1], fault.mode, "maintenance")

    def waited(self, api: LiveAPI, active: LiveFault, component: str, msg: LiveMessage,
               since: float, went: float) -> None:
        if active.fault.component != component:
            return
        for start, end in active.iter_windows(since=since, until=went):
            if start < went and end > since:
                at = max(since, start)
                msg.trace.touch("maintenance", at, min(end, went) - at)

    def placed(self, api: LiveAPI, active: LiveFault) -> None:
        if active.fault.component == "sync" and api.pooled:
            api.spawn(self._window_ends(api, active))

    @staticmethod
    async def _window_ends(api: LiveAPI, active: LiveFault) -> None:
        """docs/explanation/semantics.md, rule 3a: a sync window that ends with messages queued leaves a backlog to blame
        on it. One task per fault walks its windows lazily (a recurring fault may have very many)."""
        since = api.now()
        while True:
            window = next(iter(active.iter_windows(since=since)), None)
            if window is None or window[1] == math.inf:
                return
            end = window[1]
            await api.sleep_until(end)
            still = active.window_at(end - 1e-9)  # None or shorter: ended live (the stages see it)
            if still is not None and still[1] == end:
                api.blame_backlog("maintenance")
            since = end


MODEL = MaintenanceInjector
LIVE = MaintenanceRule()
