"""Do the intervals and the agreement verdict keep their promises over many seeds?

The process: an M/M/2 sync pool at ρ = 0.8 (arrivals 1.6/s, exponential service of mean
1 s, no other delay), users checking first after a lognormal time (median 2 s, p95 20 s)
and then every 10 s, at most 4 times. Everything the checks need is closed-form: the time
to usable T is the M/M/c sojourn time (Erlang C), so P(T > t) is exact, and with the first
check F independent of T the long-run stale-read ratio is

    Σ_k P(T > F + 10k) / Σ_k P(T > F + 10(k−1)),   k = 0..3 (the k = 0 read always happens),

integrated over F. A busy pool whose waits are correlated over tens of seconds, and
users whose reads are correlated with each other: exactly where a binomial interval over
reads fails (it covers 125 of 200 seeds here, half-width 0.0140 against a seed-to-seed
1.96·sd of 0.0325).

Tolerances come from the number of seeds: with ``n`` independent seeds and true coverage
0.95, hits ~ Binomial(n, 0.95); CI's 100 seeds must give ≥ 90 hits (P(≤ 89) = 1.1 % for a
correct 95 % interval); the soak's 400 need ≥ 369 (P(≤ 368) = 1.1 %). "Not padded": the
mean half-width is at most 1.5 × the seeds' 1.96·sd (a correct t-interval on 19 d.o.f.
gives ≈ 1.05×; the sd of 100 seeds is itself within ±15 % at 95 %).
"""

from __future__ import annotations

import copy
import functools
import math
import statistics

import pytest

from repaychaos.reports.compare import compare_results
from repaychaos.scenarios import load_scenario_data, resolve_scenario
from repaychaos.sim.simulate import run_model
from builders import scenario_data

pytestmark = pytest.mark.slow

C, MU, LAM, EVERY, MAX_CHECKS = 2, 1.0, 1.6, 10.0, 4
FIRST_MEDIAN, FIRST_P95 = 2.0, 20.0


def busy_pool(seed: int, minutes: int) -> object:
    return load_scenario_data(scenario_data(
        {"workload.arrivals.rate": LAM,
         "workload.check": {"first_after": {"dist": "lognormal", "median": f"{FIRST_MEDIAN}s", "p95": f"{FIRST_P95}s"},
                            "every": f"{EVERY}s", "max_checks": MAX_CHECKS},
         "pipeline": {"channel": {"latency": 0},
                      "sync": {"workers": C, "service": {"dist": "exponential", "mean": f"{1 / MU}s"}},
                      "credit": {"service": 0, "risk_hold_ratio": 0}, "view": {"cache_ttl": 0},
                      "reconcile": {"every": "off"}}},
        name="busy-pool", duration=f"{minutes}m", warmup="5m", seed=seed, replications=1))


@functools.cache
def theory() -> dict[str, float]:
    """Long-run stale-read ratio, p50 and p95 of the time to usable (M/M/2 sojourn, Erlang C)."""
    from scipy import integrate, optimize, stats

    a = LAM / MU
    tail = a**C / math.factorial(C) * C / (C - a)
    erlang_c = tail / (sum(a**k / math.factorial(k) for k in range(C)) + tail)
    theta = C * MU - LAM

    def survival(t: float) -> float:  # P(Wq + S > t): Wq = 0 w.p. 1 − C, else Exp(θ); S ~ Exp(μ)
        if t <= 0:
            return 1.0
        mixed = (theta * math.exp(-MU * t) - MU * math.exp(-theta * t)) / (theta - MU)
        return (1 - erlang_c) * math.exp(-MU * t) + erlang_c * mixed

    first = stats.lognorm(s=math.log(FIRST_P95 / FIRST_MEDIAN) / stats.norm.ppf(0.95), scale=FIRST_MEDIAN)

    def expect(g) -> float:
        return integrate.quad(lambda f: g(f) * first.pdf(f), 0, math.inf, limit=200)[0]

    reads = sum(expect(lambda f, k=k: survival(f + EVERY * (k - 1)) if k else 1.0) for k in range(MAX_CHECKS))
    stale = sum(expect(lambda f, k=k: survival(f + EVERY * k)) for k in range(MAX_CHECKS))
    out = {"stale_read_ratio": stale / reads}
    for key, q in (("p50", 0.5), ("p95", 0.95)):
        out[key] = optimize.brentq(lambda t: survival(t) - (1 - q), 1e-9, 1e3)
    return out


def test_theory_matches_its_closed_form_pieces():
    """Erlang C for M/M/2 at a = 1.6 is 6.4/9; the ratio lies between the first-read and all-read bounds."""
    th = theory()
    assert 0.30 < th["stale_read_ratio"] < 0.36 and 1.9 < th["p50"] < 2.2 and 7.5 < th["p95"] < 8.3


def runs(seeds: range, minutes: int) -> list[dict]:
    return [run_model(busy_pool(seed, minutes), processes=1, progress=False) for seed in seeds]


