"""What every fault spec shares: a name and the window(s) it is in force."""

from __future__ import annotations

import math
from typing import Annotated, Iterator

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from repaychaos.scenarios.distributions import Duration
from repaychaos.scenarios.units import parse_ratio

__all__ = ["FaultBase", "Ratio", "Window"]

Ratio = Annotated[float, BeforeValidator(parse_ratio)]
Window = tuple[float, float]


class FaultBase(BaseModel):
    """When a fault is in force: from ``at`` for ``for`` (default: the rest of the run)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    at: Duration = 0.0
    for_: Duration | None = Field(None, alias="for")

    def windows(self, horizon: float) -> tuple[Window, ...]:
        """The ``[start, end)`` windows of this fault that begin before ``horizon``."""
        return tuple(self.iter_windows(horizon))

    def iter_windows(self, horizon: float = math.inf, since: float = -math.inf) -> Iterator[Window]:
        """The windows lazily, from the first one still open at ``since`` (O(1) to start)."""
        end = math.inf if self.for_ is None else self.at + self.for_
        if self.at < horizon and end > since:
            yield (self.at, end)

    def window_at(self, t: float) -> Window | None:
        """The window containing ``t`` (O(1) whatever the recurrence), or None."""
        end = math.inf if self.for_ is None else self.at + self.for_
        return (self.at, end) if self.at <= t < end else None
