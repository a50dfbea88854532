"""Fault type ``maintenance``: a component paused or rejecting work (SEMANTICS 1, 3, 4, 5).

Work reaching the component inside a window goes through at
:func:`repaychaos.semantics.release_time` — the window end (``pause``) or its first retry,
every ``REJECT_RETRY``, at or after the end (``reject``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from repaychaos.scenarios.distributions import Duration
from repaychaos.scenarios.faults.base import FaultBase, Window
from repaychaos.semantics import release_time

__all__ = ["Maintenance", "SPEC", "LABEL", "COLOUR", "ORDER", "release_time"]

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
        return self

    def windows(self, horizon: float) -> tuple[Window, ...]:
        if self.every is None:
            return super().windows(horizon)
        out = []
        start = self.at
        while start < horizon:
            out.append((start, start + float(self.for_ or 0.0)))
            start += self.every
        return tuple(out)


SPEC = Maintenance
