"""The shapes of the records that cross layer boundaries: result.json and its parts (docs/reference/result-file.md).

Records travel as plain JSON-ready dicts (they are written, read back and rendered); these
``TypedDict``s give them names and keys, so a type checker sees a misspelt key or a
metric read as the wrong kind. ``total=False`` marks the keys a record may lack (phases
without repayments, results written by older versions).
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

__all__ = ["Verdict", "Source", "Interval", "TimeToUsable", "Visibility", "Metrics", "SloRow", "Window",
           "Series", "ResultRecord", "ScenarioData"]

Verdict = Literal["pass", "fail", "inconclusive"]
Source = Literal["sim", "load", "target"]
#: A scenario as normalised JSON data (the typed object is :class:`repaychaos.scenarios.Scenario`).
ScenarioData = dict[str, Any]


class _IntervalBase(TypedDict):
    value: float | None
    ci95: list[float] | None


class Interval(_IntervalBase, total=False):
    """A ratio with its 95% confidence interval."""

    ci_method: str


class TimeToUsable(TypedDict, total=False):
    """Quantiles of the time from ack to usable, in seconds (None where nothing became usable)."""

    mean: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    p999: float | None
    max: float | None
    ci95: dict[str, list[float] | None]


class Visibility(TypedDict):
    """P(view still stale at ack + t, truth usable) on a grid of t (the staleness curve)."""

    t: list[float]
    p_stale: list[float]


class Metrics(TypedDict, total=False):
    """docs/reference/metrics.md's metrics, identical for every source."""

    repayments: int
    reads: int
    stale_reads: int
    stale_read_ratio: Interval
    affected_ratio: Interval
    time_to_usable: TimeToUsable
    never_usable: int
    risk_holds: int
    visibility: Visibility
    support_contacts: int
    support_contacts_per_10k: float
    #: only with ``workload.check.pay_again`` (users who pay a second time)
    double_repayments: int
    double_repayments_per_10k: float
    #: only with a ``phantom_record`` fault: accounts written on, and their holders' reads
    phantom_records: int
    holder_reads: int
    #: only with ``workload.accounts``: status writes that moved an account's view back
    view_regressions: int
    lost_repayments: int
    duplicate_repayments: int
    wrong_usable_reads: int
    stale_reads_by_cause: dict[str, int]


class _SloRowBase(TypedDict):
    metric: str
    rule: str
    observed: float | None
    passed: bool
    verdict: Verdict


class SloRow(_SloRowBase, total=False):
    """One SLO's verdict; ``ci95`` where the metric has an interval; ``not_a_measurement``: why a
    load run that could not keep up judges no SLO (its verdict is then ``inconclusive``)."""

    ci95: list[float]
    not_a_measurement: str


class Window(TypedDict):
    """A fault window in scenario seconds (``end`` None: open until the end of the run)."""

    fault: str
    start: float
    end: float | None


Series = dict[str, Any]


class _ResultBase(TypedDict):
    schema: str
    source: Source
    scenario: ScenarioData
    seed: int
    metrics: Metrics
    slo: list[SloRow]
    passed: bool


class ResultRecord(_ResultBase, total=False):
    """result.json: docs/reference/result-file.md's keys, plus the documented extensions (docs/reference/result-file.md)."""

    scenario_as_written: str | None
    replications: int
    ci_method: str
    verdict: Verdict
    phases: dict[str, Metrics]
    windows: list[Window]
    recovery: dict[str, Any]
    series: Series
    batches: dict[str, Any]
    run: dict[str, Any]
