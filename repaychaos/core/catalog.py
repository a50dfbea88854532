"""The names of every metric in result.json, defined once.

The scenario validator checks SLO metric paths against this list, the collectors in
:mod:`repaychaos.core.collector` produce exactly these keys, and reports label them from here.
"""

from __future__ import annotations

__all__ = [
    "CAUSES",
    "QUANTILES",
    "COUNT_METRICS",
    "RATIO_METRICS",
    "SCALAR_METRICS",
    "slo_metric_paths",
    "is_ratio_path",
    "PHASE_AFTER",
]

#: Causes a stale read can be attributed to (docs/reference/metrics.md), in report order.
CAUSES: tuple[str, ...] = ("queueing", "sync_delay", "maintenance", "interface_bug", "cutover", "cache")

#: Quantile keys of ``time_to_usable`` (plus ``mean``).
QUANTILES: tuple[tuple[str, float], ...] = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999))

COUNT_METRICS: tuple[str, ...] = (
    "repayments",
    "reads",
    "stale_reads",
    "never_usable",
    "lost_repayments",
    "duplicate_repayments",
    "wrong_usable_reads",
    "risk_holds",
    "support_contacts",
)

#: Ratios carry ``{"value", "ci95"}`` in result.json.
RATIO_METRICS: tuple[str, ...] = ("stale_read_ratio", "affected_ratio")

SCALAR_METRICS: tuple[str, ...] = ("support_contacts_per_10k",)

#: Phase suffix for "after every fault window has ended" (``stale_read_ratio@after``).
PHASE_AFTER = "after"


def slo_metric_paths() -> tuple[str, ...]:
    """Every metric path an SLO may name (without an ``@phase`` suffix)."""
    paths = list(COUNT_METRICS) + list(RATIO_METRICS) + list(SCALAR_METRICS)
    paths += ["time_to_usable." + q for q, _ in QUANTILES] + ["time_to_usable.mean", "time_to_usable.max"]
    paths += ["stale_reads_by_cause." + c for c in CAUSES]
    return tuple(paths)


def is_ratio_path(path: str) -> bool:
    """True where the metric is a ratio with a confidence interval (gates may be inconclusive)."""
    return path.split("@", 1)[0] in RATIO_METRICS
