"""A fixed log-spaced histogram and the one quantile estimator read off it.

Bins are 1 % wide from 1 ms to ~115 days, so memory is fixed whatever the number of
values, and a quantile is within 1 % of the exact order statistic. Within a bin the
quantile is interpolated (geometrically) by rank, which makes the estimate a continuous
function of the counts: the jackknife in :mod:`repaychaos.core.stats` relies on that.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from repaychaos.core.catalog import QUANTILES

__all__ = ["LogHistogram", "bin_of", "quantiles_from_counts", "dense_rows"]

LOW = 1e-3
GROWTH = 1.01
_LOG_GROWTH = math.log(GROWTH)
TOP = 3000  # 1e-3 * 1.01**3000 ~ 9.6e9 s, far past any run


def bin_of(value: float, low: float = LOW, growth: float = GROWTH, top: int = TOP) -> int:
    """The bin of ``value``: 0 below ``low`` (1 ms), else ``1 + floor(log_growth(value / low))``,
    at most ``top``. Other histograms of log-spaced bins (request lateness) pass their own
    ``low`` and ``growth``."""
    if value < low:
        return 0
    log_growth = _LOG_GROWTH if growth == GROWTH else math.log(growth)
    return min(1 + int(math.log(value / low) / log_growth), top)


def quantiles_from_counts(counts: np.ndarray, q: float, first_bin: int = 0, low: float = LOW,
                          growth: float = GROWTH) -> np.ndarray:
    """The ``q`` quantile of each row of ``counts`` (rows of bin counts starting at bin
    ``first_bin``, bins as :func:`bin_of` with the same ``low`` and ``growth``); NaN for an
    empty row. Bin 0 (under ``low``) reads as 0."""
    counts = np.atleast_2d(np.asarray(counts, dtype=float))
    cum = np.cumsum(counts, axis=1)
    n = cum[:, -1]
    rank = q * n
    index = (cum < rank[:, None]).sum(axis=1)  # first bin whose cumulative count reaches the rank
    index = np.minimum(index, counts.shape[1] - 1)
    rows = np.arange(counts.shape[0])
    below = np.where(index > 0, cum[rows, np.maximum(index - 1, 0)], 0.0)
    in_bin = counts[rows, index]
    frac = np.where(in_bin > 0, (rank - below) / np.where(in_bin > 0, in_bin, 1.0), 0.5)
    absolute = index + first_bin
    value = low * growth ** (absolute - 1 + np.clip(frac, 0.0, 1.0))
    value = np.where(absolute == 0, 0.0, value)
    return np.where(n > 0, value, np.nan)


class LogHistogram:
    """Counts in log-spaced bins (see the module docstring); the mean and max are exact."""

    LOW = LOW
    GROWTH = GROWTH
    __slots__ = ("counts", "n", "total", "max")

    def __init__(self) -> None:
        self.counts = [0] * (TOP + 1)
        self.n = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, value: float) -> None:
        self.add_binned(bin_of(value), value)

    def add_binned(self, index: int, value: float) -> None:
        """Add ``value`` whose :func:`bin_of` is already known (the collector computes it once)."""
        self.n += 1
        self.total += value
        if value > self.max:
            self.max = value
        self.counts[index] += 1

    def merge(self, other: "LogHistogram") -> None:
        self.n += other.n
        self.total += other.total
        self.max = max(self.max, other.max)
        counts = self.counts
        for i, c in enumerate(other.counts):
            if c:
                counts[i] += c

    def quantile(self, q: float) -> float | None:
        if self.n == 0:
            return None
        return min(float(quantiles_from_counts(np.asarray(self.counts), q)[0]), self.max)

    def summary(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {"mean": self.total / self.n if self.n else None}
        for key, q in QUANTILES:
            out[key] = self.quantile(q)
        out["max"] = self.max if self.n else None
        return out


def dense_rows(sparse: Sequence[Mapping[int, int]]) -> tuple[np.ndarray, int]:
    """Sparse per-batch bin counts as a dense matrix over the occupied bin range, and its first bin."""
    occupied = [i for h in sparse for i in h]
    if not occupied:
        return np.zeros((len(sparse), 1)), 0
    first, last = min(occupied), max(occupied)
    out = np.zeros((len(sparse), last - first + 1))
    for row, h in enumerate(sparse):
        for i, c in h.items():
            out[row, i - first] = c
    return out, first
