"""Every metric of docs/reference/metrics.md, collected once, for the model and the load test alike.

Both sources feed :class:`~repaychaos.core.records.Repayment` s and their
:class:`~repaychaos.core.records.Read` s to a :class:`MetricsCollector`. Collectors
stream: counters, a fixed log-spaced histogram for quantiles, the visibility curve on a
fixed grid and fixed-width time bins. For the intervals, each population's additive
counts are also kept per **batch of ack time** (:data:`BATCHES` per replication, plus a
sparse time-to-usable histogram per batch), so memory is O(batches × bins) whatever the
number of repayments. One collector per replication; the final numbers and their
intervals (:mod:`repaychaos.core.stats`) come from :func:`finalize`.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from repaychaos.core.catalog import ALWAYS_REPORTED_CAUSES, CACHE, PHASE_AFTER, QUANTILES
from repaychaos.core.histogram import _LOG_GROWTH, LOW as _LOW, TOP as _TOP, LogHistogram
from repaychaos.core.records import Read, Repayment, cause_of, cause_rank
from repaychaos.core.stats import (
    Estimate,
    as_json,
    mean_estimate,
    proportion_estimate,
    quantile_estimates,
)

__all__ = [
    "MetricsCollector",
    "CollectorState",
    "VISIBILITY_GRID",
    "SERIES_BINS",
    "BATCHES",
    "CI_METHOD",
    "finalize",
]

#: Seconds since the ack at which the staleness curve is evaluated (exactly, not binned).
VISIBILITY_GRID: tuple[float, ...] = (
    0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0,
    1800.0, 3600.0, 7200.0,
)

#: Number of fixed-width time bins over ``[0, duration)`` for the time series.
SERIES_BINS = 240

#: Batches of ack time per replication and population (Law & Kelton suggest 10–30 batches
#: of a length well past the correlation time; more batches give more d.o.f. but shorter,
#: more correlated batches).
BATCHES = 20

#: What result.json says about how its intervals were made (``ci_method``, docs/reference/result-file.md).
CI_METHOD = "batch-means"

_GRID = len(VISIBILITY_GRID)
_log = math.log


@dataclass
class _Counts:
    """The additive core of every metric for one population (all, or one phase), per batch.

    ``by_cause`` starts with every cause at 0, in report order (:meth:`zero`).
    """

    by_cause: dict[str, int]
    never_usable: int = 0
    risk_holds: int = 0
    wrong_usable_reads: int = 0
    lost_repayments: int = 0
    ttu: LogHistogram = field(default_factory=LogHistogram)
    # per batch of ack time
    b_repayments: list[int] = field(default_factory=lambda: [0] * BATCHES)
    b_reads: list[int] = field(default_factory=lambda: [0] * BATCHES)
    b_stale: list[int] = field(default_factory=lambda: [0] * BATCHES)
    b_affected: list[int] = field(default_factory=lambda: [0] * BATCHES)
    b_support: list[int] = field(default_factory=lambda: [0] * BATCHES)
    # repayments whose user paid a second time (docs/reference/metrics.md, double repayments)
    b_double: list[int] = field(default_factory=lambda: [0] * BATCHES)
    # repayments with usable truth, and per batch how many were still stale at exactly the
    # first k grid points (k = 0.._GRID, batch-major): one count per repayment on the hot path
    # instead of k; :meth:`still_stale` sums the tail
    b_truth_usable: list[int] = field(default_factory=lambda: [0] * BATCHES)
    b_stale_k: list[int] = field(default_factory=lambda: [0] * (BATCHES * (_GRID + 1)))
    # time to usable: sum per batch, and a sparse histogram (bin -> count) per batch
    b_ttu_sum: list[float] = field(default_factory=lambda: [0.0] * BATCHES)
    b_ttu: list[dict[int, int]] = field(default_factory=lambda: [{} for _ in range(BATCHES)])
    # accounts a phantom record was written on, and their holders' reads (also in b_reads)
    phantom_records: int = 0
    holder_reads: int = 0
    # status writes that moved an account's view back over a newer one, by the writer's ack
    view_regressions: int = 0

    @classmethod
    def zero(cls, causes: Sequence[str]) -> "_Counts":
        return cls(by_cause=dict.fromkeys(causes, 0))

    @property
    def repayments(self) -> int:
        return sum(self.b_repayments)

    @property
    def reads(self) -> int:
        return sum(self.b_reads)

    @property
    def stale_reads(self) -> int:
        return sum(self.b_stale)

    @property
    def support_contacts(self) -> int:
        return sum(self.b_support)

    @property
    def truth_usable(self) -> int:
        return sum(self.b_truth_usable)

    def still_stale(self, i: int) -> list[int]:
        """Per batch: repayments still stale at grid point ``i`` (those stale at more than i points)."""
        width = _GRID + 1
        k = self.b_stale_k
        return [sum(k[b * width + i + 1:(b + 1) * width]) for b in range(BATCHES)]


@dataclass
class CollectorState:
    """Everything one replication measured; picklable and mergeable, bounded in size.

    ``causes`` is every cause a stale read can be attributed to, in report order
    (:func:`repaychaos.core.catalog.causes`): the keys of every ``by_cause``.
    """

    duration: float
    warmup: float
    bin_width: float
    causes: tuple[str, ...]
    #: the scenario has users who pay again: the double-repayment metrics are written
    pay_again: bool = False
    #: the scenario writes phantom records: the holder metrics are written
    holders: bool = False
    #: the scenario puts repayments on accounts: the regression metric is written
    accounts: bool = False
    all: _Counts = field(init=False)
    phases: dict[str, _Counts] = field(default_factory=dict)
    extra: dict[str, int] = field(default_factory=lambda: {"duplicate_repayments": 0})
    # series over [0, duration) in SERIES_BINS bins
    s_acks: list[int] = field(default_factory=lambda: [0] * SERIES_BINS)
    s_reads: list[int] = field(default_factory=lambda: [0] * SERIES_BINS)
    s_stale: list[int] = field(default_factory=lambda: [0] * SERIES_BINS)
    s_stale_by_cause: dict[str, list[int]] = field(init=False)
    s_backlog_sum: list[float] = field(default_factory=lambda: [0.0] * SERIES_BINS)
    s_backlog_n: list[int] = field(default_factory=lambda: [0] * SERIES_BINS)
    s_backlog_max: list[float] = field(default_factory=lambda: [0.0] * SERIES_BINS)

    def __post_init__(self) -> None:
        self.all = _Counts.zero(self.causes)
        self.s_stale_by_cause = {c: [0] * SERIES_BINS for c in self.causes}

    @property
    def ttu(self) -> LogHistogram:
        """Time to usable of the whole population."""
        return self.all.ttu


class _Batching:
    """Maps an ack instant inside a population's span (the union of its windows within
    ``[warmup, duration)``) to one of :data:`BATCHES` equal shares of that span."""

    def __init__(self, pieces: Sequence[tuple[float, float]]):
        merged: list[list[float]] = []
        for start, end in sorted(p for p in pieces if p[1] > p[0]):
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        self.starts = [s for s, _ in merged]
        self.pieces = merged
        self.before: list[float] = []
        acc = 0.0
        for s, e in merged:
            self.before.append(acc)
            acc += e - s
        self.length = acc

    def index(self, t: float) -> int:
        k = bisect_right(self.starts, t) - 1
        if k < 0 or self.length <= 0:
            return 0
        pos = self.before[k] + min(t, self.pieces[k][1]) - self.pieces[k][0]
        return min(BATCHES - 1, int(pos / self.length * BATCHES))

    def indices(self, t: np.ndarray) -> np.ndarray:
        """:meth:`index` of every element (the same operations in the same order, so the same ints)."""
        if self.length <= 0 or not self.starts:
            return np.zeros(len(t), dtype=np.int64)
        starts = np.asarray(self.starts)
        k = np.searchsorted(starts, t, side="right") - 1
        out = np.zeros(len(t), dtype=np.int64)
        ok = k >= 0
        kk = k[ok]
        ends = np.asarray([p[1] for p in self.pieces])[kk]
        before = np.asarray(self.before)[kk]
        pos = before + np.minimum(t[ok], ends) - starts[kk]
        out[ok] = np.minimum(BATCHES - 1, (pos / self.length * BATCHES).astype(np.int64))
        return out


class MetricsCollector:
    """Streams repayments and their reads into the docs/reference/metrics.md metrics for one replication.

    ``causes`` is every cause a stale read can be attributed to, in report order (the
    scenario format's ``CAUSES``). ``windows`` maps a phase name (a fault type or fault
    name) to its ``[start, end)`` windows; a repayment acked inside one also counts in that
    phase, and one acked after every window has ended counts in the ``after`` phase.
    """

    def __init__(self, duration: float, warmup: float, max_checks: int,
                 windows: Mapping[str, Sequence[tuple[float, float]]] | None = None, *, causes: Sequence[str],
                 pay_again: bool = False, holders: bool = False, accounts: bool = False):
        self.max_checks = max_checks
        self.state = CollectorState(duration=duration, warmup=warmup, bin_width=duration / SERIES_BINS,
                                    causes=tuple(causes), pay_again=pay_again, holders=holders,
                                    accounts=accounts)
        self._rank = cause_rank(causes)
        self._windows = {name: tuple(ws) for name, ws in (windows or {}).items()}
        ends = [end for ws in self._windows.values() for _, end in ws]
        self._all_over = max(ends) if ends else None
        self._batch_scale = BATCHES / (duration - warmup) if duration > warmup else 0.0
        self._batching: dict[str, _Batching] = {}
        for name, ws in self._windows.items():
            self.state.phases[name] = _Counts.zero(causes)
            self._batching[name] = _Batching([(max(s, warmup), min(e, duration)) for s, e in ws])
        if self._all_over is not None:
            self.state.phases[PHASE_AFTER] = _Counts.zero(causes)
            self._batching[PHASE_AFTER] = _Batching([(max(self._all_over, warmup), duration)])

    @classmethod
    def for_scenario(cls, scenario: Any, horizon: float | None = None, *,
                     shares_accounts: bool = True) -> "MetricsCollector":
        """A collector with one phase per fault type and fault name of ``scenario``, counting
        the causes the scenario format knows (``scenario.causes``). ``shares_accounts`` False:
        the source puts every repayment on an account of its own whatever the scenario says
        (a load run), so it writes no account metric it did not measure."""
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
        return cls(scenario.duration, scenario.warmup, scenario.workload.check.max_checks, windows,
                   causes=scenario.causes, pay_again=getattr(scenario.workload.check, "pay_again", None) is not None,
                   holders=any(getattr(fault, "holder_looks", None) for fault in scenario.faults),
                   accounts=shares_accounts and getattr(scenario.workload, "accounts", None) is not None)

    def populations(self, ack: np.ndarray) -> list[tuple["_Counts", np.ndarray | None, np.ndarray]]:
        """For a run of ack instants inside ``[warmup, duration)``: every population they count
        in, as ``(counts, which, batch)`` — ``which`` selects the acks that count there (None:
        all) and ``batch`` is each selected ack's batch, as :meth:`observe` assigns them one by one."""
        st = self.state
        out: list[tuple[_Counts, np.ndarray | None, np.ndarray]] = [
            (st.all, None, np.minimum(((ack - st.warmup) * self._batch_scale).astype(np.int64), BATCHES - 1))]
        for name, ws in self._windows.items():
            inside = np.zeros(len(ack), dtype=bool)
            for start, end in ws:
                inside |= (ack >= start) & (ack < end)
            if inside.any():
                out.append((st.phases[name], inside, self._batching[name].indices(ack[inside])))
        if self._all_over is not None:
            after = ack >= self._all_over
            if after.any():
                out.append((st.phases[PHASE_AFTER], after, self._batching[PHASE_AFTER].indices(ack[after])))
        return out

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

    def _groups(self, t_ack: float) -> list[tuple[_Counts, int]]:
        """The populations (all, and each phase) a repayment acked at ``t_ack`` counts in,
        each with its batch index."""
        st = self.state
        gb_all = int((t_ack - st.warmup) * self._batch_scale)
        groups = [(st.all, gb_all if gb_all < BATCHES else BATCHES - 1)]
        if self._windows:
            for name, ws in self._windows.items():
                for start, end in ws:
                    if start <= t_ack < end:
                        groups.append((st.phases[name], self._batching[name].index(t_ack)))
                        break
            if self._all_over is not None and t_ack >= self._all_over:
                groups.append((st.phases[PHASE_AFTER], self._batching[PHASE_AFTER].index(t_ack)))
        return groups

    def observe_double(self, first_acked_at: float) -> None:
        """The user of the repayment acked at ``first_acked_at`` paid a second time and the
        ledger committed it (a double repayment, counted with that first repayment)."""
        st = self.state
        if not (st.warmup <= first_acked_at < st.duration):
            return
        for g, gb in self._groups(first_acked_at):
            g.b_double[gb] += 1

    def observe_regressions(self, acked_at: float, n: int = 1) -> None:
        """The status write of the repayment acked at ``acked_at`` moved its account's view
        back over a newer one ``n`` times (docs/explanation/semantics.md, 14): counted by
        that repayment's ack, like its reads."""
        st = self.state
        if not (st.warmup <= acked_at < st.duration):
            return
        for g, _gb in self._groups(acked_at):
            g.view_regressions += n

    def observe_holder(self, written_at: float, repaired_at: float, reads: Iterable[Read], cause: str) -> None:
        """The holder of an account a phantom record was written on at ``written_at`` (no
        repayment of theirs: the account's truth is usable) and every look they took; the view
        shows unusable until ``repaired_at``. Counted by the write's instant, like a repayment
        by its ack: in ``reads`` and ``stale_reads`` and their batches, never in ``repayments``
        or the per-repayment metrics. A look that shows unusable is stale, blamed on
        ``cause`` — or on ``cache`` when the view was usable and an older status was served."""
        st = self.state
        if not (st.warmup <= written_at < st.duration):
            return
        n_reads = n_stale = 0
        stale_causes: list[str] = []
        for read in reads:
            n_reads += 1
            rb = self._bin(read.t)
            if rb >= 0:
                st.s_reads[rb] += 1
            if not read.shown_usable:
                n_stale += 1
                blamed = CACHE if read.t >= repaired_at else cause
                stale_causes.append(blamed)
                if rb >= 0:
                    st.s_stale[rb] += 1
                    st.s_stale_by_cause[blamed][rb] += 1
        for g, gb in self._groups(written_at):
            g.phantom_records += 1
            g.holder_reads += n_reads
            g.b_reads[gb] += n_reads
            g.b_stale[gb] += n_stale
            for blamed in stale_causes:
                g.by_cause[blamed] += 1

    def observe(self, rep: Repayment, reads: Iterable[Read]) -> None:
        """One acked repayment and every read its user made after the ack."""
        t_ack = rep.acked_at
        st = self.state
        if not (st.warmup <= t_ack < st.duration):
            return
        groups = self._groups(t_ack)
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
                cause = cause_of(rep, read, self._rank)
                stale_causes.append(cause)
                if rb >= 0:
                    st.s_stale[rb] += 1
                    st.s_stale_by_cause[cause][rb] += 1
        never = held or usable_at == math.inf
        delay = usable_at - t_ack
        if delay < 0:
            delay = 0.0
        ttu_bin = -1 if never else (0 if delay < _LOW else min(1 + int(_log(delay / _LOW) / _LOG_GROWTH), _TOP))
        k = 0
        if not held and delay > 0:
            # still stale at every grid t < delay
            k = bisect_right(VISIBILITY_GRID, delay) if delay != math.inf else _GRID
            if k and VISIBILITY_GRID[k - 1] == delay:
                k -= 1
        # docs/reference/metrics.md: a user who used all max_checks and saw only stale reads contacts support.
        support = n_stale == n_reads >= self.max_checks
        for g, gb in groups:
            g.b_repayments[gb] += 1
            g.b_reads[gb] += n_reads
            g.b_stale[gb] += n_stale
            g.wrong_usable_reads += n_wrong
            if n_stale:
                g.b_affected[gb] += 1
                for cause in stale_causes:
                    g.by_cause[cause] += 1
            if never:
                g.never_usable += 1
            else:
                h = g.ttu  # inline LogHistogram.add_binned: this loop is the model's hot path
                h.n += 1
                h.total += delay
                if delay > h.max:
                    h.max = delay
                h.counts[ttu_bin] += 1
                g.b_ttu_sum[gb] += delay
                hist = g.b_ttu[gb]
                hist[ttu_bin] = hist.get(ttu_bin, 0) + 1
            if held:
                g.risk_holds += 1
            else:
                g.b_truth_usable[gb] += 1
                g.b_stale_k[gb * (_GRID + 1) + k] += 1
            if support:
                g.b_support[gb] += 1
            if not rep.in_ledger:
                g.lost_repayments += 1


