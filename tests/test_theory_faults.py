"""Faults against closed forms: interface drops with reconcile, risk holds, cutover
losses and mis-mappings, corrupt writes — each stale read attributed to its cause.

Tolerances are four standard errors of a binomial or Poisson count of the stated size.
Service times are tiny (1 ms, unlimited workers) so ordinary queueing never makes a read
stale and every stale read comes from the fault under test.
"""

from __future__ import annotations

import math

import pytest

from theory_scenarios import theory_scenario
from repaychaos.sim.injectors import REJECT_RETRY
from repaychaos.sim.simulate import run_model

pytestmark = pytest.mark.slow


def _scenario(**over):
    """The theory scenario (tests/theory_scenarios.py) with seed 23 and 3 check(s)."""
    return theory_scenario(23, 3, **over)


def _metrics(sc):
    return run_model(sc, processes=1, progress=False)["metrics"]


def test_interface_drop_stale_ratio_is_drop_times_unrepaired_share():
    """Drop ratio d, reconcile every P, one check c after the ack: stale ratio = d (1 - c/P)."""
    d, period, check = 0.1, 600.0, 120.0
    m = _metrics(_scenario(**{
        "duration": "6000s", "workload.arrivals.rate": 50,
        "workload.check": {"first_after": f"{check}s", "every": "30s", "max_checks": 1},
        "pipeline.reconcile": {"every": f"{period}s"},
        "faults": [{"type": "interface_bug", "link": "sync->credit", "drop_ratio": d}],
    }))
    n = m["reads"]
    expected = d * (1 - check / period)
    assert n == m["repayments"] > 290_000
    assert abs(m["stale_read_ratio"]["value"] - expected) <= 4 * math.sqrt(expected * (1 - expected) / n)
    assert m["stale_reads_by_cause"]["interface_bug"] == m["stale_reads"]


def test_risk_holds_are_never_stale_and_never_usable():
    """Held repayments never count as stale; never_usable equals the holds, a binomial share."""
    h = 0.05
    m = _metrics(_scenario(**{
        "duration": "2000s", "workload.arrivals.rate": 50,
        "pipeline.credit.risk_hold_ratio": h, "pipeline.reconcile": {"every": "60s"},
    }))
    n = m["repayments"]
    assert m["stale_reads"] == 0
    assert m["wrong_usable_reads"] == 0
    assert m["never_usable"] == m["risk_holds"]
    assert abs(m["risk_holds"] - h * n) <= 4 * math.sqrt(n * h * (1 - h))


def test_cutover_loses_queued_messages_and_blames_reads_after_the_switch():
    """Messages queued at the switch are lost; their reads after it are blamed on the cutover."""
    rate = 10.0
    m = _metrics(_scenario(**{
        "duration": "3000s", "workload.arrivals.rate": rate,
        "pipeline.sync.workers": 4, "pipeline.reconcile": {"every": "3600s"},
        "faults": [
            {"type": "maintenance", "component": "sync", "at": "1000s", "for": "600s"},
            {"type": "cutover", "at": "1500s", "for": "600s", "inflight_loss_ratio": 1.0},
        ],
    }))
    # Acked at u in [1000, 1500): lost, usable only at the 3600 s sweep; read k at
    # u + 5 + 30k is after the switch when u >= 1495 - 30k: 5 + 35 + 65 = 105 s of
    # arrivals contributing 1, 2 or 3 cutover reads, a compound Poisson count with
    # variance rate * (5*3^2 + 30*2^2 + 30*1^2).
    expected = rate * 105
    sd = math.sqrt(rate * (5 * 9 + 30 * 4 + 30 * 1))
    by_cause = m["stale_reads_by_cause"]
    assert abs(by_cause["cutover"] - expected) <= 4 * sd
    # every other stale read waited out the pause; an acked repayment is never lost from the ledger
    assert by_cause["maintenance"] + by_cause["cutover"] == m["stale_reads"]
    assert by_cause["maintenance"] > 10 * by_cause["cutover"]
    assert m["lost_repayments"] == 0