def coverage(results: list[dict], th: dict[str, float]) -> dict[str, tuple[int, float, float]]:
    """Per metric: hits, mean half-width, 1.96·sd of the value across seeds."""
    out = {}
    for key in ("stale_read_ratio", "p50", "p95"):
        if key == "stale_read_ratio":
            values = [r["metrics"][key]["value"] for r in results]
            cis = [r["metrics"][key]["ci95"] for r in results]
        else:
            values = [r["metrics"]["time_to_usable"][key] for r in results]
            cis = [r["metrics"]["intervals"][f"time_to_usable.{key}"]["ci95"] for r in results]
        hits = sum(lo <= th[key] <= hi for lo, hi in cis)
        half = statistics.mean((hi - lo) / 2 for lo, hi in cis)
        out[key] = (hits, half, 1.96 * statistics.stdev(values))
    return out


@pytest.fixture(scope="module")
def busy_runs():
    """100 seeds of 95 minutes (90 measured, ~8,600 repayments each), one replication each (~20 s)."""
    return runs(range(5000, 5100), 95)


@pytest.mark.parametrize("key", ["stale_read_ratio", "p50"])
def test_one_run_interval_covers_the_long_run_value(busy_runs, key):
    """≥ 90 of 100 single-replication intervals cover the closed-form value, and are not padded.
    (p95 falls short of 95 %: see ``_P95_SHORTFALL`` and the floor test below.)"""
    hits, half, spread = coverage(busy_runs, theory())[key]
    assert hits >= 90, (hits, half, spread)
    assert half <= 1.5 * spread, (half, spread)


def _floor_hits(seeds: int, floor: float = 0.90) -> int:
    """Fewest hits of ``seeds`` an interval covering ``floor`` of the time shows in 99 % of runs."""
    from scipy import stats

    return int(stats.binom.ppf(0.01, seeds, floor))


def test_one_run_p95_interval_keeps_the_ninety_percent_floor(busy_runs):
    """The p95 interval is known to under-cover (~91-92.5 % measured, see ``_P95_SHORTFALL``);
    it must not slip below a 90 % floor: with 100 seeds at a true 90 %, 99 % of
    runs show ≥ 83 hits. Not padded either."""
    hits, half, spread = coverage(busy_runs, theory())["p95"]
    assert hits >= _floor_hits(100), (hits, half, spread)
    assert half <= 1.5 * spread, (half, spread)


def test_a_correct_model_agrees_with_itself(busy_runs):
    """50 disjoint pairs of seeds are both "correct": Holm keeps the chance of a false "disagree"
    ≤ 5 %, so ≥ 44 of 50 pairs agree (P(≤ 43 | 0.95) = 1.2 %)."""
    agreed = 0
    for k in range(50):
        load = copy.deepcopy(busy_runs[2 * k + 1])
        load["source"] = "load"
        agreed += compare_results(busy_runs[2 * k], load)["agree"]
    assert agreed >= 44


def _scaled_stale(result: dict, factor: float) -> dict:
    """The result as if every stale read were counted ``factor`` times: ratio, interval and se scale."""
    out = copy.deepcopy(result)
    out["source"] = "load"
    node = out["metrics"]["stale_read_ratio"]
    node["value"] *= factor
    node["ci95"] = [x * factor for x in node["ci95"]]
    node["se"] *= factor
    out["metrics"]["stale_reads"] = round(out["metrics"]["stale_reads"] * factor)
    return out


@pytest.fixture(scope="module")
def quiet_baseline():
    """The bundled quiet-baseline at its defaults (2 h, 10/s, 4 replications; ~5 s)."""
    return run_model(resolve_scenario("quiet-baseline"), processes=1, progress=False)


def test_ten_percent_bias_is_caught_at_quiet_baseline_size(quiet_baseline):
    """Stale counts scaled by 1.1 against the unscaled model (4 replications each side): disagree on
    stale_read_ratio and nothing else; the stated 80 %-power bias for such a pair is ≈ 10 %."""
    comparison = compare_results(quiet_baseline, _scaled_stale(quiet_baseline, 1.1))
    assert comparison["agree"] is False and comparison["disagree_on"] == ["stale_read_ratio"]
    assert comparison["power"]["min_detectable_relative_bias"] < 0.12


def test_no_bias_agrees_at_quiet_baseline_size(quiet_baseline):
    """The same record against itself: every metric agrees (p = 1)."""
    comparison = compare_results(quiet_baseline, _scaled_stale(quiet_baseline, 1.0))
    assert comparison["agree"] is True


@pytest.fixture(scope="module")
def soak_runs():
    """400 seeds of 4 h (~22,000 repayments each; a few minutes)."""
    return runs(range(9000, 9400), 245)


