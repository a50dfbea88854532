"""Accounts (docs/explanation/semantics.md, 14 and 14a): the account's view rule exactly,
its reduction to a repayment of its own, and the cases whose regressions are known."""

from __future__ import annotations

import math
import random

import pytest

from repaychaos.core.collector import MetricsCollector, finalize
from repaychaos.core.streams import keyed_uniform
from repaychaos.scenarios import load_scenario_data, resolve_scenario, with_overrides
from repaychaos.core.errors import InvalidScenario
from repaychaos.semantics import (AccountRepayment, account_of, account_shares, account_views, view_at,
                                  view_history)
from repaychaos.sim.accounts import REST_STEP, AccountBook, account_for
from repaychaos.sim.event_engine import Model
from repaychaos.sim.fast_engine import FastModel

INF = math.inf


def sweeps(every: float):
    def next_sweep(t: float) -> float:
        return math.ceil(t / every) * every if t > 0 else every
    return next_sweep


def rep(ack: float, write: float | None, *, held: bool = False, wrong: bool = False,
        kept_until: float | None = None, unguarded: str | None = None) -> AccountRepayment:
    return AccountRepayment(ack, held, write, wrong, kept_until, unguarded)


# ---------------------------------------------------------------------- the rule, exactly

def test_a_newer_write_makes_an_older_repayment_usable():
    """Sequence 2 written first carries the ledger state with 1: both read usable at its write."""
    first, second = account_views([rep(1.0, 9.0), rep(2.0, 5.0)], sweeps(600.0))
    assert first.changes == [(5.0, True)] and second.changes == [(5.0, True)]
    assert first.regressed == second.regressed == 0


def test_versioned_writes_discard_the_older_one():
    """The guard: sequence 1's late write lands on a view at version 2 and changes nothing."""
    views = account_views([rep(1.0, 9.0), rep(2.0, 5.0)], sweeps(600.0))
    assert [v.changes for v in views] == [[(5.0, True)], [(5.0, True)]]
    assert not any(v.regressions for v in views)


def test_an_unguarded_older_write_regresses_the_newer_repayment_until_the_sweep():
    """No guard: sequence 1 lands at 9 over version 2; repayment 2 reads unusable from 9 to the
    sweep at 600, blamed on the fault; one regression, counted on the writer."""
    first, second = account_views([rep(1.0, 9.0, unguarded="unversioned_writes"), rep(2.0, 5.0)], sweeps(600.0))
    assert first.changes == [(5.0, True)]
    assert second.changes == [(5.0, True), (9.0, False), (600.0, True)]
    assert second.regressions == [("unversioned_writes", 9.0)]
    assert first.regressed == 1 and second.regressed == 0


def test_a_later_write_repairs_a_regression_before_the_sweep():
    """Three repayments: 3 lands, 1 regresses it, 2 (guarded, version 1 now) restores 2 but not 3."""
    views = account_views([rep(1.0, 8.0, unguarded="u"), rep(2.0, 12.0), rep(3.0, 6.0)], sweeps(600.0))
    assert views[2].changes == [(6.0, True), (8.0, False), (600.0, True)]
    assert views[1].changes == [(6.0, True), (8.0, False), (12.0, True)]
    assert views[0].regressed == 1


def test_the_writes_in_ledger_order_never_regress_even_unguarded():
    views = account_views([rep(float(k), 10.0 + k, unguarded="u") for k in range(5)], sweeps(600.0))
    assert all(v.regressed == 0 and not v.regressions for v in views)
    assert [v.changes for v in views] == [[(10.0 + k, True)] for k in range(5)]


def test_a_held_repayment_applies_nothing_and_keeps_its_own_rule():
    first, second = account_views([rep(1.0, 3.0), rep(2.0, 4.0, held=True)], sweeps(600.0))
    assert first.changes == [(3.0, True)]
    assert second.changes == []  # its reads are judged by its own view history


