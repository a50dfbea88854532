"""The load side's one clock (scenario seconds <-> wall epoch seconds) and its one Retry-After parser."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from repaychaos.core.timescale import TimeScale

__all__ = ["Clock", "retry_after_seconds"]


@dataclass(frozen=True)
class Clock:
    """Scenario time ``s`` happens at wall ``t0 + scale.wall_span(s)``; ``k``: a constant K or
    a :class:`~repaychaos.core.timescale.TimeScale` (steps of K, docs/reference/cli.md)."""

    t0: float
    k: float | TimeScale
    scale: TimeScale = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", TimeScale.of(self.k))

    @property
    def top(self) -> float:
        """The largest K of the run: what one wall second of lateness is worth at most."""
        return self.scale.top

    def wall(self, s: float) -> float:
        """The wall epoch second of scenario second ``s``."""
        return self.t0 + self.scale.wall_span(s)

    def scenario(self, wall: float) -> float:
        """The scenario second of wall epoch second ``wall``."""
        return self.scale.scenario_at(wall - self.t0)

    def now(self) -> float:
        """Scenario seconds now."""
        return self.scenario(time.time())


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header in wall seconds from ``now``: delta-seconds or an HTTP date
    (RFC 9110 section 10.2.3); None when absent or unreadable. Capped at 60 s."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - (time.time() if now is None else now)
        except (TypeError, ValueError):
            return None
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(60.0, seconds))
