"""A bounded uniform sample of a stream of values, for the service's overhead and lateness figures."""

from __future__ import annotations

import random

from repaychaos.core.stats import sample_quantiles

__all__ = ["Reservoir"]


class Reservoir(list):
    """A bounded uniform sample of a stream of values (reservoir sampling), for overheads."""

    def __init__(self, size: int = 20_000):
        super().__init__()
        self.size = size
        self.seen = 0
        self._rng = random.Random(0)  # its own stream: sampling must not shift the pipeline's draws

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self) < self.size:
            self.append(value)
        else:
            j = self._rng.randrange(self.seen)
            if j < self.size:
                self[j] = value

    def summary(self) -> dict[str, float | int | None]:
        """How many values were seen, and the sample's mean and quantiles (None when empty)."""
        if not self:
            return {"n": self.seen, "mean": None, "p50": None, "p90": None, "p99": None, "max": None}
        p50, p90, p99 = (float(x) for x in sample_quantiles(self, (0.5, 0.9, 0.99)))
        return {"n": self.seen, "mean": sum(self) / len(self), "p50": p50, "p90": p90, "p99": p99, "max": max(self)}