@pytest.mark.parametrize("trial", range(400))
def test_one_repayment_on_an_account_is_the_view_of_its_own(trial):
    """With one repayment the account's view is rules 2-9's view history, instant for instant."""
    rng = random.Random(trial)
    every = rng.choice([30.0, 60.0, 600.0])
    next_sweep = sweeps(every)
    ack = rng.uniform(0, 300)
    write = None if rng.random() < 0.2 else ack + rng.expovariate(1 / 40)
    wrong = rng.random() < 0.3
    kept = None if rng.random() < 0.6 or write is None else rng.choice([write + rng.uniform(0, 200), INF])
    (view,) = account_views([rep(ack, write, wrong=wrong, kept_until=kept)], next_sweep)
    usable_at, changes, _ = view_history(ack, False, write, wrong, next_sweep, kept)
    own = changes if changes is not None else ([(usable_at, True)] if usable_at != INF else [])
    for t in [ack + k * 3.7 for k in range(400)]:
        assert view_at(view.changes, t) == view_at(own, t), (t, view.changes, own)


@pytest.mark.parametrize("trial", range(200))
def test_the_view_after_a_sweep_is_computed_from_that_sweep_alone(trial):
    """``since`` a sweep: the same view at every instant after it as the whole account's."""
    rng = random.Random(1000 + trial)
    next_sweep = sweeps(60.0)
    acks = sorted(rng.uniform(0, 400) for _ in range(rng.randint(2, 12)))
    reps = [rep(a, None if rng.random() < 0.1 else a + rng.expovariate(1 / 20), held=rng.random() < 0.1,
                wrong=rng.random() < 0.2, unguarded="u" if rng.random() < 0.5 else None) for a in acks]
    full = account_views(reps, next_sweep)
    since = rng.choice([60.0, 120.0, 180.0, 240.0])
    part = account_views(reps, next_sweep, since)
    # the first repayments acked and written (or never written) by the sweep: left out
    done = 0
    while done < len(reps) and reps[done].ack <= since and (reps[done].write is None or reps[done].write <= since):
        done += 1
    rest = account_views(reps[done:], next_sweep, since, done)
    for i, (whole, cut, r) in enumerate(zip(full, part, reps)):
        if r.held:
            continue
        for t in [since + k * 1.3 for k in range(300)]:
            assert view_at(whole.changes, t) == view_at(cut.changes, t)
            if i >= done:
                assert view_at(rest[i - done].changes, t) == view_at(whole.changes, t)
            else:
                assert view_at(whole.changes, t)  # shown by the sweep, never put back


# ---------------------------------------------------------------------- the assignment

def test_accounts_are_uniform_and_keyed_by_the_arrival():
    counts = [0] * 10
    for i in range(20_000):
        counts[account_for(7, 0, i, 10)] += 1
    assert all(1_800 < c < 2_200 for c in counts)
    assert account_for(7, 0, 123, 10) == account_of(keyed_uniform(7, 0, "account/123"), 10)
    assert account_for(7, 0, 123, 1) == 0


# ---------------------------------------------------------------------- the engines

def _scenario(accounts: int, faults: list, **pipeline) -> object:
    pipe = {"channel": {"latency": "100ms"}, "sync": {"workers": 4, "service": {"dist": "exponential",
                                                                                "mean": "400ms"}},
            "credit": {"service": "20ms"}, "reconcile": {"every": "2m"}}
    pipe.update(pipeline)
    return load_scenario_data({
        "version": 1, "name": "accounts", "duration": "8m", "warmup": "30s", "seed": 5,
        "workload": {"accounts": accounts, "arrivals": {"rate": "6/s"},
                     "check": {"first_after": "3s", "every": "5s", "max_checks": 4}},
        "pipeline": pipe, "faults": faults})


def _metrics(sc, engine=Model):
    col = MetricsCollector.for_scenario(sc)
    engine(sc, sc.seed, 0, col).run()
    return finalize([col.state])["metrics"]


UNGUARDED = [{"type": "unversioned_writes", "at": "1m", "for": "6m"}]


def test_an_unguarded_write_after_a_sweep_that_showed_newer_repayments_regresses():
    """The sweep at 600 shows both repayments; sequence 1's write lands at 601 unguarded and
    puts 2 back until 2's own write at 602."""
    first, second = account_views([rep(590.0, 601.0, unguarded="u"), rep(595.0, 602.0)], sweeps(600.0))
    assert second.changes == [(600.0, True), (601.0, False), (602.0, True)]
    assert first.regressed == 1 and second.regressions == [("u", 601.0)]


