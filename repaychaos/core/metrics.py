"""Every metric of SPEC §4, defined once, for the model and the load test alike.

Both sources describe each repayment the same way — a :class:`Repayment` (when it was
acked, whether a risk hold keeps its truth unusable, when the view first showed usable,
which faults touched its path) plus the :data:`Read` s its user made — and feed them to
a :class:`MetricsCollector`. Collectors stream: counters, a fixed log-spaced histogram
for quantiles, the visibility curve on a fixed grid and fixed-width time bins, so memory
does not grow with the number of repayments. One collector per replication; the final
numbers (with confidence intervals) come from :func:`finalize`.

Attribution of a stale read (SPEC §4): ``cache`` when the view itself was already usable
at the read but a cached older status was served; otherwise, among the faults that
touched the repayment's path at or before the read, the one that added the most delay;
with none, ``queueing``. Ties go to the earlier entry in :data:`~repaychaos.core.catalog.CAUSES`.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, Iterable, NamedTuple, Sequence

from repaychaos.core.catalog import CAUSES, PHASE_AFTER, QUANTILES

__all__ = [
    "Touch",
    "Read",
    "Repayment",
    "MetricsCollector",
    "CollectorState",
    "VISIBILITY_GRID",
    "SERIES_BINS",
    "finalize",
    "wilson",
    "student_ci",
    "LogHistogram",
]

#: Seconds since the ack at which the staleness curve is evaluated (exactly, not binned).
VISIBILITY_GRID: tuple[float, ...] = (
    0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0,
    1800.0, 3600.0, 7200.0,
)

#: Number of fixed-width time bins over ``[0, duration)`` for the time series.
SERIES_BINS = 240

_CAUSE_RANK = {c: i for i, c in enumerate(CAUSES)}


class Touch(NamedTuple):
    """A fault on a repayment's path: its cause, when it touched it, how much delay it added."""

    cause: str
    at: float
    added: float


class Read(NamedTuple):
    """One status read: when, whether it showed ``usable``, and the age-of-data instant.

    ``as_of`` is when the status shown was taken from the view (``t`` unless a cached
    status was served).
    """

    t: float
    shown_usable: bool
    as_of: float


@dataclass(slots=True)
class Repayment:
    """What happened to one acked repayment, as either source observed it.

    ``view_usable_at`` is the first instant the (uncached) view showed ``usable``
    (``math.inf`` if it never did). ``view_changes`` is only needed when the view can
    flip back (a corrupt write after a reconcile); when given it is the full list of
    ``(t, usable)`` changes after the ack, the view being unusable before the first.
    """

    acked_at: float
    held: bool = False
    view_usable_at: float = math.inf
    touches: Sequence[Touch] = ()
    view_changes: Sequence[tuple[float, bool]] | None = None
    in_ledger: bool = True

    def view_usable(self, t: float) -> bool:
        """Did the uncached view show usable at instant ``t``?"""
        if self.view_changes is None:
            return t >= self.view_usable_at
        state = False
        for at, usable in self.view_changes:
            if at > t:
                break
            state = usable
        return state


def cause_of(rep: Repayment, read: Read) -> str:
    """The one cause a stale read is attributed to (see the module docstring)."""
    if rep.view_usable(read.t):
        return "cache"
    best = None
    for touch in rep.touches:
        if touch.at <= read.t and (
            best is None
            or touch.added > best.added
            or (touch.added == best.added and _CAUSE_RANK[touch.cause] < _CAUSE_RANK[best.cause])
        ):
            best = touch
    return "queueing" if best is None else best.cause


class LogHistogram:
    """Log-spaced bins (1 % wide) from 1 ms to ~115 days: quantiles within 1 % relative error.

    Values below 1 ms land in an underflow bin reported as 0; the mean and max are exact.
    """

    LOW = 1e-3
    GROWTH = 1.01
    __slots__ = ("counts", "n", "total", "max")

    _LOG_GROWTH = math.log(GROWTH)
    _TOP = 3000  # 1e-3 * 1.01**3000 ~ 9.6e9 s, far past any run

    def __init__(self) -> None:
        self.counts = [0] * (self._TOP + 1)
        self.n = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, value: float) -> None:
        self.n += 1
        self.total += value
        if value > self.max:
            self.max = value
        if value < self.LOW:
            self.counts[0] += 1
        else:
            index = 1 + int(math.log(value / self.LOW) / self._LOG_GROWTH)
            self.counts[min(index, self._TOP)] += 1

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
        rank = q * self.n
        seen = 0
        for i, c in enumerate(self.counts):
            seen += c
            if seen >= rank and c:
                if i == 0:
                    return 0.0
                low = self.LOW * self.GROWTH ** (i - 1)
                return min(math.sqrt(low * low * self.GROWTH), self.max)
        return self.max

    def summary(self) -> dict[str, float | None]:
        out: dict[str, float | None] = {"mean": self.total / self.n if self.n else None}
        for key, q in QUANTILES:
            out[key] = self.quantile(q)
        out["max"] = self.max if self.n else None
        return out


