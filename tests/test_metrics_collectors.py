"""The metric definitions of docs/reference/metrics.md, checked on hand-built repayments with exact answers."""

from __future__ import annotations

import math
import random

import pytest

from repaychaos.core.collector import BATCHES, VISIBILITY_GRID, MetricsCollector, finalize
from repaychaos.core.histogram import LogHistogram
from repaychaos.core.records import Read, Repayment, Touch, cause_of, cause_rank
from repaychaos.core.stats import sample_quantile, sample_quantiles, t975, wilson
from repaychaos.scenarios.faults import CAUSES

RANK = cause_rank(CAUSES)


def collector(max_checks=3, windows=None, duration=1000.0, warmup=0.0):
    return MetricsCollector(duration, warmup, max_checks, windows, causes=CAUSES)


def test_stale_means_view_unusable_while_truth_usable():
    """Reads before the view turns usable are stale; a held account's unusable reads are not."""
    c = collector()
    c.observe(Repayment(10.0, view_usable_at=15.0), [Read(12, False, 12), Read(20, True, 20)])
    c.observe(Repayment(30.0, held=True), [Read(31, False, 31), Read(61, False, 61), Read(91, False, 91)])
    m = finalize([c.state])["metrics"]
    assert (m["repayments"], m["reads"], m["stale_reads"]) == (2, 5, 1)
    assert m["never_usable"] == 1 and m["risk_holds"] == 1
    assert m["affected_ratio"]["value"] == 0.5
    assert m["support_contacts_per_10k"] == 0  # the held user saw no stale read


def test_wrong_usable_reads_count_usable_shown_on_unusable_truth():
    """Showing usable to a held account is risk exposure, not staleness."""
    c = collector()
    c.observe(Repayment(1.0, held=True), [Read(2, True, 2)])
    m = finalize([c.state])["metrics"]
    assert m["wrong_usable_reads"] == 1 and m["stale_reads"] == 0


def test_support_contact_needs_all_max_checks_stale():
    """Only a user who used every one of max_checks and saw only stale reads contacts support."""
    c = collector(max_checks=3)
    c.observe(Repayment(1.0), [Read(2, False, 2), Read(32, False, 32), Read(62, False, 62)])
    c.observe(Repayment(2.0, view_usable_at=40), [Read(3, False, 3), Read(33, False, 33), Read(63, True, 63)])
    m = finalize([c.state])["metrics"]
    assert m["support_contacts_per_10k"] == 5000.0


def test_only_repayments_acked_in_the_window_count():
    """Acks before warmup or at/after duration are ignored."""
    c = collector(warmup=100, duration=200)
    for t in (50.0, 100.0, 199.9, 200.0):
        c.observe(Repayment(t, view_usable_at=t + 1), [Read(t + 2, True, t + 2)])
    assert finalize([c.state])["metrics"]["repayments"] == 2


def test_attribution_picks_the_largest_delay_touch_before_the_read():
    """Among touches at or before the read, the one with the most added delay wins."""
    rep = Repayment(0.0, view_usable_at=500.0, touches=[
        Touch("sync_delay", 1.0, 5.0), Touch("maintenance", 2.0, 300.0), Touch("cutover", 50.0, 900.0)])
    assert cause_of(rep, Read(10.0, False, 10.0), RANK) == "maintenance"
    assert cause_of(rep, Read(60.0, False, 60.0), RANK) == "cutover"
    assert cause_of(rep, Read(0.5, False, 0.5), RANK) == "queueing"


def test_attribution_cache_when_view_was_already_usable():
    """A stale read served from a cache while the view was usable is 'cache'."""
    rep = Repayment(0.0, view_usable_at=1.0, touches=[Touch("maintenance", 0.0, 100.0)])
    assert cause_of(rep, Read(5.0, False, 0.0), RANK) == "cache"


def test_view_changes_allow_the_view_to_flip_back():
    """With a history, a corrupt write after a sweep makes the view unusable again."""
    rep = Repayment(0.0, view_usable_at=10.0, view_changes=[(10.0, True), (20.0, False), (30.0, True)])
    assert [rep.view_usable(t) for t in (5, 15, 25, 35)] == [False, True, False, True]


def test_visibility_curve_is_exact_on_the_grid():
    """p_stale(t) counts repayments whose view turned usable after ack + t, exactly."""
    c = collector()
    delays = [0.05, 0.3, 1.0, 7.0, math.inf]
    for i, d in enumerate(delays):
        c.observe(Repayment(float(i), view_usable_at=i + d), [])
    vis = finalize([c.state])["metrics"]["visibility"]
    got = dict(zip(vis["t"], vis["p_stale"]))
    for t in VISIBILITY_GRID:
        assert got[t] == pytest.approx(sum(d > t for d in delays) / len(delays)), t