def test_a_single_worker_with_constant_delays_never_regresses():
    """FIFO with one worker, constant delays and no sweep: writes land in ledger order, so
    removing the guard changes nothing (semantics 14a)."""
    sc = _scenario(3, UNGUARDED, sync={"workers": 1, "service": "100ms"}, reconcile={"every": "off"})
    m = _metrics(sc)
    assert m["view_regressions"] == 0
    assert m["stale_reads_by_cause"]["unversioned_writes"] == 0
    assert m == _metrics(with_overrides(sc, {"faults": []})) | {"stale_reads_by_cause": m["stale_reads_by_cause"]}


def test_a_busy_pool_with_the_guard_removed_regresses_and_blames_the_fault():
    sc = _scenario(3, UNGUARDED)
    m = _metrics(sc)
    guarded = _metrics(with_overrides(sc, {"faults": []}))
    assert m["view_regressions"] > 0 and m["stale_reads_by_cause"]["unversioned_writes"] > 0
    assert guarded["view_regressions"] == 0 and "unversioned_writes" not in guarded["stale_reads_by_cause"]
    assert m["stale_reads"] > guarded["stale_reads"]
    assert m["repayments"] == guarded["repayments"]  # the fault draws nothing


def test_without_accounts_the_metric_is_not_written_and_the_fault_does_nothing():
    sc = with_overrides(_scenario(3, UNGUARDED), {"workload.accounts": None})
    m = _metrics(sc)
    assert "view_regressions" not in m
    assert m["stale_reads_by_cause"]["unversioned_writes"] == 0


def test_the_fast_engine_computes_accounts_as_the_event_engine_does():
    sc = _scenario(3, UNGUARDED)
    assert _metrics(sc, FastModel) == _metrics(sc, Model)


def test_a_view_regressions_slo_needs_accounts():
    data = {"version": 1, "name": "x", "duration": "5m", "workload": {"arrivals": {"rate": "1/s"}},
            "slo": {"view_regressions": "== 0"}}
    with pytest.raises(InvalidScenario, match="to come with workload.accounts"):
        load_scenario_data(data)
    data["workload"]["accounts"] = 10
    assert load_scenario_data(data).workload.accounts == 10


def test_the_bundled_scenario_shows_regressions_during_its_window_only():
    sc = with_overrides(resolve_scenario("out-of-order-status-writes"), {"replications": 1, "duration": "45m"})
    col = MetricsCollector.for_scenario(sc)
    Model(sc, sc.seed, 0, col).run()
    result = finalize([col.state])
    assert result["metrics"]["view_regressions"] > 0
    assert result["phases"]["after"]["view_regressions"] == 0
    assert result["phases"]["after"]["stale_reads_by_cause"]["unversioned_writes"] == 0


def test_regressions_meet_the_closed_form_of_rare_overlaps():
    """Closed form (semantics 14a): unlimited workers with exponential service of rate mu,
    constant other delays, no sweep, the guard removed throughout. Two repayments of one
    account, acked d apart, are written out of order with probability exp(-mu d) / 2; an
    account's repayments arrive at lam / N, so while overlaps are rare (lam / (N mu) << 1) each
    repayment's write regresses its account with probability lam / (2 N mu)."""
    lam, accounts, mu = 20.0, 1000, 1.0
    sc = load_scenario_data({
        "version": 1, "name": "closed-form", "duration": "30m", "warmup": "1m", "seed": 17,
        "workload": {"accounts": accounts, "arrivals": {"rate": f"{lam:g}/s"},
                     "check": {"first_after": "5s", "every": "5s", "max_checks": 2}},
        "pipeline": {"channel": {"latency": "100ms"},
                     "sync": {"workers": "unlimited", "service": {"dist": "exponential", "mean": f"{1 / mu:g}s"}},
                     "credit": {"service": "20ms"}, "reconcile": {"every": "off"}},
        "faults": [{"type": "unversioned_writes"}]})
    m = _metrics(sc)
    expected = m["repayments"] * lam / (2 * accounts * mu)
    assert abs(m["view_regressions"] - expected) < 0.2 * expected, (m["view_regressions"], expected)


@pytest.mark.slow
def test_the_bundled_accounts_at_rest_are_observed_as_after_the_run(monkeypatch):
    """The same on the bundled scenario, where instalments seconds apart land out of order.
    Replications 1 and 3 (not 0 and 2) of its seed have an older write landing after a grid
    instant at which the rest of its group was settled, putting back a later repayment:
    they tell a book that ignored the group's late writes (the condition is needed)."""
    sc = with_overrides(resolve_scenario("out-of-order-status-writes"), {"replications": 1, "duration": "45m"})

    def metrics(index: int) -> dict:
        col = MetricsCollector.for_scenario(sc)
        FastModel(sc, sc.seed, index, col).run()
        return finalize([col.state])["metrics"]

    at_rest = [metrics(index) for index in (1, 3)]
    assert all(m["view_regressions"] > 0 for m in at_rest)
    monkeypatch.setattr(AccountBook, "settle", lambda self, complete_before: None)
    assert [metrics(index) for index in (1, 3)] == at_rest


