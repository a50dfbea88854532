"""The fast engine against the event-driven reference: same records, same metrics, same bytes.

Both engines draw the same random numbers (the fast one in bulk, bit for bit) and apply
the same rules, so on the same seed they must observe the same repayments in the same
order — when each is observed (its sync completion), its ack, hold, view history,
touches and every read — and end with the same collector state, hence the same
result.json metrics. Nothing here is statistical: every comparison is exact equality.

Each case runs three times: the event engine, the fast engine with every repayment
through the per-message code (``bulk=False``: what is compared record by record), and
the fast engine as it runs by default (bulk arrays for the plain repayments: compared by
collector state and finalized metrics). Cases are every bundled scenario (shortened, and
at a lower rate where the run would be long: the faults stay in), every fault type alone
on a busy pool, and the compositions the semantics page names.
"""

from __future__ import annotations

import json
import math
import pickle
from typing import Any, Callable

import pytest

from repaychaos.core.collector import MetricsCollector, finalize
from repaychaos.scenarios import load_scenario_data, resolve_scenario, with_overrides
from repaychaos.sim.event_engine import Model
from repaychaos.sim.executor import engine_class
from repaychaos.sim.fast_engine import FastModel, unsupported
from repaychaos.sim.simulate import run_model


class Recording(MetricsCollector):
    """A collector that also keeps what it was handed, with the instant it was handed it (with
    accounts, the instant whose accounts at rest were being observed)."""

    clock: Callable[[], float]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.records: list[tuple[Any, ...]] = []

    def observe(self, rep, reads):  # type: ignore[override]
        reads = list(reads)
        self.records.append((self.clock(), rep.acked_at, rep.held, rep.view_usable_at,
                             tuple(rep.view_changes or ()), tuple(rep.touches), tuple(reads)))
        super().observe(rep, reads)

    def observe_holder(self, written_at, repaired_at, reads, cause):  # type: ignore[override]
        reads = list(reads)
        self.records.append((self.clock(), "holder", written_at, repaired_at, tuple(reads), cause))
        super().observe_holder(written_at, repaired_at, reads, cause)


def run_events(sc: Any, index: int = 0) -> tuple[Recording, Model]:
    col = Recording.for_scenario(sc)
    model = Model(sc, sc.seed, index, col)
    col.clock = lambda: model.env.now if model.book is None else model.book.observing_at
    model.run()
    return col, model


def run_fast(sc: Any, index: int = 0, *, bulk: bool, chunk: int = 2048) -> tuple[Recording, FastModel]:
    col = Recording.for_scenario(sc)
    model = FastModel(sc, sc.seed, index, col, chunk=chunk, bulk=bulk)
    col.clock = lambda: model.observing_at if model.book is None else model.book.observing_at
    model.run()
    return col, model


def assert_same(sc: Any, *, min_records: int = 100) -> Recording:
    events, ev_model = run_events(sc)
    exact, fx_model = run_fast(sc, bulk=False)
    assert ev_model.simulated == fx_model.simulated
    assert len(events.records) >= min_records
    latest = -math.inf
    for i, (a, b) in enumerate(zip(events.records, exact.records)):
        clock = a[0]
        if b[0] == math.inf and clock >= latest:
            # never served (an endless window): both observe it after the run, in the same order;
            # the event engine's clock then reads its last event, the fast engine's infinity
            a = (math.inf, *a[1:])
        latest = max(latest, clock)
        assert a == b, f"repayment #{i} observed differently:\n events {a}\n fast   {b}"
    assert len(events.records) == len(exact.records)
    bulk, _ = run_fast(sc, bulk=True)
    for col in (exact, bulk):
        assert pickle.dumps(col.state) == pickle.dumps(events.state)
    assert json.dumps(finalize([bulk.state]), sort_keys=True) == json.dumps(finalize([events.state]), sort_keys=True)
    return events


# ---------------------------------------------------------------------- the bundled scenarios