def test_stale_reads_by_cause_sum_to_stale_reads():
    """Every stale read has exactly one cause."""
    rng = random.Random(5)
    c = collector(max_checks=4)
    for i in range(500):
        usable = i + rng.expovariate(0.05)
        touches = [Touch(rng.choice(["sync_delay", "maintenance", "interface_bug"]), i + rng.random(), rng.random() * 50)] if i % 3 else []
        reads = []
        for k in range(4):
            t = i + 1 + 20 * k
            reads.append(Read(t, t >= usable, t))
            if t >= usable:
                break
        c.observe(Repayment(float(i), view_usable_at=usable, touches=touches), reads)
    m = finalize([c.state])["metrics"]
    assert sum(m["stale_reads_by_cause"].values()) == m["stale_reads"] > 0


def test_phases_split_by_ack_time():
    """A repayment acked inside a fault window counts in that phase; after all windows, in 'after'."""
    c = collector(windows={"maintenance": [(100.0, 200.0)]})
    for t in (50.0, 150.0, 250.0, 260.0):
        c.observe(Repayment(t, view_usable_at=t + 1), [Read(t + 0.5, False, t + 0.5)])
    phases = finalize([c.state])["phases"]
    assert phases["maintenance"]["repayments"] == 1
    assert phases["after"]["repayments"] == 2


def test_histogram_quantiles_within_one_percent():
    """Log-spaced bins give quantiles within 1 % of the exact order statistic."""
    rng = random.Random(9)
    xs = sorted(rng.lognormvariate(0, 2) for _ in range(20_000))
    h = LogHistogram()
    for x in xs:
        h.add(x)
    for q in (0.5, 0.95, 0.99, 0.999):
        exact = xs[math.ceil(q * len(xs)) - 1]
        assert h.quantile(q) == pytest.approx(exact, rel=0.011), q
    assert h.max == xs[-1]


def test_histogram_memory_is_fixed():
    """Adding a million values does not grow the histogram."""
    h = LogHistogram()
    size = len(h.counts)
    for i in range(1, 100_001):
        h.add(i * 0.37)
    assert len(h.counts) == size and h.n == 100_000


def test_wilson_interval_known_values():
    """Wilson 95 % for 5/10 is (0.2366, 0.7634) (textbook value)."""
    low, high = wilson(5, 10)
    assert low == pytest.approx(0.2366, abs=1e-4) and high == pytest.approx(0.7634, abs=1e-4)


def _batch_run(stale_per_batch, reads_per_batch=10, duration=1000.0):
    """One repayment per read slot: batch b (width duration/BATCHES) gets ``reads_per_batch``
    repayments with one read each, the first ``stale_per_batch[b]`` of them stale."""
    c = collector(max_checks=1, duration=duration)
    width = duration / BATCHES
    for b, stale in enumerate(stale_per_batch):
        for i in range(reads_per_batch):
            t = b * width + (i + 0.5) * width / reads_per_batch
            usable = i >= stale
            c.observe(Repayment(t, view_usable_at=t + (0.1 if usable else 100.0)), [Read(t + 1.0, usable, t + 1.0)])
    return c.state


def test_ratio_interval_is_batch_means_over_ack_time():
    """One run: se = sqrt(n/(n-1)·Σ(y_b − p·x_b)²)/Σx over the BATCHES batches by ack time, on n−1 d.o.f.,
    and the interval is Wilson at the effective size p(1−p)/se² with Student t (≈ p ± t·se here)."""
    stale = [(3 * b) % 7 for b in range(BATCHES)]  # 0..6 stale of 10 reads per batch
    r = finalize([_batch_run(stale)])["metrics"]["stale_read_ratio"]
    y, x = [float(v) for v in stale], 10.0
    p = sum(y) / (x * BATCHES)
    se = math.sqrt(BATCHES / (BATCHES - 1) * sum((v - p * x) ** 2 for v in y)) / (x * BATCHES)
    assert r["value"] == pytest.approx(p) and r["dof"] == BATCHES - 1
    assert r["se"] == pytest.approx(se, rel=1e-6)
    n_eff, t = p * (1 - p) / se**2, t975(BATCHES - 1)
    assert r["ci95"] == pytest.approx(_wilson_p(p, n_eff, t), rel=1e-6)
    assert r["ci95"][1] - r["ci95"][0] == pytest.approx(2 * t * se, rel=0.05)


def _wilson_p(p, n, z):
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return [centre - half, centre + half]


def test_correlated_reads_widen_the_interval_past_wilson():
    """All-or-nothing batches (every read in a batch stale, or none) are far more variable than
    independent reads: the interval is wider than the Wilson interval over reads."""
    stale = [10 if b % 2 else 0 for b in range(BATCHES)]
    r = finalize([_batch_run(stale)])["metrics"]["stale_read_ratio"]
    low, high = wilson(5 * BATCHES, 10 * BATCHES)
    assert r["ci95"][1] - r["ci95"][0] > 2 * (high - low)


def test_replications_pool_their_batches():
    """Three replications of BATCHES batches: batch positions are strata, so the interval has
    BATCHES·(3 − 1) d.o.f. (within positions), not 2 (one value per replication)."""
    states = [_batch_run([(b + k) % 5 for b in range(BATCHES)]) for k in range(3)]
    r = finalize(states)["metrics"]["stale_read_ratio"]
    assert r["dof"] == BATCHES * (3 - 1)
    assert r["value"] == pytest.approx(sum((b + k) % 5 for b in range(BATCHES) for k in range(3)) / (30 * BATCHES))