def _flip(fault: dict) -> dict:
    """Half the accounts held; reads every 30 s, 3 checks; the one sweep after the run."""
    return _metrics(_scenario(**{
        "duration": "1800s", "workload.arrivals.rate": 20,
        "pipeline.credit.risk_hold_ratio": 0.5, "pipeline.reconcile": {"every": "3600s"},
        "faults": [fault],
    }))


def test_cutover_mismapping_shows_held_accounts_usable_and_repaid_ones_stale():
    """Mis-mapped writes in the window: held accounts read usable (wrong), repaid ones stale (cutover)."""
    m = _flip({"type": "cutover", "at": "600s", "for": "600s", "unmapped_ratio": 0.2})
    # held and mis-mapped: one wrong read each (then the user stops); about
    # 20/s * 600 s * 0.5 * 0.2 = 1200, a Poisson count (sd ~35)
    assert abs(m["wrong_usable_reads"] - 1200) <= 4 * math.sqrt(1200)
    assert m["stale_reads_by_cause"]["cutover"] == m["stale_reads"]
    # a repaid, mis-mapped account stays unusable past all 3 checks: its user calls support
    assert m["stale_reads"] == 3 * m["support_contacts"]
    assert abs(m["support_contacts"] - 1200) <= 4 * math.sqrt(1200)


def test_corrupt_writes_are_blamed_on_the_interface_bug():
    """Corrupt credit->view writes: wrong usable reads for held accounts, stale for repaid ones."""
    m = _flip({"type": "interface_bug", "link": "credit->view", "at": "600s", "for": "600s",
               "corrupt_ratio": 0.2})
    assert abs(m["wrong_usable_reads"] - 1200) <= 4 * math.sqrt(1200)
    assert m["stale_reads_by_cause"]["interface_bug"] == m["stale_reads"] == 3 * m["support_contacts"]
    assert abs(m["support_contacts"] - 1200) <= 4 * math.sqrt(1200)


@pytest.mark.parametrize("component", ["sync", "credit", "view"])
@pytest.mark.parametrize("mode", ["pause", "reject"])
def test_maintenance_window_stale_reads_match_the_wait_it_adds(component, mode):
    """Work reaching a paused (or rejecting) stage waits for the window end (or the first retry after it)."""
    rate, start, length, first, every = 10.0, 600.0, 300.0, 5.0, 30.0
    m = _metrics(_scenario(**{
        "workload.check": {"first_after": f"{first}s", "every": f"{every}s", "max_checks": 100},
        "faults": [{"type": "maintenance", "component": component, "mode": mode,
                    "at": f"{start}s", "for": f"{length}s"}],
    }))
    end = start + length

    def ttu(u: float) -> float:
        if mode == "pause":
            return end - u
        return REJECT_RETRY * math.ceil((end - u) / REJECT_RETRY)

    # stale reads of one repayment: checks at u + 5 + 30k before it is usable; the total
    # is compound Poisson over arrival instants, mean rate*sum(k), variance rate*sum(k^2)
    step, mean, var = 0.01, 0.0, 0.0
    u = start
    while u < end:
        k = max(0, math.ceil((ttu(u) - first) / every))
        mean += rate * step * k
        var += rate * step * k * k
        u += step
    assert abs(m["stale_reads"] - mean) <= 4 * math.sqrt(var)
    assert m["stale_reads_by_cause"]["maintenance"] == m["stale_reads"]


def test_ledger_maintenance_delays_the_ack_not_the_view():
    """A paused ledger holds back the ack itself, so with spare sync capacity no read is stale."""
    result = run_model(_scenario(**{
        "faults": [{"type": "maintenance", "component": "ledger", "at": "300s", "for": "120s"}],
    }), processes=1, progress=False)
    m = result["metrics"]
    assert m["repayments"] > 9_000
    assert m["stale_reads"] == 0
    # the ~1,200 commits of the window are all acked at its end, in one series bin
    assert max(result["series"]["acks"]) > 1_000