#: Overrides that keep each bundled scenario's faults inside a short run.
SHORT: dict[str, dict[str, Any]] = {
    "bad-day": {"duration": "4h15m", "workload.arrivals.rate": "1.5/s"},
    "impatient-payers": {"duration": "45m"},
    "cached-app-view": {"duration": "30m", "workload.arrivals.rate": "5/s"},
    "corrupting-interface": {"duration": "2h10m", "workload.arrivals.rate": "1.5/s"},
    "credit-rule-lag": {"duration": "1h35m", "workload.arrivals.rate": "2/s"},
    "interface-drop-reconcile": {"duration": "2h", "workload.arrivals.rate": "2/s"},
    "maintenance-reject": {"duration": "1h35m", "workload.arrivals.rate": "2/s"},
    "month-end-peak": {"duration": "15m", "workload.arrivals.profile": [
        {"at": "0s", "rate": "20/s"}, {"at": "5m", "rate": "75/s"}, {"at": "10m", "rate": "30/s"}]},
    "nightly-maintenance": {"duration": "1h30m", "workload.arrivals.rate": "3/s"},
    "out-of-order-status-writes": {"duration": "45m", "workload.arrivals.rate": "4/s"},
    "phantom-debt-until-reconcile": {"duration": "1h25m", "workload.arrivals.rate": "2/s"},
    "quiet-baseline": {"duration": "30m"},
    "risk-holds": {"duration": "30m"},
    "slow-sync": {},
    "system-cutover": {"duration": "1h50m", "workload.arrivals.rate": "3/s"},
}


def test_every_bundled_scenario_is_covered():
    """The table of shortened bundled scenarios names every bundled scenario."""
    from repaychaos.scenarios.library import bundled_scenarios

    assert sorted(SHORT) == sorted(bundled_scenarios())


@pytest.mark.parametrize("name", sorted(SHORT))
def test_bundled_scenario_same_records_and_metrics(name):
    """A bundled scenario (shortened): the fast engine computes it and matches the event engine exactly."""
    sc = with_overrides(resolve_scenario(name), SHORT[name])
    assert unsupported(sc) is None
    assert_same(sc)


# ---------------------------------------------------------------------- fault types alone, compositions

def busy(name: str, faults: list[dict[str, Any]], **pipeline: Any) -> Any:
    """6 minutes at 30/s on 4 workers of mean 100 ms (rho 0.75): queues form without faults."""
    pipe: dict[str, Any] = {"channel": {"latency": {"dist": "lognormal", "median": "100ms", "p95": "400ms"}},
                            "sync": {"workers": 4, "service": {"dist": "exponential", "mean": "100ms"}},
                            "credit": {"service": "20ms", "risk_hold_ratio": 0.05},
                            "reconcile": {"every": "2m"}}
    pipe.update(pipeline)
    return load_scenario_data({
        "version": 1, "name": name, "duration": "6m", "warmup": "30s", "seed": 11,
        "workload": {"arrivals": {"rate": "30/s"},
                     "check": {"first_after": {"dist": "lognormal", "median": "2s", "p95": "20s"},
                               "every": "5s", "max_checks": 4}},
        "pipeline": pipe, "faults": faults,
    })


