"""The load side's own bookkeeping, without a service: lateness histograms, the Retry-After
parser, the time resolution and validity rules, and how an invalid measurement is judged."""

from __future__ import annotations

import random
from email.utils import format_datetime
from datetime import datetime, timezone

import pytest

from repaychaos.load.clock import Clock, retry_after_seconds
from repaychaos.load.lateness import WIDTH, Lateness
from repaychaos.load.validity import (RESOLUTION_RATIO, mark_invalid, shortest_check_delay, time_resolution,
                                      validity)
from repaychaos.scenarios import load_scenario_data


def _scenario(first_after="2s", every="1s", max_checks=4):
    return load_scenario_data({"version": 1, "name": "v", "duration": "10s", "seed": 1,
                               "workload": {"arrivals": {"rate": "5/s"},
                                            "check": {"first_after": first_after, "every": every,
                                                      "max_checks": max_checks}}})


def test_lateness_quantiles_are_within_a_bucket_of_the_sample_and_merge_exactly():
    """Two halves merged give the same counts as the whole; p50/p99 lie within one bucket
    (2 % relative) of the sample's order statistics, either side."""
    rng = random.Random(7)
    values = [rng.expovariate(1 / 0.004) for _ in range(10_000)]
    whole, a, b = Lateness(), Lateness(), Lateness()
    for i, v in enumerate(values):
        whole.add(v)
        (a if i % 2 else b).add(v)
    merged = Lateness.merged([Lateness.from_json(a.to_json()), Lateness.from_json(b.to_json())])
    assert merged.counts == whole.counts and merged.n == 10_000 and merged.max == max(values)
    ordered = sorted(values)
    for q in (0.5, 0.99):
        exact = ordered[int(q * (len(values) - 1))]
        assert exact / (1 + WIDTH) <= whole.quantile(q) <= exact * (1 + WIDTH)


def test_early_and_on_time_requests_count_as_zero_lateness():
    """A request sent ahead of its instant (the learnt lead) is not late."""
    late = Lateness()
    for v in (-0.003, 0.0, 0.00005):
        late.add(v)
    assert late.quantile(0.99) == 0.0 and late.summary(10.0)["p50"] == 0.0


def test_retry_after_reads_seconds_and_http_dates():
    """Delta-seconds, an HTTP date (from a given now), and junk (None); capped at 60 s."""
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("1000") == 60.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    now = datetime(2026, 12, 5, 8, 0, 0, tzinfo=timezone.utc)
    date = format_datetime(datetime(2026, 12, 5, 8, 0, 5, tzinfo=timezone.utc), usegmt=True)
    assert retry_after_seconds(date, now.timestamp()) == pytest.approx(5.0)


def test_the_clock_maps_scenario_and_wall_seconds_both_ways():
    clock = Clock(t0=1000.0, k=10.0)
    assert clock.wall(50.0) == 1005.0 and clock.scenario(1005.0) == 50.0


def test_the_shortest_check_delay_is_the_first_after_median_or_every():
    """A constant first look at 2 s and re-checks every 1 s: 1 s; one look only: 2 s;
    exponential(mean 1 s) first looks: its median, ln 2 s."""
    assert shortest_check_delay(_scenario()) == pytest.approx(1.0, rel=1e-6)
    assert shortest_check_delay(_scenario(max_checks=1)) == pytest.approx(2.0, rel=1e-6)
    exp = _scenario(first_after={"dist": "exponential", "mean": "1s"}, every="5s")
    assert shortest_check_delay(exp) == pytest.approx(0.693147, rel=1e-4)


def _users(late_wall: float, n: int = 200, acked_at: bool = True):
    users = []
    for i in range(n):
        planned = 100.0 + i
        user = {"key": str(i), "reads": [[planned + late_wall, False, None, False, planned]], "ack_latency": 0.002}
        if acked_at:
            user["acked_at"] = 99.0 + i
        users.append(user)
    return users


