"""The model against textbook queueing: a single exponential delay, M/M/c waiting time
(Erlang C) and the backlog and drain after a sync pause (fluid limit / Little's law).

Every tolerance is four standard errors of the estimate, derived from the sample size
(binomial or across independent replications), so a correct model fails about once in
15,000 runs, while a wrong one (an off-by-one worker, a lost pause) fails every time.
"""

from __future__ import annotations

import math

import pytest

from theory_scenarios import erlang_c_wait, theory_scenario
from repaychaos.sim.simulate import run_model, run_replication

pytestmark = pytest.mark.slow


def _scenario(**over):
    """The theory scenario (tests/theory_scenarios.py) with seed 11 and 1 check(s)."""
    return theory_scenario(11, 1, **over)


def test_single_exponential_delay_gives_exponential_staleness_curve():
    """With unlimited workers and one exponential delay, P(still stale at t) = exp(-t/mean)."""
    mean = 2.0
    sc = _scenario(**{"duration": "2000s", "workload.arrivals.rate": 100,
                      "pipeline.sync.service": {"dist": "exponential", "mean": f"{mean}s"}})
    result = run_model(sc, processes=1, progress=False)
    m = result["metrics"]
    n = m["repayments"]
    assert n > 190_000
    for t, p in zip(m["visibility"]["t"], m["visibility"]["p_stale"]):
        expected = math.exp(-t / mean)
        sd = math.sqrt(expected * (1 - expected) / n)
        assert abs(p - expected) <= 4 * sd + 1e-12, (t, p, expected)
    # the mean of an exponential sample of size n has standard error mean / sqrt(n)
    assert abs(m["time_to_usable"]["mean"] - mean) <= 4 * mean / math.sqrt(n)


def _mmc_mean_time(c: int, lam: float, *, duration: str, warmup: str, seed: int, replications: int):
    """Grand mean time to usable over independent replications of an M/M/c sync pool (mu = 1),
    its standard error, and the Erlang-C answer Wq + 1/mu."""
    mu = 1.0
    expected = erlang_c_wait(lam, mu, c) + 1 / mu
    sc = _scenario(**{"duration": duration, "warmup": warmup, "workload.arrivals.rate": lam,
                      "pipeline.sync.workers": c,
                      "pipeline.sync.service": {"dist": "exponential", "mean": f"{1 / mu}s"}})
    means = []
    for index in range(replications):
        state = run_replication(sc, seed=seed, index=index)
        means.append(state.ttu.total / state.ttu.n)
    grand = sum(means) / len(means)
    # waits are autocorrelated, so the standard error comes from independent replications
    se = math.sqrt(sum((x - grand) ** 2 for x in means) / (len(means) - 1) / len(means))
    return grand, se, expected


def test_mmc_mean_wait_matches_erlang_c():
    """M/M/4 at rho = 0.8: mean time to usable = Erlang-C Wq + 1/mu (no other delays)."""
    grand, se, expected = _mmc_mean_time(4, 3.2, duration="20000s", warmup="500s", seed=5, replications=8)
    assert se < 0.02 * expected, "too few customers for the test to have power"
    assert abs(grand - expected) <= 4 * se, (grand, expected, se)


W_START, W_LEN, RATE, WORKERS, SERVICE = 1200.0, 600.0, 20.0, 4, 0.1


def _paused():
    return _scenario(**{
        "duration": "3600s", "workload.arrivals.rate": RATE,
        "workload.check": {"first_after": "5s", "every": "30s", "max_checks": 100},
        "pipeline.sync": {"workers": WORKERS, "service": f"{SERVICE}s"},
        "faults": [{"type": "maintenance", "component": "sync", "at": f"{W_START}s", "for": f"{W_LEN}s"}],
    })