def test_a_fault_window_is_not_noise_when_replications_pair_the_batches():
    """Every replication stale in the same batches (a fault window): one run pooled counts the
    window as batch-to-batch noise (wide); replications paired by position do not (no wider than
    Wilson over the reads, as identical replications have no within-position spread)."""
    window = [10 if b < BATCHES // 4 else 0 for b in range(BATCHES)]
    one = finalize([_batch_run(window)])["metrics"]["stale_read_ratio"]
    three = finalize([_batch_run(window) for _ in range(3)])["metrics"]["stale_read_ratio"]
    from repaychaos.core.stats import t975

    low, high = wilson(3 * 10 * (BATCHES // 4), 3 * 10 * BATCHES, z=t975(three["dof"]))
    assert three["ci95"][1] - three["ci95"][0] <= (high - low) * 1.0001
    assert one["ci95"][1] - one["ci95"][0] > 2 * (three["ci95"][1] - three["ci95"][0])


def test_no_stale_read_still_gives_an_interval_of_width():
    """Zero events: the value is 0 and the upper bound the Wilson bound at the raw count (t quantile), not 0."""
    r = finalize([_batch_run([0] * BATCHES)])["metrics"]["stale_read_ratio"]
    n, t = 10 * BATCHES, t975(BATCHES - 1)
    assert r["value"] == 0.0 and r["ci95"][0] == 0.0
    assert r["ci95"][1] == pytest.approx(t * t / (n + t * t), rel=1e-6)


def test_quantile_interval_is_zero_width_when_every_batch_is_alike():
    """The grouped jackknife: identical batches give identical leave-one-out quantiles, so se = 0."""
    c = collector(duration=1000.0)
    width = 1000.0 / BATCHES
    for b in range(BATCHES):
        for i, d in enumerate((0.5, 1.0, 2.0, 4.0, 8.0) * 4):
            t = b * width + i
            c.observe(Repayment(t, view_usable_at=t + d), [])
    iv = finalize([c.state])["metrics"]["intervals"]["time_to_usable.p50"]
    assert iv["se"] == 0.0 and iv["dof"] == BATCHES - 1
    assert iv["ci95"][0] == iv["ci95"][1]


def test_tail_quantile_without_enough_values_gets_no_interval():
    """p999 of 20 values per batch: fewer than 5 per batch beyond it, so no interval is claimed."""
    c = collector(duration=1000.0)
    width = 1000.0 / BATCHES
    for b in range(BATCHES):
        for i in range(20):
            t = b * width + i
            c.observe(Repayment(t, view_usable_at=t + 0.5 + i), [])
    intervals = finalize([c.state])["metrics"]["intervals"]
    assert "time_to_usable.p999" not in intervals and "time_to_usable.p50" in intervals


def test_collector_state_is_bounded_by_batches_and_bins():
    """Ten times the repayments do not grow the state's lists; per-batch histograms hold at most one
    entry per occupied bin of the pooled histogram, so at most BATCHES × bins entries in all."""
    def state(n):
        rng = random.Random(3)
        c = collector(duration=1000.0)
        for i in range(n):
            t = 1000.0 * i / n
            c.observe(Repayment(t, view_usable_at=t + rng.expovariate(2.0)), [Read(t + 1, True, t + 1)])
        return c.state
    small, large = state(2_000), state(20_000)
    for s in (small, large):
        occupied = sum(1 for c in s.all.ttu.counts if c)
        assert len(s.all.b_ttu) == BATCHES and all(len(h) <= occupied for h in s.all.b_ttu)
        assert sum(len(h) for h in s.all.b_ttu) <= BATCHES * len(LogHistogram().counts)
    assert [len(x) for x in vars(small.all).values() if isinstance(x, list)] == \
        [len(x) for x in vars(large.all).values() if isinstance(x, list)]


def test_finalize_is_deterministic():
    """The same observations give the same numbers, in the same key order."""
    def run():
        c = collector()
        for i in range(50):
            c.observe(Repayment(float(i), view_usable_at=i + 0.1 * i), [Read(i + 2.0, 0.1 * i <= 2, i + 2.0)])
        return finalize([c.state])
    assert repr(run()) == repr(run())


def test_sample_quantile_interpolates_between_order_statistics():
    """Rank q·(n−1), linear between neighbours: of 4, 1, 3, 2 the median is 2.5, p95 is 3 + 0.85."""
    assert sample_quantile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.5
    assert sample_quantile([4.0, 1.0, 3.0, 2.0], 0.95) == pytest.approx(3.85, abs=1e-12)
    assert sample_quantile([7.0], 0.99) == 7.0
    assert list(sample_quantiles([0.0, 10.0], [0.0, 0.3, 1.0])) == [0.0, 3.0, 10.0]
