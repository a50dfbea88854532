"""The names of every metric in result.json, defined once.

The scenario validator checks SLO metric paths against this list, the collectors in
:mod:`repaychaos.core.collector` produce exactly these keys, and reports label them from here.

The causes a stale read can be attributed to are ``queueing``, then every registered
fault type, then ``cache`` (:func:`causes`). The fault types are not known here: the fault
registry (:mod:`repaychaos.scenarios.faults`, a layer above) lists them, and its
``CAUSES`` is ``causes(FAULT_TYPES)``; collectors take the list as data.
"""

from __future__ import annotations

from typing import Iterable, Sequence

__all__ = [
    "QUEUEING",
    "CACHE",
    "causes",
    "ALWAYS_REPORTED_CAUSES",
    "QUANTILES",
    "COUNT_METRICS",
    "RATIO_METRICS",
    "SCALAR_METRICS",
    "PAY_AGAIN_METRICS",
    "HOLDER_METRICS",
    "ACCOUNT_METRICS",
    "slo_metric_paths",
    "is_ratio_path",
    "PHASE_AFTER",
]

#: The cause of a stale read no fault touched: the pipeline's own queues (docs/reference/metrics.md).
QUEUEING = "queueing"
#: The cause of a stale read the view had already made usable: a cached older status was served.
CACHE = "cache"


def causes(fault_types: Iterable[str]) -> tuple[str, ...]:
    """Every cause a stale read can be attributed to, in report order: ``queueing``, each
    fault type (in registry order), ``cache``."""
    return (QUEUEING, *fault_types, CACHE)


#: The causes every result.json lists in ``stale_reads_by_cause``, zeros included (the
#: first schema's). A cause registered later is listed when the scenario has a fault of
#: its type or a stale read was attributed to it, so a result whose scenario does not use
#: it is byte for byte what it was before that cause existed.
ALWAYS_REPORTED_CAUSES: frozenset[str] = frozenset(
    {QUEUEING, "sync_delay", "maintenance", "interface_bug", "cutover", CACHE})


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
    "double_repayments",
    "phantom_records",
    "holder_reads",
    "view_regressions",
)

#: Ratios carry ``{"value", "ci95"}`` in result.json.
RATIO_METRICS: tuple[str, ...] = ("stale_read_ratio", "affected_ratio")

SCALAR_METRICS: tuple[str, ...] = ("support_contacts_per_10k", "double_repayments_per_10k")

#: Metrics a result carries only when its scenario has users who pay again
#: (``workload.check.pay_again``); without it result.json is as it was before they existed.
PAY_AGAIN_METRICS: tuple[str, ...] = ("double_repayments", "double_repayments_per_10k")

#: Metrics a result carries only when its scenario writes phantom records (a fault with
#: ``holder_looks``): the accounts written on and their holders' reads, which are counted in
#: ``reads`` too; without such a fault result.json is as it was before they existed.
HOLDER_METRICS: tuple[str, ...] = ("phantom_records", "holder_reads")

#: Metrics a result carries only when its scenario puts repayments on accounts
#: (``workload.accounts``): the status writes that moved an account's view back over a
#: newer one; without accounts result.json is as it was before they existed.
ACCOUNT_METRICS: tuple[str, ...] = ("view_regressions",)

#: Phase suffix for "after every fault window has ended" (``stale_read_ratio@after``).
PHASE_AFTER = "after"


def slo_metric_paths(all_causes: Sequence[str]) -> tuple[str, ...]:
    """Every metric path an SLO may name (without an ``@phase`` suffix), given every cause."""
    paths = list(COUNT_METRICS) + list(RATIO_METRICS) + list(SCALAR_METRICS)
    paths += ["time_to_usable." + q for q, _ in QUANTILES] + ["time_to_usable.mean", "time_to_usable.max"]
    paths += ["stale_reads_by_cause." + c for c in all_causes]
    return tuple(paths)


def is_ratio_path(path: str) -> bool:
    """True where the metric is a ratio with a confidence interval (gates may be inconclusive)."""
    return path.split("@", 1)[0] in RATIO_METRICS