def test_cached_status_makes_early_reads_stale_by_cache():
    """With cache_ttl 60 s the status cached at the ack is shown for a minute: those reads are 'cache'."""
    m = _metrics(_scenario(**{
        "workload.check": {"first_after": {"dist": "uniform", "low": "2s", "high": "120s"}, "every": "30s",
                           "max_checks": 5},
        "pipeline.view.cache_ttl": "60s",
    }))
    # first read at f ~ U(2, 120): reads at f + 30k < 60 are cached, 2 of them for f < 30,
    # 1 for 30 <= f < 60: mean 86/118 per repayment, variance (28*4 + 30)/118 - mean^2
    n = m["repayments"]
    mean = 86 / 118
    var = (28 * 4 + 30) / 118 - mean**2
    assert abs(m["stale_reads"] - n * mean) <= 4 * math.sqrt(n * var)
    assert m["stale_reads_by_cause"]["cache"] == m["stale_reads"]


def test_rule_lag_stale_share_in_its_window_matches_the_release_at_the_first_sweep_after_rollback():
    """Risk hold r, rule lag h in [a, R), one read c after the ack, sweeps every P: a repayment
    acked at t in the window is stale iff not risk-held, caught and t + c < X, the first sweep at
    or after R. Acks are uniform in the window given their number, so the window's stale share
    is (1 - r) h (X - c - a) / (R - a), a binomial proportion over the window's reads."""
    r, h, a, rollback, period, check = 0.1, 0.2, 300.0, 950.0, 250.0, 120.0
    release = 1000.0  # sweeps at 250, 500, 750 (inside the window: they keep), 1000
    result = run_model(_scenario(**{
        "duration": "1300s", "workload.arrivals.rate": 50,
        "workload.check": {"first_after": f"{check}s", "every": "30s", "max_checks": 1},
        "pipeline.credit.risk_hold_ratio": r, "pipeline.reconcile": {"every": f"{period}s"},
        "faults": [{"type": "rule_lag", "at": f"{a}s", "for": f"{rollback - a}s", "hold_ratio": h}],
    }), processes=1, progress=False)
    phase = result["phases"]["rule_lag"]
    n = phase["reads"]
    expected = (1 - r) * h * (release - check - a) / (rollback - a)
    assert n == phase["repayments"] > 30_000
    assert abs(phase["stale_reads"] / n - expected) <= 4 * math.sqrt(expected * (1 - expected) / n)
    m = result["metrics"]
    # every stale read is the rule's; legitimate holds are counted apart and never stale
    assert m["stale_reads_by_cause"]["rule_lag"] == m["stale_reads"] == phase["stale_reads"]
    assert abs(m["risk_holds"] - r * m["repayments"]) <= 4 * math.sqrt(m["repayments"] * r * (1 - r))
    # a caught repayment's view turns usable at the release: time to usable up to X - a
    assert m["time_to_usable"]["max"] <= release - a + 1.0


def test_rule_lag_without_reconcile_is_never_released():
    """Reconcile off: what the rule caught stays unusable for the rest of the run; never_usable
    counts the risk holds and the caught, and every read of a caught repayment is stale (its user
    calls support). The caught are a thinning of the Poisson acks: a Poisson count of mean h times
    the window's expected released repayments."""
    h, a, length = 0.3, 200.0, 300.0
    m = _metrics(_scenario(**{
        "duration": "1000s", "workload.arrivals.rate": 50, "pipeline.credit.risk_hold_ratio": 0.05,
        "faults": [{"type": "rule_lag", "at": f"{a}s", "for": f"{length}s", "hold_ratio": h}],
    }))
    caught = m["never_usable"] - m["risk_holds"]
    window = 50 * length * 0.95  # released repayments acked in the window, expected
    assert abs(caught - h * window) <= 4 * math.sqrt(h * window)
    assert m["stale_reads"] == 3 * caught == 3 * m["support_contacts"]
    assert m["stale_reads_by_cause"]["rule_lag"] == m["stale_reads"]