CASES: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {
    "no-faults": ([], {}),
    "sync-delay": ([{"type": "sync_delay", "at": "2m", "for": "1m", "extra": {"dist": "pareto", "scale": "200ms",
                                                                              "shape": 1.5}}], {}),
    "sync-pause": ([{"type": "maintenance", "component": "sync", "at": "3m", "for": "40s"}], {}),
    "sync-pause-recurring": ([{"type": "maintenance", "component": "sync", "at": "1m", "for": "20s",
                               "every": "3m"}], {}),
    "sync-pause-endless": ([{"type": "maintenance", "component": "sync", "at": "5m"}], {}),
    "credit-reject": ([{"type": "maintenance", "component": "credit", "mode": "reject", "at": "2m", "for": "30s"}], {}),
    "view-pause": ([{"type": "maintenance", "component": "view", "at": "2m", "for": "30s"}], {}),
    "ledger-pause": ([{"type": "maintenance", "component": "ledger", "at": "2m", "for": "30s"}], {}),
    "ledger-reject": ([{"type": "maintenance", "component": "ledger", "mode": "reject", "at": "2m", "for": "30s"}], {}),
    "drop-ledger-sync": ([{"type": "interface_bug", "link": "ledger->sync", "at": "1m", "for": "3m",
                           "drop_ratio": 0.1}], {}),
    "corrupt-credit-view": ([{"type": "interface_bug", "link": "credit->view", "at": "1m", "for": "3m",
                              "drop_ratio": 0.05, "corrupt_ratio": 0.2}], {}),
    "cutover": ([{"type": "cutover", "at": "3m", "for": "1m", "inflight_loss_ratio": 0.5, "unmapped_ratio": 0.05}], {}),
    # rolled back at 3m30s, between the 2-minute sweeps: held until the sweep at 4m
    "rule-lag": ([{"type": "rule_lag", "at": "1m30s", "for": "2m", "hold_ratio": 0.2}], {}),
    "rule-lag-endless": ([{"type": "rule_lag", "at": "4m", "hold_ratio": 0.1}], {}),
    # writes between the 2-minute sweeps and across one, holders looking before and after it
    "phantom-record": ([{"type": "phantom_record", "at": "1m", "for": "3m", "rate": "1/s",
                         "holder_looks": ["10s", "30s", "1m30s"]}], {}),
    "phantom-record-endless": ([{"type": "phantom_record", "at": "5m", "rate": "0.5/s",
                                 "holder_looks": ["5s", "2m"]}], {}),
    # compositions (docs/explanation/semantics.md): each fault on its own, corruptions flip
    "two-corrupting-links": ([{"type": "interface_bug", "link": "ledger->sync", "corrupt_ratio": 0.3},
                              {"type": "interface_bug", "link": "credit->view", "corrupt_ratio": 0.3}], {}),
    "two-drops-two-links": ([{"type": "interface_bug", "link": "sync->credit", "at": "1m", "for": "3m",
                              "drop_ratio": 0.1},
                             {"type": "interface_bug", "link": "credit->view", "at": "2m", "for": "4m",
                              "drop_ratio": 0.1}], {}),
    "overlapping-pauses": ([{"type": "maintenance", "component": "sync", "at": "2m", "for": "40s"},
                            {"type": "maintenance", "component": "sync", "at": "2m20s", "for": "40s"}], {}),
    "delay-then-pause": ([{"type": "sync_delay", "at": "2m", "for": "1m", "extra": "300ms"},
                          {"type": "maintenance", "component": "sync", "at": "2m30s", "for": "30s"}], {}),
    "pause-then-cutover": ([{"type": "maintenance", "component": "sync", "at": "3m", "for": "30s"},
                            {"type": "cutover", "at": "3m30s", "for": "1m", "inflight_loss_ratio": 0.5,
                             "unmapped_ratio": 0.01}], {}),
    "cache-and-corruption": ([{"type": "interface_bug", "link": "sync->credit", "corrupt_ratio": 0.1}],
                             {"view": {"cache_ttl": "10s"}}),
    # a rule lag with what else acts at the write: a mis-mapping cutover, a corrupting link, view maintenance
    "rule-lag-and-write-faults": ([{"type": "rule_lag", "at": "1m", "for": "3m", "hold_ratio": 0.3},
                                   {"type": "cutover", "at": "2m", "for": "1m", "inflight_loss_ratio": 0.5,
                                    "unmapped_ratio": 0.1},
                                   {"type": "interface_bug", "link": "credit->view", "at": "1m30s", "for": "2m",
                                    "corrupt_ratio": 0.2},
                                   {"type": "maintenance", "component": "view", "at": "3m50s", "for": "20s"}], {}),
    "rule-lag-and-cache": ([{"type": "rule_lag", "at": "1m", "for": "2m", "hold_ratio": 0.2}],
                           {"view": {"cache_ttl": "10s"}}),
    # phantom records beside repayments a fault damages, and through the app's cache
    "phantom-record-and-pause": ([{"type": "phantom_record", "at": "1m30s", "for": "2m", "rate": "2/s",
                                   "holder_looks": ["5s", "20s", "1m"]},
                                  {"type": "maintenance", "component": "sync", "at": "2m", "for": "40s"}], {}),
    "phantom-record-and-cache": ([{"type": "phantom_record", "at": "1m", "for": "2m", "rate": "1/s",
                                   "holder_looks": ["5s", "12s", "50s"]}], {"view": {"cache_ttl": "10s"}}),
    "unlimited-workers-pause": ([{"type": "maintenance", "component": "sync", "at": "2m", "for": "30s"},
                                 {"type": "sync_delay", "at": "4m", "for": "1m", "extra": "1s"}],
                                {"sync": {"workers": "unlimited", "service": {"dist": "exponential", "mean": "100ms"}}}),
    "constant-service": ([{"type": "maintenance", "component": "sync", "at": "2m", "for": "20s"}],
                         {"sync": {"workers": 4, "service": "100ms"}, "channel": {"latency": 0}}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fault_case_same_records_and_metrics(case):
    """A fault alone or a composition on a busy pool: the fast engine matches the event engine exactly."""
    faults, pipeline = CASES[case]
    sc = busy(case, faults, **pipeline)
    assert unsupported(sc) is None
    assert_same(sc)


#: Users who pay again (docs/explanation/semantics.md, 10a) on the busy pool, alone and with
#: the faults whose rules meet a second payment: a slowed pool (the feedback), a ledger
#: window it must pass, a link that drops or corrupts, a cutover, the app's cache.
PAY_AGAIN_CASES: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]] = {
    "alone": ([], {}),
    "sync-delay": ([{"type": "sync_delay", "at": "2m", "for": "1m", "extra": {"dist": "exponential",
                                                                              "mean": "300ms"}}], {}),
    "sync-pause": ([{"type": "maintenance", "component": "sync", "at": "3m", "for": "40s"}], {}),
    "ledger-reject": ([{"type": "maintenance", "component": "ledger", "mode": "reject", "at": "2m", "for": "30s"}],
                      {}),
    "ledger-endless": ([{"type": "maintenance", "component": "ledger", "at": "3m30s"}], {}),
    "corrupt-credit-view": ([{"type": "interface_bug", "link": "credit->view", "at": "1m", "for": "3m",
                              "drop_ratio": 0.05, "corrupt_ratio": 0.2}], {}),
    "cutover": ([{"type": "cutover", "at": "3m", "for": "1m", "inflight_loss_ratio": 0.5, "unmapped_ratio": 0.05}],
                {}),
    "cache": ([{"type": "sync_delay", "at": "2m", "for": "1m", "extra": "500ms"}], {"view": {"cache_ttl": "10s"}}),
}