@dataclass
class _Counts:
    """The additive core of every metric, for one population (all, or one phase)."""

    repayments: int = 0
    reads: int = 0
    stale_reads: int = 0
    affected: int = 0
    never_usable: int = 0
    risk_holds: int = 0
    support_contacts: int = 0
    wrong_usable_reads: int = 0
    lost_repayments: int = 0
    by_cause: dict[str, int] = field(default_factory=lambda: {c: 0 for c in CAUSES})
    # visibility: repayments with usable truth, and how many were still stale at each grid t
    truth_usable: int = 0
    still_stale: list[int] = field(default_factory=lambda: [0] * len(VISIBILITY_GRID))
    # per-population time to usable, so phase-scoped quantile SLOs (time_to_usable.p99@after) work
    ttu: LogHistogram = field(default_factory=lambda: LogHistogram())

    def merge(self, other: "_Counts") -> None:
        for name in ("repayments", "reads", "stale_reads", "affected", "never_usable", "risk_holds",
                     "support_contacts", "wrong_usable_reads", "lost_repayments", "truth_usable"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for c in CAUSES:
            self.by_cause[c] += other.by_cause[c]
        self.still_stale = [a + b for a, b in zip(self.still_stale, other.still_stale)]
        self.ttu.merge(other.ttu)


@dataclass
class CollectorState:
    """Everything one replication measured; picklable and mergeable, bounded in size."""

    duration: float
    warmup: float
    bin_width: float
    all: _Counts = field(default_factory=_Counts)
    phases: dict[str, _Counts] = field(default_factory=dict)
    ttu: LogHistogram = field(default_factory=LogHistogram)
    extra: dict[str, int] = field(default_factory=lambda: {"duplicate_repayments": 0})
    # series over [0, duration) in SERIES_BINS bins
    s_acks: list[int] = field(default_factory=lambda: [0] * SERIES_BINS)
    s_reads: list[int] = field(default_factory=lambda: [0] * SERIES_BINS)
    s_stale: list[int] = field(default_factory=lambda: [0] * SERIES_BINS)
    s_stale_by_cause: dict[str, list[int]] = field(default_factory=lambda: {c: [0] * SERIES_BINS for c in CAUSES})
    s_backlog_sum: list[float] = field(default_factory=lambda: [0.0] * SERIES_BINS)
    s_backlog_n: list[int] = field(default_factory=lambda: [0] * SERIES_BINS)
    s_backlog_max: list[float] = field(default_factory=lambda: [0.0] * SERIES_BINS)


class MetricsCollector:
    """Streams repayments and their reads into the SPEC §4 metrics for one replication.

    ``windows`` maps a phase name (a fault type or fault name) to its ``[start, end)``
    windows; a repayment acked inside one also counts in that phase, and one acked after
    every window has ended counts in the ``after`` phase.
    """

    def __init__(self, duration: float, warmup: float, max_checks: int,
                 windows: dict[str, Sequence[tuple[float, float]]] | None = None):
        self.max_checks = max_checks
        self.state = CollectorState(duration=duration, warmup=warmup, bin_width=duration / SERIES_BINS)
        self._windows = {name: tuple(ws) for name, ws in (windows or {}).items()}
        ends = [end for ws in self._windows.values() for _, end in ws]
        self._all_over = max(ends) if ends else None
        for name in self._windows:
            self.state.phases[name] = _Counts()
        if self._all_over is not None:
            self.state.phases[PHASE_AFTER] = _Counts()

    @classmethod
    def for_scenario(cls, scenario: Any, horizon: float | None = None) -> "MetricsCollector":
        """A collector with one phase per fault type and fault name of ``scenario``."""
        horizon = scenario.duration if horizon is None else horizon
        windows: dict[str, list[tuple[float, float]]] = {}
        # SLOs may also say `@type#index` (Scenario.phase_names); only then is that phase kept
        wanted = {rule.phase for rule in getattr(scenario, "slo", ()) if rule.phase}
        for index, fault in enumerate(scenario.faults):
            ws = fault.windows(horizon)
            windows.setdefault(fault.type, []).extend(ws)
            label = fault.name or f"{fault.type}#{index}"
            if label != fault.type and (fault.name or label in wanted):
                windows.setdefault(label, []).extend(ws)
        return cls(scenario.duration, scenario.warmup, scenario.workload.check.max_checks, windows)

    def _bin(self, t: float) -> int:
        return int(t / self.state.bin_width) if 0 <= t < self.state.duration else -1

    def count(self, name: str, n: int = 1) -> None:
        """Add to a whole-run counter the repayment records cannot show (``duplicate_repayments``)."""
        self.state.extra[name] = self.state.extra.get(name, 0) + n

    def observe_backlog(self, t: float, length: float) -> None:
        """A sample of the sync backlog (messages waiting or in service) at instant ``t``."""
        b = self._bin(t)
        if b >= 0:
            st = self.state
            st.s_backlog_sum[b] += length
            st.s_backlog_n[b] += 1
            if length > st.s_backlog_max[b]:
                st.s_backlog_max[b] = length

    def observe(self, rep: Repayment, reads: Iterable[Read]) -> None:
        """One acked repayment and every read its user made after the ack."""
        t_ack = rep.acked_at
        st = self.state
        if not (st.warmup <= t_ack < st.duration):
            return
        groups = [st.all]
        if self._windows:
            for name, ws in self._windows.items():
                for start, end in ws:
                    if start <= t_ack < end:
                        groups.append(st.phases[name])
                        break
            if self._all_over is not None and t_ack >= self._all_over:
                groups.append(st.phases[PHASE_AFTER])
        b = self._bin(t_ack)
        st.s_acks[b] += 1

        held = rep.held
        usable_at = rep.view_usable_at
        n_reads = n_stale = n_wrong = 0
        stale_causes: list[str] = []
        for read in reads:
            n_reads += 1
            rb = self._bin(read.t)
            if rb >= 0:
                st.s_reads[rb] += 1
            if read.shown_usable:
                if held:
                    n_wrong += 1
            elif not held:
                n_stale += 1
                cause = cause_of(rep, read)
                stale_causes.append(cause)
                if rb >= 0:
                    st.s_stale[rb] += 1
                    st.s_stale_by_cause[cause][rb] += 1
        never = held or usable_at == math.inf
        delay = usable_at - t_ack
        if not never:
            st.ttu.add(delay if delay > 0 else 0.0)
        # SPEC: a user who used all max_checks and saw only stale reads contacts support.
        support = n_stale == n_reads >= self.max_checks
        for g in groups:
            g.repayments += 1
            g.reads += n_reads
            g.stale_reads += n_stale
            g.wrong_usable_reads += n_wrong
            if n_stale:
                g.affected += 1
                for cause in stale_causes:
                    g.by_cause[cause] += 1
            if never:
                g.never_usable += 1
            if not never and g is not st.all:
                g.ttu.add(delay if delay > 0 else 0.0)
            if held:
                g.risk_holds += 1
            else:
                g.truth_usable += 1
                if delay > 0:
                    # still stale at every grid t < delay
                    k = bisect_right(VISIBILITY_GRID, delay) if delay != math.inf else len(VISIBILITY_GRID)
                    if k and VISIBILITY_GRID[k - 1] == delay:
                        k -= 1
                    ss = g.still_stale
                    for i in range(k):
                        ss[i] += 1
            if support:
                g.support_contacts += 1
            if not rep.in_ledger:
                g.lost_repayments += 1


# --------------------------------------------------------------------------- statistics


def wilson(successes: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion (95 % by default)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def student_ci(values: Sequence[float], centre: float) -> tuple[float, float]:
    """``centre`` ± the Student-t 95 % half-width of the mean of ``values`` (replications)."""
    from scipy.stats import t as student_t

    n = len(values)
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    half = float(student_t.ppf(0.975, n - 1)) * math.sqrt(var / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def _ratio(num: Sequence[int], den: Sequence[int]) -> dict[str, Any]:
    """Pooled ratio with its 95 % CI: across replications when there are 2+, else Wilson."""
    total_num, total_den = sum(num), sum(den)
    value = total_num / total_den if total_den else 0.0
    per_rep = [a / b for a, b in zip(num, den) if b]
    if len(per_rep) >= 2:
        low, high = student_ci(per_rep, value)
    else:
        low, high = wilson(total_num, total_den)
    return {"value": _r(value), "ci95": [_r(low), _r(high)]}


def _r(x: float | None, digits: int = 9) -> float | None:
    """Round for a stable, readable result.json (same inputs -> same bytes)."""
    if x is None:
        return None
    if x == math.inf:
        return None
    return float(f"{x:.{digits}g}")


def _population(groups: list[_Counts]) -> dict[str, Any]:
    pooled = _Counts()
    for g in groups:
        pooled.merge(g)
    n = pooled.repayments
    vis_den = [g.truth_usable for g in groups]
    p_stale = [(_r(s / pooled.truth_usable) if pooled.truth_usable else 0.0) for s in pooled.still_stale]
    band_low, band_high = [], []
    for i in range(len(VISIBILITY_GRID)):
        ci = _ratio([g.still_stale[i] for g in groups], vis_den)["ci95"]
        band_low.append(ci[0])
        band_high.append(ci[1])
    return {
        "repayments": n,
        "reads": pooled.reads,
        "stale_reads": pooled.stale_reads,
        "stale_read_ratio": _ratio([g.stale_reads for g in groups], [g.reads for g in groups]),
        "affected_ratio": _ratio([g.affected for g in groups], [g.repayments for g in groups]),
        "never_usable": pooled.never_usable,
        "risk_holds": pooled.risk_holds,
        "visibility": {"t": list(VISIBILITY_GRID), "p_stale": p_stale, "ci95_low": band_low, "ci95_high": band_high},
        "support_contacts": pooled.support_contacts,
        "support_contacts_per_10k": _r(10_000 * pooled.support_contacts / n) if n else 0.0,
        "lost_repayments": pooled.lost_repayments,
        "wrong_usable_reads": pooled.wrong_usable_reads,
        "stale_reads_by_cause": dict(pooled.by_cause),
        "time_to_usable": {k: _r(v) for k, v in pooled.ttu.summary().items()},
    }


def finalize(states: Sequence[CollectorState]) -> dict[str, Any]:
    """The ``metrics``, ``phases`` and ``series`` sections of result.json from per-replication states.

    Counts are pooled over replications; ratios carry a 95 % CI across replications
    (Student t) when there are two or more, a Wilson interval otherwise.
    """
    if not states:
        raise ValueError("finalize needs at least one collector state")
    first = states[0]
    metrics = _population([s.all for s in states])
    ttu = LogHistogram()
    for s in states:
        ttu.merge(s.ttu)
    metrics["time_to_usable"] = {k: _r(v) for k, v in ttu.summary().items()}
    metrics["duplicate_repayments"] = sum(s.extra.get("duplicate_repayments", 0) for s in states)
    for s in states:
        for key, value in s.extra.items():
            if key != "duplicate_repayments":
                metrics[key] = metrics.get(key, 0) + value
    ordered = {k: metrics[k] for k in (
        "repayments", "reads", "stale_reads", "stale_read_ratio", "affected_ratio", "time_to_usable",
        "never_usable", "visibility", "support_contacts_per_10k", "lost_repayments", "duplicate_repayments",
        "wrong_usable_reads", "stale_reads_by_cause")}
    ordered.update({k: v for k, v in metrics.items() if k not in ordered})

    phases = {name: _population([s.phases[name] for s in states]) for name in first.phases}

    def total(attr: str) -> list[int]:
        return [sum(getattr(s, attr)[i] for s in states) for i in range(SERIES_BINS)]

    backlog_n = total("s_backlog_n")
    backlog_sum = [sum(s.s_backlog_sum[i] for s in states) for i in range(SERIES_BINS)]
    series = {
        "bin_width": _r(first.bin_width),
        "t": [_r(i * first.bin_width) for i in range(SERIES_BINS)],
        "acks": total("s_acks"),
        "reads": total("s_reads"),
        "stale_reads": total("s_stale"),
        "stale_reads_by_cause": {c: [sum(s.s_stale_by_cause[c][i] for s in states) for i in range(SERIES_BINS)] for c in CAUSES},
        "backlog_mean": [_r(backlog_sum[i] / backlog_n[i]) if backlog_n[i] else None for i in range(SERIES_BINS)],
        "backlog_max": [max(s.s_backlog_max[i] for s in states) for i in range(SERIES_BINS)],
        "replications": len(states),
    }
    return {"metrics": ordered, "phases": phases, "series": series}


def recovery_times(series: dict[str, Any], windows: Sequence[tuple[str, float, float]], baseline: float,
                   tolerance: float = 0.5) -> list[dict[str, Any]]:
    """For each fault window, seconds from its end until the stale share of reads per bin is
    back within ``(1 + tolerance) × baseline`` (plus one read in a bin of noise), or None."""
    out = []
    width = series["bin_width"]
    reads, stale = series["reads"], series["stale_reads"]
    for label, start, end in windows:
        recovered = None
        first_bin = int(math.ceil(end / width)) if end != math.inf else len(reads)
        for i in range(first_bin, len(reads)):
            if reads[i] == 0:
                continue
            if stale[i] <= baseline * (1 + tolerance) * reads[i] + 1:
                recovered = _r(max(0.0, i * width - end))
                break
        out.append({"fault": label, "start": _r(start), "end": _r(end) if end != math.inf else None,
                    "recovered_after": recovered})
    return out
