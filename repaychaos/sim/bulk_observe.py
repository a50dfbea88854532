""":meth:`MetricsCollector.observe` for a run of plain repayments at once, to the same state.

A *plain* repayment is one whose own write is its only view change, whose reads go to the
view itself (no cache) and whose touches, if any, all name one cause and are known when it
is written (no until-repaired damage): its view turns usable at
``min(write, first sweep >= ack)`` (never, if held), its reads are ``reads_simple``'s, and a
stale read is blamed on that cause from its earliest touch on (the touch with the most
added delay among those at or before the read has that cause), else on ``queueing``. For a run of them, in the order the
collector would have seen them, :func:`observe_plain` adds to the collector's state what
``observe`` would have added one by one: the counters are sums, and the two float sums
that depend on order (the time-to-usable total and its per-batch sums) are accumulated
in that order (``np.cumsum`` adds left to right), so the state is bit-identical.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from repaychaos.scenarios.faults import CAUSES
from repaychaos.core.collector import BATCHES, SERIES_BINS, VISIBILITY_GRID, MetricsCollector, _Counts
from repaychaos.core.histogram import _LOG_GROWTH, LOW, TOP
from repaychaos.sim.draws import exact_log

__all__ = ["observe_plain", "sweeps_after"]

_GRID = np.asarray(VISIBILITY_GRID)
_NG = len(VISIBILITY_GRID)


def sweeps_after(ack: np.ndarray, every: float | None) -> np.ndarray:
    """:meth:`Reconcile.next_sweep` of every element (same arithmetic, so the same floats)."""
    if every is None:
        return np.full(len(ack), math.inf)
    k = np.maximum(1.0, np.ceil(ack / every))
    sweep = k * every
    return np.where(sweep >= ack, sweep, sweep + every)


def _add_group(g: _Counts, gb: np.ndarray, n_reads: np.ndarray, n_stale: np.ndarray, never: np.ndarray,
               delay: np.ndarray, ttu_bin: np.ndarray, held: np.ndarray, kvis: np.ndarray,
               support: np.ndarray, by_cause: np.ndarray) -> None:
    def add(target: list[Any], idx: np.ndarray, weights: np.ndarray | None = None, size: int = BATCHES) -> None:
        counts = np.bincount(idx, weights=weights, minlength=size)
        for i in np.flatnonzero(counts).tolist():
            target[i] += int(counts[i])

    add(g.b_repayments, gb)
    add(g.b_reads, gb, n_reads)
    add(g.b_stale, gb, n_stale)
    affected = n_stale > 0
    add(g.b_affected, gb[affected])
    totals = by_cause.sum(axis=0)
    for c in np.flatnonzero(totals).tolist():
        g.by_cause[CAUSES[c]] += int(totals[c])
    g.never_usable += int(never.sum())
    usable = ~never
    if usable.any():
        d = delay[usable]
        bins = ttu_bin[usable]
        gbu = gb[usable]
        h = g.ttu
        h.n += len(d)
        h.total = float(np.cumsum(np.concatenate(([h.total], d)))[-1])
        m = float(d.max())
        if m > h.max:
            h.max = m
        counts = np.bincount(bins, minlength=TOP + 1)
        for i in np.flatnonzero(counts).tolist():
            h.counts[i] += int(counts[i])
        for b in np.unique(gbu).tolist():
            sel = gbu == b
            g.b_ttu_sum[b] = float(np.cumsum(np.concatenate(([g.b_ttu_sum[b]], d[sel])))[-1])
            hist = g.b_ttu[b]
            keys, first_seen, counts_b = np.unique(bins[sel], return_index=True, return_counts=True)
            for k in np.argsort(first_seen, kind="stable").tolist():  # new bins enter in the order they are met
                key = int(keys[k])
                hist[key] = hist.get(key, 0) + int(counts_b[k])
    g.risk_holds += int(held.sum())
    free = ~held
    add(g.b_truth_usable, gb[free])
    add(g.b_stale_k, gb[free] * (_NG + 1) + kvis[free], size=BATCHES * (_NG + 1))
    add(g.b_support, gb[support])


def observe_plain(col: MetricsCollector, ack: np.ndarray, held: np.ndarray, write: np.ndarray,
                  first: np.ndarray, every: float, max_checks: int, sweep_every: float | None,
                  cause: np.ndarray | None = None, cause_at: np.ndarray | None = None) -> None:
    """Observe plain repayments (module docstring) in array order, as ``observe`` would one by one.

    ``cause`` is each one's touch cause (an index into ``CAUSES``; 0, ``queueing``, for
    none) and ``cause_at`` its earliest touch.
    """
    st = col.state
    if cause is None or cause_at is None:
        cause = np.zeros(len(ack), dtype=np.int64)
        cause_at = np.full(len(ack), math.inf)
    keep = (ack >= st.warmup) & (ack < st.duration)
    if not keep.all():
        ack, held, write, first, cause, cause_at = (a[keep] for a in (ack, held, write, first, cause, cause_at))
    n = len(ack)
    if n == 0:
        return
    s1 = sweeps_after(ack, sweep_every)
    usable_at = np.where(held, math.inf, np.where(write < s1, write, s1))

    # reads: at ack + first + k * every, stopping at the first one that shows usable
    t0 = ack + first
    times = t0[:, None] + np.arange(max_checks, dtype=np.float64)[None, :] * every
    if max_checks:
        times[:, 0] = t0
    shown_false = (times < usable_at[:, None]).sum(axis=1)
    n_reads = shown_false + (shown_false < max_checks)
    n_stale = np.where(held, 0, shown_false)
    width = st.bin_width
    duration = st.duration
    made = np.arange(max_checks)[None, :] < n_reads[:, None]
    in_run = made & (times >= 0) & (times < duration)
    rb = (times / width).astype(np.int64)
    counts = np.bincount(rb[in_run], minlength=SERIES_BINS)
    for i in np.flatnonzero(counts).tolist():
        st.s_reads[i] += int(counts[i])
    stale_any = np.arange(max_checks)[None, :] < n_stale[:, None]
    # the cause of each stale read: the repayment's cause once its first touch is at or before it
    read_cause = np.where(times >= cause_at[:, None], cause[:, None], 0)
    stale = in_run & stale_any
    counts = np.bincount(rb[stale], minlength=SERIES_BINS)
    for i in np.flatnonzero(counts).tolist():
        st.s_stale[i] += int(counts[i])
    for c in np.unique(read_cause[stale]).tolist():
        series = st.s_stale_by_cause[CAUSES[c]]
        counts = np.bincount(rb[stale & (read_cause == c)], minlength=SERIES_BINS)
        for i in np.flatnonzero(counts).tolist():
            series[i] += int(counts[i])
    n_causes = len(CAUSES)
    flat = np.arange(n)[:, None] * n_causes + read_cause
    by_cause = np.bincount(flat[stale_any], minlength=n * n_causes).reshape(n, n_causes)
    counts = np.bincount((ack / width).astype(np.int64), minlength=SERIES_BINS)
    for i in np.flatnonzero(counts).tolist():
        st.s_acks[i] += int(counts[i])

    never = held | (usable_at == math.inf)
    delay = np.maximum(usable_at - ack, 0.0)
    ttu_bin = np.zeros(n, dtype=np.int64)
    big = ~never & (delay >= LOW)
    if big.any():
        x = delay[big] / LOW
        lg = np.log(x) / _LOG_GROWTH
        # numpy's log may differ from math.log in the last bit: where that could move the
        # value across a bin edge, take math.log's
        near = np.flatnonzero(np.abs(lg - np.rint(lg)) < 1e-9)
        if len(near):
            lg[near] = exact_log(x[near]) / _LOG_GROWTH
        ttu_bin[big] = np.minimum(1 + lg.astype(np.int64), TOP)
    kvis = np.where(~held & (delay > 0), np.searchsorted(_GRID, delay, side="left"), 0)
    support = (n_stale == n_reads) & (n_reads >= max_checks)

    args = (n_reads, n_stale, never, delay, ttu_bin, held, kvis, support, by_cause)
    for group, which, batch in col.populations(ack):
        _add_group(group, batch, *(args if which is None else (x[which] for x in args)))
