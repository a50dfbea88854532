"""Runtime fault injection: which faults are in force at a scenario instant.

The scenario's faults are placed on the timeline at start; ``POST /chaos/faults`` adds
one more (``at`` relative to now) and ``DELETE`` ends one now. Every fault is validated
by the same pydantic models as a scenario file (:mod:`repaychaos.scenarios.spec`), so a
fault that would be refused in a file is refused here too.

The stages ask this board questions in scenario time (``gate("sync", t)``,
``in_force(t)``); they never look at wall time. What a fault *does* is its type's live
rule (``LIVE`` in its module of :mod:`repaychaos.scenarios.faults`); this board only
knows where each placed fault's windows are.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from repaychaos.scenarios.faults import FAULT_TYPES, REGISTRY
from repaychaos.scenarios.faults.hooks import Gate, LiveRule
from repaychaos.scenarios.loader import load_fault_data
from repaychaos.core.errors import InvalidInput, InvalidScenario
from repaychaos.semantics import REJECT_RETRY, release_time

__all__ = ["ActiveFault", "FaultBoard", "MAX_LIVE_FAULTS", "REJECT_RETRY", "TooManyFaults", "parse_fault",
           "release_time"]

#: Most faults added through the chaos API that may be in force or scheduled at once: every
#: stage asks the board about each of them, so their number is work on the hot path.
MAX_LIVE_FAULTS = 64


class TooManyFaults(InvalidInput):
    """:data:`MAX_LIVE_FAULTS` live faults are in force or scheduled already (HTTP 429)."""

def parse_fault(data: Any) -> Any:
    """One fault in scenario syntax -> its validated model, or :class:`InvalidInput` naming the key."""
    try:
        return load_fault_data(data)
    except InvalidScenario as exc:
        raise InvalidInput("; ".join(str(p) for p in exc.problems)) from None


@dataclass
class ActiveFault:
    """A fault placed on the service's timeline: ``[start, end)`` windows in scenario seconds.

    The windows are never built as a list: a recurring fault answers :meth:`window_at` in
    O(1) and :meth:`iter_windows` lazily, so adding one costs O(1) whatever its ``every``.
    """

    id: str
    fault: Any
    label: str
    source: str  # "scenario" or "live"
    offset: float = 0.0
    horizon: float = math.inf  # windows start before offset + horizon
    ended: float | None = None  # set by DELETE: windows are cut there

    @property
    def type(self) -> str:
        return self.fault.type

    @property
    def rule(self) -> LiveRule:
        """What this fault does in the service: its type's live rule."""
        rule: LiveRule = REGISTRY[self.fault.type].live
        return rule

    @property
    def windows(self) -> list[tuple[float, float]]:
        """Every window as a list (tests and short listings; the stages use the lazy methods)."""
        return list(self.iter_windows())

    def iter_windows(self, since: float = -math.inf, until: float = math.inf) -> Iterator[tuple[float, float]]:
        """Windows still open at ``since`` that start before ``until``, in order, lazily."""
        off, stop = self.offset, min(until, self.offset + self.horizon)
        if self.ended is not None:
            stop = min(stop, self.ended)
        for start, end in self.fault.iter_windows(stop - off, since - off):
            start, end = start + off, end + off
            if self.ended is not None:
                end = min(end, self.ended)
            if end > since:
                yield start, end

    def over_by(self) -> float:
        """The instant its last window ends (inf: one never does; -inf: it has none)."""
        fault = self.fault
        if fault.at >= self.horizon:
            return -math.inf
        every = getattr(fault, "every", None)
        if fault.for_ is None:
            last = math.inf
        elif every is None:
            last = fault.at + fault.for_
        else:  # the last recurrence starting before the horizon
            last = fault.at + math.ceil((self.horizon - fault.at) / every - 1) * every + fault.for_
        last += self.offset
        return last if self.ended is None else min(last, self.ended)

    def window_at(self, t: float) -> tuple[float, float] | None:
        window = self.fault.window_at(t - self.offset)
        if window is None or window[0] >= self.horizon:
            return None
        start, end = window[0] + self.offset, window[1] + self.offset
        if self.ended is not None:
            if start >= self.ended or t >= self.ended:
                return None
            end = min(end, self.ended)
        return start, end

    def as_json(self, now: float, shown: int = 10) -> dict[str, Any]:
        data = self.fault.model_dump(mode="json", by_alias=True, exclude_none=True)
        return {
            "id": self.id,
            "label": self.label,
            "source": self.source,
            "type": self.type,
            "active": self.window_at(now) is not None,
            # the open and next windows only: a recurring fault has as many as its horizon allows
            "windows": [[s, None if e == math.inf else e] for s, e in itertools.islice(self.iter_windows(since=now), shown)],
            "fault": data,
        }


