"""The scenario clock of the reference service: wall time compressed by ``time_scale``.

Scenario time is ``(wall - t0) * time_scale`` (docs/SEMANTICS.md). Every stage sleeps
*until* a scenario instant rather than *for* a duration, so rounding in the event loop
never accumulates along a message's path.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

__all__ = ["ScenarioClock"]


@dataclass(frozen=True)
class ScenarioClock:
    """Maps wall-clock epoch seconds to scenario seconds and back."""

    t0: float
    time_scale: float = 1.0

    def now(self) -> float:
        """Scenario seconds since t0 (negative before the run starts)."""
        return (time.time() - self.t0) * self.time_scale

    def to_scenario(self, epoch: float) -> float:
        return (epoch - self.t0) * self.time_scale

    def to_epoch(self, t: float) -> float:
        return self.t0 + t / self.time_scale

    async def sleep_until(self, t: float) -> None:
        """Wait until scenario instant ``t`` (returns at once if it has passed)."""
        delay = (t - self.now()) / self.time_scale
        if delay > 0:
            await asyncio.sleep(delay)
