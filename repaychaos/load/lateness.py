"""How late requests left against their instants: a small histogram that merges across workers.

Each Locust worker keeps one per kind of request (``repay``, ``retry``, ``read``) and
sends it with its end-of-run marker; the runner adds them up. Buckets are logarithmic
(2 % wide above 0.1 ms, everything earlier in bucket 0), kept sparse, so the record stays
a few hundred numbers at any rate. Bins and quantiles are those of the metrics' histograms
(:func:`repaychaos.core.histogram.bin_of`, :func:`~repaychaos.core.histogram.quantiles_from_counts`)
with this floor and width: a quantile is within one bucket (2 %) of the sample's.
"""

from __future__ import annotations

from typing import Iterable, Mapping

from repaychaos.core.histogram import bin_of, dense_rows, quantiles_from_counts

__all__ = ["Lateness", "FLOOR", "WIDTH"]

#: Lateness (wall seconds) below which every request counts as on time (bucket 0).
FLOOR = 1e-4
#: Relative width of a bucket.
WIDTH = 0.02
_TOP = 10_000  # 1e-4 s * 1.02**10000: far past any run


class Lateness:
    """Counts of wall-second lateness per logarithmic bucket."""

    def __init__(self, counts: Mapping[int, int] | None = None):
        self.counts: dict[int, int] = dict(counts or {})
        self.n = sum(self.counts.values())
        self.max = 0.0
        self.total = 0.0  # the exact sum (early requests count negative), for the mean

    def add(self, late: float) -> None:
        """One request that left ``late`` wall seconds after its instant (negative: early)."""
        b = bin_of(late, FLOOR, 1 + WIDTH, _TOP)
        self.counts[b] = self.counts.get(b, 0) + 1
        self.n += 1
        self.total += late
        if late > self.max:
            self.max = late

    def merge(self, other: "Lateness") -> None:
        for b, c in other.counts.items():
            self.counts[b] = self.counts.get(b, 0) + c
        self.n += other.n
        self.total += other.total
        self.max = max(self.max, other.max)

    def quantile(self, q: float) -> float | None:
        """Quantile ``q`` (wall seconds; 0 for bucket 0), or None when empty."""
        if not self.n:
            return None
        rows, first = dense_rows([self.counts])
        return max(0.0, min(float(quantiles_from_counts(rows, q, first, FLOOR, 1 + WIDTH)[0]), self.max))

    def to_json(self) -> dict[str, object]:
        return {"counts": {str(b): c for b, c in sorted(self.counts.items())}, "max": self.max, "sum": self.total}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> "Lateness":
        raw = data.get("counts") or {}
        assert isinstance(raw, dict)
        out = cls({int(b): int(c) for b, c in raw.items()})
        mx = data.get("max", 0.0)
        out.max = float(mx) if isinstance(mx, (int, float)) else 0.0
        total = data.get("sum", 0.0)
        out.total = float(total) if isinstance(total, (int, float)) else 0.0
        return out

    @classmethod
    def merged(cls, parts: Iterable["Lateness"]) -> "Lateness":
        out = cls()
        for part in parts:
            out.merge(part)
        return out

    def mean(self) -> float | None:
        """The mean lateness (wall seconds; early requests count negative), or None when empty."""
        return self.total / self.n if self.n else None

    def summary(self, k: float = 1.0) -> dict[str, float | int | None]:
        """``n``, ``mean``, ``p50``, ``p99``, ``max`` times ``k`` (``k`` = K gives scenario seconds),
        rounded to 0.1 ms (quantiles count early requests as 0)."""

        def r(x: float | None) -> float | None:
            return None if x is None else round(x * k, 4)

        return {"n": self.n, "mean": r(self.mean()), "p50": r(self.quantile(0.5)), "p99": r(self.quantile(0.99)),
                "max": r(self.max if self.n else None)}