class FaultBoard:
    """Every fault on the service's timeline, queried by the stages in scenario time."""

    def __init__(self, horizon: float):
        self.horizon = horizon
        self.faults: dict[str, ActiveFault] = {}
        self._ids = itertools.count(1)
        self.on_add: list[Callable[[ActiveFault], None]] = []

    def add(self, fault: Any, *, offset: float = 0.0, source: str = "scenario", label: str | None = None) -> ActiveFault:
        """Place ``fault`` with its windows shifted by ``offset`` scenario seconds."""
        fid = f"f{next(self._ids)}"
        active = ActiveFault(fid, fault, label or fault.name or f"{fault.type}#{fid}", source, offset, self.horizon)
        self.faults[fid] = active
        for callback in self.on_add:
            callback(active)
        return active

    def live_count(self, now: float) -> int:
        """Faults added through the chaos API that are in force or scheduled at ``now``."""
        return sum(1 for a in self.faults.values() if a.source == "live" and a.over_by() > now)

    def prune(self, before: float) -> None:
        """Forget live faults whose every window was over before ``before`` (the caller passes
        the oldest instant work still in flight entered the pipeline, so no stage can still be
        touched by one): their number stays bounded however many are added and ended."""
        for fid in [fid for fid, a in self.faults.items() if a.source == "live" and a.over_by() < before]:
            del self.faults[fid]

    def end(self, fid: str, now: float) -> bool:
        """End fault ``fid`` now: windows are cut at ``now``; later ones are dropped."""
        active = self.faults.get(fid)
        if active is None:
            return False
        active.ended = now if active.ended is None else min(active.ended, now)
        return True

    # ------------------------------------------------------------------ questions the stages ask

    def gate(self, component: str, t: float) -> Gate | None:
        """The window holding ``component`` at ``t`` — ``(start, end, mode, cause)``, the latest
        end winning — or None."""
        best = None
        for active in self.faults.values():
            window = active.rule.gate(active, component, t)
            if window is not None and (best is None or window[1] > best[1]):
                best = window
        return best

    def keeps(self, account: str, t: float) -> bool:
        """Does a fault hold ``account`` so that a reconcile sweep at ``t`` leaves its view as it is
        (a rule lag's hold before its rollback)?"""
        return any(a.rule.keeps(a, account, t) for a in self.faults.values())

    def in_force(self, t: float) -> list[ActiveFault]:
        """The faults with a window holding ``t``, in the order they were placed."""
        return [a for a in self.faults.values() if a.window_at(t) is not None]

    def listing(self, now: float) -> list[dict[str, Any]]:
        """Faults in force and scheduled (those with a window not yet over)."""
        return [a.as_json(now) for a in self.faults.values() if next(a.iter_windows(since=now), None) is not None]

    def active_counts(self, now: float) -> dict[str, int]:
        counts = dict.fromkeys(FAULT_TYPES, 0)
        for active in self.faults.values():
            if active.window_at(now) is not None:
                counts[active.type] += 1
        return counts