#: The cases `make check` runs (the feedback alone and through a slowed pool); the rest are slow.
PAY_AGAIN_QUICK = ("alone", "sync-delay")


@pytest.mark.parametrize("case", [c if c in PAY_AGAIN_QUICK else pytest.param(c, marks=pytest.mark.slow)
                                  for c in sorted(PAY_AGAIN_CASES)])
def test_pay_again_case_same_records_and_metrics(case):
    """Users who pay again on a busy pool: the fast engine's fixed point is the event engine's history, exactly."""
    faults, pipeline = PAY_AGAIN_CASES[case]
    sc = busy(f"pay-again-{case}", faults, **pipeline)
    # 4m30s of the busy pool: every case's window falls inside it
    sc = with_overrides(sc, {"duration": "4m30s",
                             "workload.check.pay_again": {"after_stale_reads": 1, "probability": 0.5}})
    assert unsupported(sc) is None
    events = assert_same(sc)
    assert finalize([events.state])["metrics"]["double_repayments"] > 0  # the case has second payments


#: Accounts (docs/explanation/semantics.md, 14, 14a) on the busy pool: versioned writes, the
#: guard removed, and the faults that act on a write or a sweep beside them.
ACCOUNT_CASES: dict[str, tuple[int, list[dict[str, Any]], dict[str, Any]]] = {
    "versioned": (40, [], {}),
    "unversioned": (40, [{"type": "unversioned_writes", "at": "1m", "for": "3m"}], {}),
    "one-account-unversioned": (1, [{"type": "unversioned_writes", "at": "2m", "for": "1m"}], {}),
    "unversioned-and-write-faults": (10, [{"type": "unversioned_writes", "at": "1m", "for": "4m"},
                                          {"type": "interface_bug", "link": "credit->view", "at": "1m", "for": "3m",
                                           "drop_ratio": 0.05, "corrupt_ratio": 0.2},
                                          {"type": "rule_lag", "at": "1m30s", "for": "2m", "hold_ratio": 0.2},
                                          {"type": "cutover", "at": "3m", "for": "1m", "inflight_loss_ratio": 0.5,
                                           "unmapped_ratio": 0.05}], {}),
    "unversioned-and-pause-and-cache": (10, [{"type": "unversioned_writes", "at": "1m"},
                                             {"type": "maintenance", "component": "sync", "at": "2m", "for": "30s"}],
                                        {"view": {"cache_ttl": "10s"}}),
}