def _phantom(**over):
    """The theory scenario with phantom records at ``rate`` in [a, a + length) and sweeps every ``period``."""
    rate, a, length, period, looks = over.pop("rate"), over.pop("a"), over.pop("length"), over.pop("period"), \
        over.pop("looks")
    return _scenario(**{
        "duration": "1500s", "pipeline.reconcile": {"every": "off" if period is None else f"{period}s"},
        "faults": [{"type": "phantom_record", "at": f"{a}s", "for": f"{length}s", "rate": rate,
                    "holder_looks": [f"{d}s" for d in looks]}], **over})


def test_phantom_record_holders_stale_looks_match_the_time_to_the_next_sweep():
    """Writes at rate q in the middle of each 1/q slot of [a, a + L), sweeps every P, looks at d_k
    after the write, the holder stopping at the first usable one. With a and L multiples of P and
    q P an integer, each sweep period holds qP writes whose times to the repairing sweep are
    (i - 1/2)/q, i = 1..qP: a look at d is stale for q(P - d) of them when q d is an integer. So,
    exactly (the writes are a steady rate: nothing here is sampled), stale looks = N Σ_k (1 - d_k/P)^+
    and looks taken = N (1 + Σ_{k<K} (1 - d_k/P)^+), N = q L. Repaying users are the run without
    the fault, read for read: the fault draws nothing."""
    q, a, length, period, looks = 0.5, 300.0, 600.0, 200.0, (20.0, 100.0, 250.0)
    with_fault = run_model(_phantom(rate=q, a=a, length=length, period=period, looks=looks),
                           processes=1, progress=False)
    m, phase = with_fault["metrics"], with_fault["phases"]["phantom_record"]
    n = q * length
    stale_share = [max(0.0, 1 - d / period) for d in looks]
    assert m["phantom_records"] == phase["phantom_records"] == n
    assert m["stale_reads_by_cause"]["phantom_record"] == m["stale_reads"] == round(n * sum(stale_share))
    assert m["holder_reads"] == phase["holder_reads"] == round(n * (1 + sum(stale_share[:-1])))
    without = _metrics(_scenario(**{"duration": "1500s", "pipeline.reconcile": {"every": f"{period}s"}}))
    assert m["repayments"] == without["repayments"] and m["affected_ratio"] == without["affected_ratio"]
    assert m["reads"] - m["holder_reads"] == without["reads"]
    assert m["support_contacts"] == without["support_contacts"] == 0


def test_phantom_record_off_the_sweep_grid_stays_within_one_write_per_period_and_look():
    """Off the grid (a, L not multiples of P, q P and q d not integers): a write at w has its look
    at d stale iff w < S - d, S the sweep ending w's period, so the stale looks are the writes in
    the union over periods of [lo, min(hi, S - d)), [lo, hi) the window's part of the period. A
    steady rate puts q x ± 1 writes in an interval of length x, so the count is within one write
    per period and look of q times that measure."""
    q, a, length, period, looks = 0.7, 130.0, 730.0, 170.0, (13.0, 77.0)
    m = _metrics(_phantom(rate=q, a=a, length=length, period=period, looks=looks))
    assert m["phantom_records"] == math.ceil(q * length - 0.5)
    end = a + length
    sweeps = [k * period for k in range(1, math.ceil(end / period) + 1) if k * period > a]
    measure = sum(max(0.0, min(min(end, s), s - d) - max(a, s - period)) for s in sweeps for d in looks)
    assert abs(m["stale_reads_by_cause"]["phantom_record"] - q * measure) <= len(looks) * len(sweeps)


def test_phantom_record_without_reconcile_shows_the_debt_to_every_look():
    """Reconcile off: nothing repairs a phantom record, so every look of every holder is stale."""
    q, looks = 0.2, (10.0, 60.0, 300.0)
    m = _metrics(_phantom(rate=q, a=100.0, length=500.0, period=None, looks=looks))
    n = q * 500.0
    assert m["phantom_records"] == n
    assert m["holder_reads"] == m["stale_reads"] == m["stale_reads_by_cause"]["phantom_record"] == n * len(looks)
