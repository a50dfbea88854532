"""The time scale of a load run: K scenario seconds per wall second, constant or in steps.

A live run compresses scenario time by K. When the arrival rate changes during a scenario
(``workload.arrivals.profile``), one K for the whole run is set by the peak: the quiet hours
then crawl at the peak's pace. A :class:`TimeScale` is a step function of scenario time
instead: ``K = k_i`` from scenario second ``at_i`` until the next step (before the first
step, and after the last, the nearest step's K). Scenario second ``s`` happens at wall
``t0 + wall_span(s)``, where ``wall_span`` integrates ``1 / K`` from 0 to ``s``; both
clocks of a run (the service's and the load users') map instants through the same steps,
so a delay that spans a step is as long in scenario time as the scenario says.

The text form, for command lines and environment variables: ``"25"`` (constant) or
``"25,3600:11.1,7200:6.67"`` (K from 0, then ``AT:K`` steps in scenario seconds).
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field

from repaychaos.core.errors import InvalidInput

__all__ = ["TimeScale"]


@dataclass(frozen=True)
class TimeScale:
    """K as a step function of scenario time: ``steps`` are ``(at, k)``, the first at 0."""

    steps: tuple[tuple[float, float], ...]
    _walls: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.steps or self.steps[0][0] != 0.0:
            raise InvalidInput(f"time scale: the first step must start at 0, found {self.steps!r}")
        for (a, _), (b, _) in zip(self.steps, self.steps[1:]):
            if not b > a:
                raise InvalidInput(f"time scale: steps must start at increasing instants, found {a:g} then {b:g}")
        for _, k in self.steps:
            if not (math.isfinite(k) and k > 0):
                raise InvalidInput(f"time scale: K must be a finite number > 0, found {k!r}")
        walls = [0.0]
        for (a, k), (b, _) in zip(self.steps, self.steps[1:]):
            walls.append(walls[-1] + (b - a) / k)
        object.__setattr__(self, "_walls", tuple(walls))

    @classmethod
    def constant(cls, k: float) -> "TimeScale":
        return cls(((0.0, float(k)),))

    @classmethod
    def of(cls, value: "float | str | TimeScale") -> "TimeScale":
        """A TimeScale from itself, a number K, or the text form."""
        if isinstance(value, TimeScale):
            return value
        if isinstance(value, (int, float)):
            return cls.constant(value)
        return cls.parse(value)

    @classmethod
    def parse(cls, text: str) -> "TimeScale":
        """The text form (module docstring): ``"K"`` or ``"K,AT:K,..."``."""
        parts = [p.strip() for p in str(text).split(",")]
        try:
            steps = [(0.0, float(parts[0]))]
            for part in parts[1:]:
                at, _, k = part.partition(":")
                steps.append((float(at), float(k)))
        except ValueError:
            raise InvalidInput(f"time scale: expected K or K,AT:K,... (scenario seconds), found {text!r}") from None
        return cls(tuple(steps))

    def text(self) -> str:
        """The text form; :meth:`parse` gives this time scale back exactly."""
        first, *rest = self.steps
        return ",".join([repr(first[1]), *(f"{at!r}:{k!r}" for at, k in rest)])

    @property
    def is_constant(self) -> bool:
        return len(self.steps) == 1

    @property
    def top(self) -> float:
        """The largest K: what a wall second of lateness is worth at most in scenario time."""
        return max(k for _, k in self.steps)

    def k_at(self, s: float) -> float:
        """K at scenario second ``s``."""
        return self.steps[max(0, bisect.bisect_right(self.steps, (s, math.inf)) - 1)][1]

    def wall_span(self, s: float) -> float:
        """Wall seconds from scenario time 0 to scenario second ``s`` (negative before 0)."""
        i = max(0, bisect.bisect_right(self.steps, (s, math.inf)) - 1)
        at, k = self.steps[i]
        return self._walls[i] + (s - at) / k

    def scenario_at(self, span: float) -> float:
        """The scenario second ``span`` wall seconds after scenario time 0 (inverse of :meth:`wall_span`)."""
        i = max(0, bisect.bisect_right(self._walls, span) - 1)
        at, k = self.steps[i]
        return at + (span - self._walls[i]) * k

    def as_json(self) -> list[list[float]]:
        return [[at, k] for at, k in self.steps]

    @classmethod
    def from_json(cls, value: list[list[float]]) -> "TimeScale":
        return cls(tuple((float(at), float(k)) for at, k in value))
