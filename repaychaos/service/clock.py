"""The scenario clock of the reference service: wall time compressed by the time scale K.

Scenario time is ``(wall - t0) * K`` (docs/explanation/semantics.md), K constant or in steps
(:class:`~repaychaos.core.timescale.TimeScale`). Every stage sleeps
*until* a scenario instant rather than *for* a duration, so rounding in the event loop
never accumulates along a message's path.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from repaychaos.core.timescale import TimeScale

__all__ = ["ScenarioClock"]


#: Most the clock wakes early to make up for the event loop's typical lateness (wall seconds).
MAX_BIAS = 0.005
_GAIN = 0.05
#: Wall seconds before a precise instant at which :meth:`ScenarioClock.sleep_until_precise` stops
#: sleeping and starts yielding to the loop: the event loop's timers land up to about a millisecond
#: late (epoll and libuv count timeouts in whole milliseconds).
SPIN_WALL = 0.0012


@dataclass
class ScenarioClock:
    """Maps wall-clock epoch seconds to scenario seconds and back.

    ``k``: a constant K, or a :class:`~repaychaos.core.timescale.TimeScale` whose K steps with
    scenario time (the load runner's default when the arrival rate does,
    docs/reference/cli.md); the load users map instants through the same steps.

    The event loop wakes a sleeper late by a fraction of a millisecond or more, and K
    multiplies that into scenario time. The clock learns the typical lateness (an
    exponentially weighted mean, capped at :data:`MAX_BIAS`) and wakes that much earlier,
    so work lands on its intended instant on average instead of always after it.
    """

    t0: float
    k: float | TimeScale = 1.0
    bias: float = field(default=0.0, compare=False)
    scale: TimeScale = field(init=False, repr=False, compare=False)
    #: K when it is constant: the arithmetic stays one multiplication (now() is on every request's path)
    _constant: float | None = field(init=False, default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.scale = TimeScale.of(self.k)
        self._constant = self.scale.steps[0][1] if self.scale.is_constant else None

    @property
    def time_scale(self) -> float:
        """K now: scenario seconds per wall second at this instant (the time scale's step now)."""
        return self._constant if self._constant is not None else self.scale.k_at(self.now())

    @property
    def top(self) -> float:
        """The largest K of the run (what spans held in wall seconds are sized by)."""
        return self.scale.top

    def now(self) -> float:
        """Scenario seconds since t0 (negative before the run starts)."""
        return self.to_scenario(time.time())

    def to_scenario(self, epoch: float) -> float:
        if self._constant is not None:
            return (epoch - self.t0) * self._constant
        return self.scale.scenario_at(epoch - self.t0)

    def to_epoch(self, t: float) -> float:
        if self._constant is not None:
            return self.t0 + t / self._constant
        return self.t0 + self.scale.wall_span(t)

    async def sleep_until(self, t: float) -> None:
        """Wait until scenario instant ``t`` (returns at once if it has passed)."""
        target = self.to_epoch(t)
        delay = target - time.time() - self.bias
        if delay > 0:
            await asyncio.sleep(delay)
            late = time.time() - target
            self.bias = min(MAX_BIAS, max(0.0, self.bias + _GAIN * late))

    async def sleep_until_precise(self, t: float) -> None:
        """Wait until scenario instant ``t`` to within a few wall microseconds.

        The event loop's timers wake up to ~1 ms late, and the time scale multiplies that (25 ms
        at K = 25): on the stage that ends in a view write this lateness *is* time_to_usable's
        error. So sleep until :data:`SPIN_WALL` before ``t``, then yield to the loop
        (which keeps serving I/O with a zero timeout) until ``t``. Costs at most SPIN_WALL of
        loop time per call, so it is kept for the one sleep per message that decides a write.
        """
        target = self.to_epoch(t)
        delay = target - time.time() - SPIN_WALL
        if delay > 0:
            await asyncio.sleep(delay)
        while time.time() < target:
            await asyncio.sleep(0)