def test_time_resolution_is_ok_below_five_percent_of_the_shortest_delay_and_not_above():
    """At K = 10 and a shortest check delay of 1 s the bound is 50 ms of scenario time, 5 ms wall:
    reads 4 ms late (on average) are ok, 6 ms late are not, and the 'why' names the share."""
    sc = _scenario()
    ok = time_resolution(sc, _users(0.004), 10.0)
    bad = time_resolution(sc, _users(0.006), 10.0)
    assert ok["ok"] and ok["threshold"] == RESOLUTION_RATIO
    assert not bad["ok"] and "shortest check delay 1 s" in bad["why"]
    assert ok["lateness_s"]["mean"] == pytest.approx(0.04, rel=1e-6)
    assert ok["lateness_s"]["p99"] == pytest.approx(0.04, rel=0.05)


def test_without_the_services_ack_instant_the_ack_round_trip_counts():
    """Black-box, the commit happened somewhere in the ack's round trip: half of 2 ms wall plus
    4 ms of read lateness is 50 ms at K = 10, just ok; with 4.5 ms of read lateness, not ok."""
    assert time_resolution(_scenario(), _users(0.004, acked_at=False), 10.0)["lateness_s"]["mean"] == \
        pytest.approx(0.05, rel=1e-6)
    assert not time_resolution(_scenario(), _users(0.0045, acked_at=False), 10.0)["ok"]


def test_validity_names_each_reason_and_an_invalid_result_never_passes():
    """Late arrivals, unacked repayments, an unfinished run, incomplete users and the request
    cap are each a reason; mark_invalid makes the verdict inconclusive and passed false."""
    late = Lateness()
    for _ in range(100):
        late.add(0.5)
    v = validity(arrivals_late=late, users=100, acked=90, unacked=10, incomplete=5, complete=False, cap_hit=True,
                 resolution={"ok": False, "why": "late reads"})
    assert len(v["why"]) == 6 and not v["ok"]
    good = validity(arrivals_late=Lateness(), users=100, acked=100, unacked=0, incomplete=0, complete=True,
                    cap_hit=False, resolution={"ok": True, "why": ""})
    assert good == {"ok": True, "why": []}
    result = {"verdict": "pass", "passed": True, "run": {"validity": v},
              "slo": [{"metric": "lost_repayments", "verdict": "pass", "passed": True},
                      {"metric": "stale_read_ratio", "verdict": "fail", "passed": False}]}
    assert mark_invalid(result)["verdict"] == "inconclusive" and not result["passed"]
    assert [(r["verdict"], r["passed"]) for r in result["slo"]] == [("inconclusive", False), ("fail", False)]
    assert "late reads" in result["slo"][0]["not_a_measurement"]


def test_compare_calls_an_invalid_measurement_inconclusive_not_agreement():
    """`repaychaos run`: the same result on both sides agrees, unless the measurement's run says
    it is not valid; then it is inconclusive and does not agree."""
    from repaychaos.reports.compare import compare_results
    from repaychaos.sim.simulate import run_model

    sim = run_model(_scenario(), replications=2, processes=1, progress=False)
    measured = {**sim, "source": "load", "run": {"validity": {"ok": True, "why": []},
                                                 "time_resolution": {"ok": True, "why": ""}}}
    assert compare_results(sim, measured)["inconclusive"] is None
    measured["run"] = {"validity": {"ok": False, "why": ["time resolution: late"]},
                       "time_resolution": {"ok": False, "why": "late"}}
    cmp = compare_results(sim, measured)
    assert cmp["inconclusive"] == "time resolution: late" and cmp["agree"] is False


def test_reports_say_when_a_load_result_is_not_a_measurement():
    """summary.md and report.html name the reasons at the top, and a comparison with such a
    result is 'not compared', neither agreement nor disagreement."""
    from repaychaos.reports.compare import compare_results
    from repaychaos.reports.html import report_html
    from repaychaos.reports.markdown import summary_markdown
    from repaychaos.sim.simulate import run_model

    sim = run_model(_scenario(), replications=2, processes=1, progress=False)
    measured = {**sim, "source": "load", "verdict": "inconclusive", "passed": False,
                "run": {"validity": {"ok": False, "why": ["arrivals left up to 2 s late"]},
                        "time_resolution": {"ok": True, "why": ""}}}
    cmp = compare_results(sim, measured)
    md = summary_markdown([sim, measured], comparison=cmp)
    assert "NOT COMPARED" in md and "**Not a measurement.** v (load) is not a measurement" in md
    assert "arrivals left up to 2 s late" in md
    page = report_html([sim, measured], [[], []], comparison=cmp)
    assert "NOT COMPARED" in page and "Not a measurement." in page