#: Known shortfall: the p95 jackknife covers about 91 %, not 95 % (366 of 400 seeds at 4 h, 359
#: of 400 at 90 min), because runs without a long congestion episode have both a low p95 and a
#: small spread (estimate and standard error correlate ≈ 0.8). Neither a log-scale jackknife
#: nor 10 batches instead of 20 changes that.
_P95_SHORTFALL = pytest.mark.xfail(reason="p95 interval covers ~91% (366/400 measured), not 95%", strict=False)


@pytest.mark.soak
@pytest.mark.parametrize("key", ["stale_read_ratio", "p50", pytest.param("p95", marks=_P95_SHORTFALL)])
def test_one_run_interval_covers_the_long_run_value_soak(soak_runs, key):
    """400 seeds of 4 h: ≥ 369 hits (P(≤ 368 | 0.95) = 1.1 %), half-width ≤ 1.5 × 1.96·sd."""
    hits, half, spread = coverage(soak_runs, theory())[key]
    assert hits >= 369, (hits, half, spread)
    assert half <= 1.5 * spread, (half, spread)


@pytest.mark.soak
def test_one_run_p95_interval_keeps_the_ninety_percent_floor_soak(soak_runs):
    """400 seeds of 4 h: p95's coverage is not below 90 % (≥ the binomial 1 % quantile at 0.90)."""
    hits, half, spread = coverage(soak_runs, theory())["p95"]
    assert hits >= _floor_hits(400), (hits, half, spread)


def paused_pool(seed: int, replications: int) -> object:
    """The busy pool with a 10-minute sync pause in a 60-minute run: batches differ by position."""
    data = copy.deepcopy(busy_pool(seed, 60).normalised())
    data.update(replications=replications, faults=[{"type": "maintenance", "component": "sync", "at": 1500.0,
                                                    "for": 600.0}])
    return load_scenario_data(data)


def _paused_run(seed: int, replications: int) -> dict:
    return run_model(paused_pool(seed, replications), processes=1, progress=False)


def _in_two_processes(fn, calls: list[tuple]) -> list:
    """``[fn(*c) for c in calls]`` over two processes (each run is seeded: the order of work does not matter)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as pool:
        return list(pool.map(fn, *zip(*calls)))


def test_replications_paired_by_batch_cover_a_fault_window_without_padding():
    """Two replications of a run with a pause: the interval (within batch positions, 2·20 − 20
    d.o.f.) covers the long-run stale-read ratio in ≥ the binomial 1 % quantile of 60 seeds at
    0.95, and its mean half-width is at most 1.5 × the seeds' 1.96·sd (pooling all 40 batches
    would count the pause as noise: several times wider)."""
    from scipy import stats

    seeds = range(1000, 1060)
    truth = run_model(paused_pool(7, 40), processes=1, progress=False)["metrics"]["stale_read_ratio"]["value"]
    values, halves, hits = [], [], 0
    for result in _in_two_processes(_paused_run, [(seed, 2) for seed in seeds]):
        node = result["metrics"]["stale_read_ratio"]
        low, high = node["ci95"]
        hits += low <= truth <= high
        values.append(node["value"])
        halves.append((high - low) / 2)
    need = int(stats.binom.ppf(0.01, len(seeds), 0.95))
    print(f"paired batches: {hits}/{len(seeds)} covered; mean half-width {statistics.mean(halves):.5f}, "
          f"1.96·sd {1.96 * statistics.stdev(values):.5f}")
    assert hits >= need, (hits, need)
    assert statistics.mean(halves) <= 1.5 * 1.96 * statistics.stdev(values)


def test_paired_comparison_keeps_its_error_rate_across_a_fault_window():
    """Model (4 replications) against one "measured" run of the paused pool, both correct, 60
    seed pairs: the paired-by-position test of stale_read_ratio rejects at most the binomial
    99 % quantile of 60 × 5 % (7), and is far tighter than the two-sample test, whose single
    run counts the pause as noise (measured over 200 pairs: paired 7/200 rejections with se
    0.0033, two-sample 0/200 with se 0.046)."""
    from scipy import stats

    from repaychaos.reports.compare import _estimate, paired_test, two_sample_test

    rejected, ratio = 0, []
    runs = _in_two_processes(_paused_run, [(seed, reps) for i in range(60) for seed, reps in ((7000 + i, 4), (8000 + i, 1))])
    for i in range(60):
        model, measured = runs[2 * i], runs[2 * i + 1]
        _diff, p, se, _dof = paired_test(model, measured, "stale_read_ratio")
        m, _, m_se, m_dof = _estimate(model, "stale_read_ratio")
        s, _, s_se, s_dof = _estimate(measured, "stale_read_ratio")
        ratio.append(se / two_sample_test(m, m_se, m_dof, s, s_se, s_dof)[1])
        rejected += p < 0.05
    assert rejected <= int(stats.binom.ppf(0.99, 60, 0.05)), rejected
    assert statistics.mean(ratio) < 0.25, statistics.mean(ratio)