# --------------------------------------------------------------------------- read-out


def _r(x: float | None, digits: int = 9) -> float | None:
    """Round for a stable, readable result.json (same inputs -> same bytes)."""
    if x is None or x == math.inf or x != x:
        return None
    return float(f"{x:.{digits}g}")


def _ratio_node(est: Estimate) -> dict[str, Any]:
    return {"value": _r(est.value), **as_json(est, _r)}


def _cat(groups: list[_Counts], attr: str) -> list[Any]:
    return [x for g in groups for x in getattr(g, attr)]


def _population(groups: list[_Counts], pay_again: bool = False, holders: bool = False,
                accounts: bool = False) -> dict[str, Any]:
    """One population's metrics from its per-replication counts (batches pooled); the
    double-repayment metrics only when ``pay_again``, the holder metrics only when ``holders``,
    the regression count only when ``accounts``."""
    repayments = _cat(groups, "b_repayments")
    truth_usable = _cat(groups, "b_truth_usable")
    n = sum(repayments)
    n_truth = sum(truth_usable)
    r = len(groups)  # replications: batch positions are strata across them (stats module)
    p_stale, band_low, band_high = [], [], []
    for i in range(_GRID):
        still = [x for g in groups for x in g.still_stale(i)]
        est = proportion_estimate(still, truth_usable, r)
        p_stale.append(_r(sum(still) / n_truth) if n_truth else 0.0)
        band_low.append(_r(est.low))
        band_high.append(_r(est.high))
    support = proportion_estimate(_cat(groups, "b_support"), repayments, r).scaled(10_000)
    ttu = LogHistogram()
    by_cause = dict.fromkeys(groups[0].by_cause, 0)
    for g in groups:
        ttu.merge(g.ttu)
        for c in by_cause:
            by_cause[c] += g.by_cause[c]
    summary = {k: _r(v) for k, v in ttu.summary().items()}
    intervals: dict[str, Any] = {"support_contacts_per_10k": as_json(support, _r)}
    if pay_again:
        double = proportion_estimate(_cat(groups, "b_double"), repayments, r).scaled(10_000)
        intervals["double_repayments_per_10k"] = as_json(double, _r)
    mean = mean_estimate(_cat(groups, "b_ttu_sum"), [sum(h.values()) for h in _cat(groups, "b_ttu")], r)
    if mean is not None:
        intervals["time_to_usable.mean"] = as_json(mean, _r)
    quantiles = quantile_estimates(_cat(groups, "b_ttu"), [q for _, q in QUANTILES], ttu.max)
    for (key, _), q_est in zip(QUANTILES, quantiles):
        if q_est is not None:
            intervals[f"time_to_usable.{key}"] = as_json(q_est, _r)
    stale = _cat(groups, "b_stale")
    reads = _cat(groups, "b_reads")
    out: dict[str, Any] = {
        "repayments": n,
        "reads": sum(reads),
        "stale_reads": sum(stale),
        "stale_read_ratio": _ratio_node(proportion_estimate(stale, reads, r)),
        "affected_ratio": _ratio_node(proportion_estimate(_cat(groups, "b_affected"), repayments, r)),
        "never_usable": sum(g.never_usable for g in groups),
        "risk_holds": sum(g.risk_holds for g in groups),
        "visibility": {"t": list(VISIBILITY_GRID), "p_stale": p_stale, "ci95_low": band_low, "ci95_high": band_high},
        "support_contacts": sum(_cat(groups, "b_support")),
        "support_contacts_per_10k": _r(10_000 * sum(_cat(groups, "b_support")) / n) if n else 0.0,
        "lost_repayments": sum(g.lost_repayments for g in groups),
        "wrong_usable_reads": sum(g.wrong_usable_reads for g in groups),
        "stale_reads_by_cause": by_cause,
        "time_to_usable": summary,
        "intervals": intervals,
    }
    if pay_again:
        doubles = sum(_cat(groups, "b_double"))
        out["double_repayments"] = doubles
        out["double_repayments_per_10k"] = _r(10_000 * doubles / n) if n else 0.0
    if holders:
        out["phantom_records"] = sum(g.phantom_records for g in groups)
        out["holder_reads"] = sum(g.holder_reads for g in groups)
    if accounts:
        out["view_regressions"] = sum(g.view_regressions for g in groups)
    return out


