"""Fault type ``maintenance``: a component paused or rejecting work (SEMANTICS 1, 3, 4, 5).

Work reaching the component inside a window goes through at
:func:`repaychaos.semantics.release_time` — the window end (``pause``) or its first retry,
every ``REJECT_RETRY``, at or after the end (``reject``).
"""

from __future__ import annotations

import math
from typing import Iterator, Literal

from pydantic import model_validator

from repaychaos.scenarios.distributions import Duration
from repaychaos.scenarios.faults.base import FaultBase, Window
from repaychaos.semantics import release_time

__all__ = ["Maintenance", "SPEC", "LABEL", "COLOUR", "ORDER", "MIN_EVERY", "release_time"]

#: Shortest period of a recurring maintenance window (seconds); a shorter one is refused.
MIN_EVERY = 1.0

ORDER = 2
LABEL = "maintenance"
COLOUR = "#d1495b"


class Maintenance(FaultBase):
    """A component is paused (work waits) or rejects work for a window, optionally recurring."""

    type: Literal["maintenance"]
    component: Literal["sync", "credit", "ledger", "view"]
    mode: Literal["pause", "reject"] = "pause"
    every: Duration | None = None

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