@pytest.mark.parametrize("case", sorted(ACCOUNT_CASES))
def test_account_case_same_records_and_metrics(case):
    """Repayments sharing accounts, with and without the version guard: both engines alike, exactly."""
    accounts, faults, pipeline = ACCOUNT_CASES[case]
    sc = with_overrides(busy(f"accounts-{case}", faults, **pipeline), {"workload.accounts": accounts})
    assert unsupported(sc) is None
    events = assert_same(sc)
    regressions = finalize([events.state])["metrics"]["view_regressions"]
    assert (regressions > 0) == any(f["type"] == "unversioned_writes" for f in faults)


@pytest.mark.parametrize("faults", [
    [{"type": "maintenance", "component": "sync", "mode": "reject", "at": "2m", "for": "30s"}],
    [{"type": "interface_bug", "link": "sync->credit", "corrupt_ratio": 0.3},
     {"type": "interface_bug", "link": "sync->credit", "corrupt_ratio": 0.3}],
    [{"type": "rule_lag", "at": "1m", "for": "2m", "hold_ratio": 0.1},
     {"type": "rule_lag", "at": "2m", "for": "2m", "hold_ratio": 0.1}],
], ids=["sync-reject", "two-bugs-one-link", "two-rule-lags"])
def test_what_the_fast_engine_does_not_compute_runs_on_the_event_engine(faults):
    """Retried sync messages and second bugs on a link: the default engine is the event engine there."""
    sc = busy("fallback", faults)
    assert unsupported(sc) is not None
    assert engine_class(sc, "fast") is Model
    with pytest.raises(ValueError, match="event engine"):
        FastModel(sc, sc.seed, 0, MetricsCollector.for_scenario(sc))


def test_result_metrics_byte_identical_across_engines_and_replications():
    """run_model on both engines, three replications: the same result.json metrics, phases and series."""
    sc = with_overrides(resolve_scenario("nightly-maintenance"), {"duration": "1h25m", "replications": 3,
                                                                     "workload.arrivals.rate": "2/s"})
    fast = run_model(sc, processes=1, progress=False, engine="fast")
    events = run_model(sc, processes=1, progress=False, engine="events")
    assert fast["run"]["engine"] == "fast" and events["run"]["engine"] == "events"
    for key in ("metrics", "phases", "series"):
        assert json.dumps(fast[key], sort_keys=True) == json.dumps(events[key], sort_keys=True), key


def test_chunk_size_does_not_change_the_result():
    """The fast engine's chunking is invisible: tiny chunks and one big chunk give the same state."""
    sc = busy("chunks", CASES["pause-then-cutover"][0])
    small, _ = run_fast(sc, bulk=True, chunk=61)
    big, _ = run_fast(sc, bulk=True, chunk=1 << 16)
    assert pickle.dumps(small.state) == pickle.dumps(big.state)
