"""What every fault spec shares: a name and the window(s) it is in force."""

from __future__ import annotations

import math
from typing import Annotated, Any, Iterator

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from repaychaos.scenarios.distributions import Duration
from repaychaos.scenarios.units import parse_ratio

__all__ = ["FaultBase", "MAX_DELAY", "MAX_FAULT_TIME", "MAX_NAME", "Ratio", "Window", "bounded_delay"]

#: Longest fault name, in characters.
MAX_NAME = 64
#: Latest fault time (``at``, ``for``, ``every``) a fault may state: 366 days, in seconds.
MAX_FAULT_TIME = 366 * 86_400.0
#: Largest time a fault's delay distribution may state (a constant, mean, bound, scale,
#: quantile or sample): one day, in seconds.
MAX_DELAY = 86_400.0

Ratio = Annotated[float, BeforeValidator(parse_ratio)]
Window = tuple[float, float]


class FaultBase(BaseModel):
    """When a fault is in force: from ``at`` for ``for`` (default: the rest of the run)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    name: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=MAX_NAME)
    at: Duration = Field(0.0, ge=0, le=MAX_FAULT_TIME)
    #: a window has a length: ``for: 0`` would be a fault that is never in force
    for_: Duration | None = Field(None, alias="for", gt=0, le=MAX_FAULT_TIME)

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


def bounded_delay(dist: Any) -> Any:
    """``dist`` (a delay distribution) if every time it states is at most :data:`MAX_DELAY`;
    else ``ValueError`` naming the key (a shape is not a time)."""
    for key, value in dist.model_dump(by_alias=True).items():
        if key in ("dist", "shape"):
            continue
        for item in value if isinstance(value, (list, tuple)) else (value,):
            if isinstance(item, (int, float)) and not item <= MAX_DELAY:
                raise ValueError(f"{dist.dist}.{key} of at most {MAX_DELAY:g}s (1d), found {item:g}s")
    return dist