def test_accounts_at_rest_are_observed_as_after_the_run(monkeypatch):
    """Observing an account's repayments once at rest (semantics 14) gives the metrics of
    observing every account after the run: what a group's users read cannot depend on the
    repayments acked after the instant it is at rest. Exact equality, both engines, on a
    busy pool with the guard removed (regressions), a rule lag (accounts kept from sweeps)
    and dropped writes (repaired by a sweep or a later write), where groups are often not
    at rest."""
    sc = _scenario(20, UNGUARDED + [{"type": "rule_lag", "at": "2m", "for": "3m", "hold_ratio": 0.3},
                                    {"type": "interface_bug", "link": "sync->credit", "at": "2m", "for": "4m",
                                     "drop_ratio": 0.3}], reconcile={"every": "30s"})
    at_rest = {engine: _metrics(sc, engine) for engine in (Model, FastModel)}
    assert at_rest[Model] == at_rest[FastModel]
    causes = at_rest[Model]["stale_reads_by_cause"]
    assert at_rest[Model]["view_regressions"] > 0 and causes["rule_lag"] > 0 and causes["interface_bug"] > 0
    monkeypatch.setattr(AccountBook, "settle", lambda self, complete_before: None)
    assert _metrics(sc, Model) == at_rest[Model]


@pytest.mark.slow
@pytest.mark.parametrize("engine", [Model, FastModel])
def test_the_book_keeps_what_is_not_at_rest_not_the_run(engine):
    """Memory with accounts does not grow with the run: at 10 repayments/s on 100 accounts
    the book never keeps more than the repayments of the last few minutes — a group is at
    rest about a sync delay after its last ack and is looked for every REST_STEP (60 s) —
    plus, in the fast engine, one chunk of arrivals (2,048 here), whether the run is 30
    minutes or 2 hours (18k and 72k repayments)."""
    kept = {}
    for duration in ("30m", "2h"):
        sc = with_overrides(resolve_scenario("out-of-order-status-writes"), {"replications": 1, "duration": duration})
        col = MetricsCollector.for_scenario(sc)
        model = engine(sc, sc.seed, 0, col) if engine is Model else engine(sc, sc.seed, 0, col, chunk=2048)
        model.run()
        kept[duration] = model.book.most_waiting
    assert model.simulated > 20 * kept["2h"]
    bound = 10 * (REST_STEP + 60) + (2048 if engine is FastModel else 0)
    assert kept["2h"] <= bound, kept
    assert kept["2h"] < 1.2 * kept["30m"], kept


def test_skewed_accounts_follow_the_power_law():
    """workload.account_skew (semantics 14): account k's share is that of [k + 1, k + 2) under a
    density proportional to x^-s on [1, N + 1); s = 1 gives account 0 ln 2 / ln(N + 1). Over
    200,000 keyed uniforms each account's count is binomial: within 4.5 standard deviations for
    the five busiest accounts, at s = 1 and s = 2 (a chance failure would need a 4.5-sigma
    event: the draws are fixed, so this either always passes or never)."""
    n, draws = 1000, 200_000
    for skew in (1.0, 2.0):
        shares = account_shares(n, skew)
        assert sum(shares) == pytest.approx(1.0) and shares == sorted(shares, reverse=True)
        counts = [0] * 5
        for i in range(draws):
            k = account_for(3, 0, i, n, skew)
            if k < 5:
                counts[k] += 1
        for k in range(5):
            sd = math.sqrt(draws * shares[k] * (1 - shares[k]))
            assert abs(counts[k] - draws * shares[k]) < 4.5 * sd, (skew, k, counts[k], draws * shares[k])
    assert account_shares(n, 1.0)[0] == pytest.approx(math.log(2) / math.log(n + 1))
    # no skew is the uniform rule, draw for draw
    assert all(account_for(3, 0, i, n, 0.0) == account_for(3, 0, i, n) == account_of(
        keyed_uniform(3, 0, f"account/{i}"), n) for i in range(1000))