def _fluid_ttu(u: float) -> float:
    """Fluid-limit time to usable of a repayment acked at u (pause, then drain at c/s - lambda)."""
    cap = WORKERS / SERVICE
    end = W_START + W_LEN
    if u < W_START:
        return SERVICE
    if u < end:
        ahead = RATE * (u - W_START)
        return (end - u) + ahead / cap + SERVICE
    backlog = RATE * W_LEN - (cap - RATE) * (u - end)
    return max(backlog, 0.0) / cap + SERVICE


def test_sync_pause_backlog_and_drain_time_follow_littles_law():
    """After a pause of W, the backlog is ~lambda*W and drains in lambda*W/(c/s - lambda)."""
    result = run_model(_paused(), processes=1, progress=False)
    series = result["series"]
    width = series["bin_width"]
    end = W_START + W_LEN
    first = int(end / width)
    # mean of the samples in [end, end + width): lambda*W minus the net drain over the bin
    offsets = [i * width / 4 for i in range(4)]
    expected = sum(RATE * W_LEN - (WORKERS / SERVICE - RATE) * o for o in offsets) / 4 + WORKERS
    assert abs(series["backlog_mean"][first] - expected) <= 4 * math.sqrt(RATE * W_LEN), series["backlog_mean"][first]
    drain = RATE * W_LEN / (WORKERS / SERVICE - RATE)
    drained = next(i * width for i in range(first, len(series["t"])) if series["backlog_mean"][i] < 10)
    # Poisson noise in lambda*W (and in the arrivals while draining) moves the end by
    # ~sqrt(2 lambda W)/(c/s - lambda) ~ 8 s; the bins are 15 s wide.
    assert abs(drained - (end + drain)) <= 2 * width + 4 * math.sqrt(2 * RATE * W_LEN) / (WORKERS / SERVICE - RATE)


def test_sync_pause_stale_reads_match_fluid_prediction_and_causes():
    """Stale reads of the paused and of the draining repayments match the fluid model; both are maintenance's.

    Repayments acked after the window still wait behind the backlog it left: SEMANTICS 3a
    attributes that wait to the pause, so ordinary queueing is left with (almost) nothing.
    """
    m = run_model(_paused(), processes=1, progress=False)["metrics"]
    first, every = 5.0, 30.0
    step = 0.01
    in_window = after = affected = 0.0
    u = 0.0
    while u < 3600.0:
        ttu = _fluid_ttu(u)
        if ttu > first:
            reads = math.ceil((ttu - first) / every)
            affected += RATE * step
            if W_START <= u < W_START + W_LEN:
                in_window += reads * RATE * step
            else:
                after += reads * RATE * step
        u += step
    by_cause = m["stale_reads_by_cause"]
    # In the window the count scales with the ~12,000 arrivals (Poisson, 0.9 %); 5 % is
    # over four standard errors. The drain part scales with the square of the backlog,
    # whose noise (window plus drain arrivals) is sqrt(24,000)/12,000 = 1.3 %: 2.6 % per
    # standard error, so 10 % is four.
    assert abs(by_cause["maintenance"] - (in_window + after)) <= 0.05 * in_window + 0.10 * after
    # Without the pause no check (first at 5 s) would be stale: service is constant and the
    # pool far from saturated, so at most a handful of reads are ordinary queueing.
    assert by_cause["queueing"] <= 0.001 * m["stale_reads"]
    assert m["stale_reads"] == by_cause["maintenance"] + by_cause["queueing"]
    assert abs(m["affected_ratio"]["value"] * m["repayments"] - affected) <= 0.05 * affected


@pytest.mark.soak
def test_mmc_heavy_load_matches_erlang_c_closely():
    """M/M/10 at rho = 0.9 over 16 long replications: mean wait within 4 standard errors of Erlang C."""
    grand, se, expected = _mmc_mean_time(10, 9.0, duration="100000s", warmup="2000s", seed=9, replications=16)
    assert se < 0.01 * expected
    assert abs(grand - expected) <= 4 * se, (grand, expected, se)