def finalize(states: Sequence[CollectorState]) -> dict[str, Any]:
    """The ``metrics``, ``phases``, ``series`` and ``ci_method`` sections of result.json
    from per-replication states.

    Counts are pooled over replications; intervals pool the batches of every replication
    (:mod:`repaychaos.core.stats`).
    """
    if not states:
        raise ValueError("finalize needs at least one collector state")
    first = states[0]
    pay_again = first.pay_again
    holders = first.holders
    accounts = first.accounts
    metrics = _population([s.all for s in states], pay_again, holders, accounts)
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

    phases = {name: _population([s.phases[name] for s in states], pay_again, holders, accounts)
              for name in first.phases}
    # docs/reference/metrics.md: a cause registered after the first schema is listed only where it is used
    shown = [c for c in first.causes
             if c in ALWAYS_REPORTED_CAUSES or c in first.phases or ordered["stale_reads_by_cause"][c]]
    for population in (ordered, *phases.values()):
        population["stale_reads_by_cause"] = {c: population["stale_reads_by_cause"][c] for c in shown}

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
        "stale_reads_by_cause": {c: [sum(s.s_stale_by_cause[c][i] for s in states) for i in range(SERIES_BINS)] for c in shown},
        "backlog_mean": [_r(backlog_sum[i] / backlog_n[i]) if backlog_n[i] else None for i in range(SERIES_BINS)],
        "backlog_max": [max(s.s_backlog_max[i] for s in states) for i in range(SERIES_BINS)],
        "replications": len(states),
    }
    ci_method = {"method": CI_METHOD, "batches_per_replication": BATCHES, "batches": BATCHES * len(states),
                 # ratios and means: variance within batch positions across replications when
                 # there are several (a fault window is not noise), else over the pooled batches
                 "variance": "within batch positions across replications" if len(states) > 1 else "pooled batches",
                 "confidence": 0.95}
    # per batch position, summed over replications: what a paired comparison needs
    # (repaychaos.core.stats.paired_ratio_difference)
    batches = {"positions": BATCHES,
               **{key: [sum(getattr(s.all, attr)[b] for s in states) for b in range(BATCHES)]
                  for key, attr in (("repayments", "b_repayments"), ("reads", "b_reads"),
                                    ("stale_reads", "b_stale"), ("affected", "b_affected"))}}
    if pay_again:
        batches["double"] = [sum(s.all.b_double[b] for s in states) for b in range(BATCHES)]
    return {"metrics": ordered, "phases": phases, "series": series, "ci_method": ci_method, "batches": batches}