def test_a_skewed_spread_needs_accounts():
    data = {"version": 1, "name": "x", "duration": "5m", "workload": {"arrivals": {"rate": "1/s"},
                                                                     "account_skew": 1.0}}
    with pytest.raises(InvalidScenario, match="account_skew to come with workload.accounts"):
        load_scenario_data(data)


def test_skewed_accounts_regress_as_the_closed_form_of_their_rates():
    """The closed form of rare overlaps (semantics 14a) account by account: an account of
    share p_i has arrival rate r_i = lam p_i, and a repayment on it is overtaken by the next
    one with probability r_i / (2 (r_i + mu)) (the next ack within Exp(mu) of it, half the time
    out of order), so regressions per write ~ sum_i p_i r_i / (2 (r_i + mu)). At s = 1 over
    1,000 accounts the busiest takes 10 % of the load: about 20 times the regressions of the
    uniform spread. About 220 regressions are expected; 20 % is 3 Poisson standard
    deviations, and the form leaves out overtaking by the repayment after next (seeds 17, 18
    and 19 gave 230, 231 and 219 against 221, 223 and 222)."""
    lam, accounts, mu, skew = 4.0, 1000, 5.0, 1.0
    sc = load_scenario_data({
        "version": 1, "name": "closed-form-skew", "duration": "2h", "warmup": "1m", "seed": 17,
        "workload": {"accounts": accounts, "account_skew": skew, "arrivals": {"rate": f"{lam:g}/s"},
                     "check": {"first_after": "5s", "every": "5s", "max_checks": 2}},
        "pipeline": {"channel": {"latency": "100ms"},
                     "sync": {"workers": "unlimited", "service": {"dist": "exponential", "mean": f"{1 / mu:g}s"}},
                     "credit": {"service": "20ms"}, "reconcile": {"every": "off"}},
        "faults": [{"type": "unversioned_writes"}]})
    m = _metrics(sc, FastModel)
    per_write = sum(p * (lam * p) / (2 * (lam * p + mu)) for p in account_shares(accounts, skew))
    expected = m["repayments"] * per_write
    assert abs(m["view_regressions"] - expected) < 0.2 * expected, (m["view_regressions"], expected)
    uniform = m["repayments"] * lam / (2 * accounts * mu)
    assert m["view_regressions"] > 10 * uniform


def test_the_fast_engine_computes_skewed_accounts_as_the_event_engine_does():
    sc = with_overrides(_scenario(10, UNGUARDED), {"workload.account_skew": 1.5})
    assert _metrics(sc, FastModel) == _metrics(sc, Model)


# ---------------------------------------------------------------------- live

@pytest.mark.live
def test_live_accounts_regress_as_the_model_does_and_reads_match_the_trace():
    """Live, 10 accounts on 8 exponential workers with the guard removed throughout: the
    service's reads agree with the views it reports (no stale read blamed on a cache there is
    not), and the regressions per repayment are the model's, within 3.3 standard deviations
    of a Poisson count."""
    from honest import resolved

    from repaychaos.load.runner import run_load

    scenario = load_scenario_data({
        "version": 1, "name": "live-accounts", "duration": "60s", "seed": 23,
        "workload": {"accounts": 10, "arrivals": {"rate": "20/s"},
                     "check": {"first_after": "2s", "every": "2s", "max_checks": 3}},
        "pipeline": {"channel": {"latency": 0}, "sync": {"workers": 8,
                                                         "service": {"dist": "exponential", "mean": "300ms"}},
                     "credit": {"service": 0}, "reconcile": "off"},
        "faults": [{"type": "unversioned_writes"}],
    })
    result = run_load(scenario, time_scale=10.0, progress=False)
    if not resolved(result):
        return
    live = result["metrics"]
    assert live["stale_reads_by_cause"]["cache"] == 0
    assert live["view_regressions"] > 0 and live["stale_reads_by_cause"]["unversioned_writes"] > 0
    model = [_metrics(with_overrides(scenario, {"seed": seed})) for seed in range(1, 9)]
    rate = sum(m["view_regressions"] for m in model) / sum(m["repayments"] for m in model)
    expected = rate * live["repayments"]
    assert abs(live["view_regressions"] - expected) <= 3.3 * math.sqrt(expected) + 2, (live["view_regressions"],
                                                                                     expected)
