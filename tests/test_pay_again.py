"""Users who pay again (docs/explanation/semantics.md, 10a): the rule, the scenario keys,
the double-repayment metrics, a closed form, the load the second payments add, the live join
and the model-vs-live comparison."""

from __future__ import annotations

import math

import pytest

from repaychaos.core.collector import MetricsCollector, finalize
from repaychaos.core.errors import InvalidScenario
from repaychaos.load.measure import collect
from repaychaos.reports.compare import compare_results
from repaychaos.scenarios import load_scenario_data
from repaychaos.semantics import pay_again_at, pays_again
from repaychaos.sim.simulate import run_model
from builders import make_scenario, scenario_data
from synthetic import synthetic_result

PAY = {"after_stale_reads": 1, "probability": 0.5}


# ---------------------------------------------------------------------- the rule


def test_a_user_pays_again_only_after_that_many_stale_reads_in_a_row():
    """Two stale reads then usable: after_stale_reads 2 may pay, 3 may not; a usable read first never."""
    assert pays_again([True, True, False], 2, 0.0, 0.5)
    assert not pays_again([True, True, False], 3, 0.0, 0.5)
    assert not pays_again([False, True, True], 2, 0.0, 1.0)


def test_the_probability_is_the_share_of_uniforms_below_it():
    """u < p pays, u >= p does not (u = p is the boundary of a half-open interval)."""
    assert pays_again([True], 1, 0.2999, 0.3)
    assert not pays_again([True], 1, 0.3, 0.3)
    assert not pays_again([True], 1, 0.0, 0.0)


def test_the_decision_read_is_the_nth_read_of_the_policy():
    """First read at 12 s, every 30 s: the 3rd read is at 72 s."""
    assert pay_again_at(12.0, 30.0, 3) == 72.0


# ---------------------------------------------------------------------- scenario keys


def test_pay_again_after_more_reads_than_the_policy_makes_is_refused():
    """after_stale_reads > max_checks could never happen: the loader says so, with the key path."""
    with pytest.raises(InvalidScenario, match=r"workload\.check.*after_stale_reads at most max_checks \(3\), found 4"):
        make_scenario({"workload.check.pay_again": {"after_stale_reads": 4, "probability": 0.5}})


def test_a_probability_above_one_is_refused():
    with pytest.raises(InvalidScenario, match=r"pay_again\.probability"):
        make_scenario({"workload.check.pay_again": {"after_stale_reads": 1, "probability": 1.5}})


def test_an_slo_on_double_repayments_needs_pay_again():
    """Without users who pay again the metric does not exist: an SLO naming it is an error, not a silent fail."""
    with pytest.raises(InvalidScenario, match="double_repayments_per_10k.*pay_again"):
        make_scenario(slo={"double_repayments_per_10k": "< 5"})
    sc = make_scenario({"workload.check.pay_again": PAY}, slo={"double_repayments_per_10k": "< 5"})
    assert sc.slo[0].key == "double_repayments_per_10k"


def test_a_scenario_without_pay_again_reads_back_as_before():
    """The normalised scenario (result.json's `scenario`) has no pay_again key when it is not set."""
    check = make_scenario().normalised()["workload"]["check"]
    assert "pay_again" not in check
    with_pay = make_scenario({"workload.check.pay_again": PAY}).normalised()
    assert with_pay["workload"]["check"]["pay_again"] == {"after_stale_reads": 1, "probability": 0.5}
    assert load_scenario_data(with_pay).workload.check.pay_again.probability == 0.5


# ---------------------------------------------------------------------- metrics


def test_without_pay_again_no_double_repayment_metrics_are_written():
    """result.json keeps exactly its old keys when no user pays again."""
    m = run_model(make_scenario({"workload.arrivals.rate": "0.2/s"}), replications=1)["metrics"]
    assert "double_repayments" not in m and "double_repayments_per_10k" not in m
    assert "double_repayments_per_10k" not in m["intervals"]


def test_double_repayments_count_with_the_first_repayment_inside_the_window():
    """Per 10k counted first repayments; a double whose first repayment was acked in the warmup is not counted."""
    col = MetricsCollector(100.0, 10.0, 3, causes=("queueing", "cache"), pay_again=True)
    from repaychaos.core.records import Read, Repayment

    for i in range(4):
        col.observe(Repayment(acked_at=20.0 + i, view_usable_at=30.0 + i), [Read(25.0 + i, False, 25.0 + i)])
    col.observe_double(21.0)
    col.observe_double(5.0)  # warmup: not counted
    m = finalize([col.state])["metrics"]
    assert m["double_repayments"] == 1
    assert m["double_repayments_per_10k"] == 2500.0
    assert "ci95" in m["intervals"]["double_repayments_per_10k"]


# ---------------------------------------------------------------------- closed form

#: Exponential sync delay of mean M, first (only) read D after the ack, no other delay:
#: the view is usable at ack + S, S ~ Exp(M), so the read is stale iff S > D,
#: P = exp(-D / M), and a user pays again with probability P_PAY * exp(-D / M).
M, D, P_PAY = 10.0, 10.0, 0.5
CLOSED = {
    "duration": "2h", "warmup": "0s", "seed": 3, "replications": 1,
    "keys": {"workload.arrivals.rate": "2/s",
             "workload.check": {"first_after": f"{D}s", "every": "30s", "max_checks": 1,
                                "pay_again": {"after_stale_reads": 1, "probability": P_PAY}},
             "pipeline.channel.latency": "0s", "pipeline.credit.service": "0s",
             "pipeline.sync": {"workers": "unlimited", "service": {"dist": "exponential", "mean": f"{M}s"}},
             "pipeline.reconcile": "off"},
}


def _closed_scenario(**keys):
    return make_scenario({**CLOSED["keys"], **keys}, duration=CLOSED["duration"], warmup=CLOSED["warmup"],
                         seed=CLOSED["seed"], replications=CLOSED["replications"])


def test_double_repayments_per_10k_match_the_closed_form_under_an_exponential_sync_delay():
    """1e4 * p * exp(-d/m) = 1839.4 per 10k. Given n first repayments the count is
    Binomial(n, q) (users independent: the pool is unlimited); the tolerance is 5 binomial
    standard deviations, sqrt(q (1 - q) / n), which a correct model exceeds with probability
    below 6e-7 (and the seed is fixed, so the test is deterministic)."""
    m = run_model(_closed_scenario(), engine="events")["metrics"]
    n = m["repayments"]
    q = P_PAY * math.exp(-D / M)
    tol = 5 * math.sqrt(q * (1 - q) / n)
    assert n > 10_000
    assert abs(m["double_repayments"] / n - q) <= tol
    assert m["double_repayments_per_10k"] == pytest.approx(1e4 * m["double_repayments"] / n, rel=1e-8)


def test_on_an_unlimited_pool_second_payments_change_nothing_the_first_ones_saw():
    """Second payments draw from a stream of their own and wait for no worker here: every
    other metric is exactly that of the same scenario without pay_again."""
    with_pay = run_model(_closed_scenario(), engine="events")["metrics"]
    keys = dict(CLOSED["keys"])
    keys["workload.check"] = {k: v for k, v in keys["workload.check"].items() if k != "pay_again"}
    without = run_model(make_scenario(keys, duration="2h", warmup="0s", seed=3, replications=1),
                        engine="events")["metrics"]
    for key in ("repayments", "reads", "stale_reads", "stale_read_ratio", "time_to_usable", "support_contacts"):
        assert with_pay[key] == without[key]


def test_second_payments_queue_with_the_first_ones_and_delay_them():
    """On a busy FIFO pool the second payments are extra work: with the same draws for the
    users' own repayments, no first repayment can become usable earlier, and some later."""
    base = {"workload.arrivals.rate": "1/s",
            "workload.check": {"first_after": "5s", "every": "10s", "max_checks": 4},
            "pipeline.sync": {"workers": 2, "service": {"dist": "exponential", "mean": "1.8s"}}}
    without = run_model(make_scenario(base, seed=5, replications=1), engine="events")["metrics"]
    pay = {**base, "workload.check": {**base["workload.check"],
                                      "pay_again": {"after_stale_reads": 2, "probability": 1.0}}}
    with_pay = run_model(make_scenario(pay, seed=5, replications=1), engine="events")["metrics"]
    assert with_pay["repayments"] == without["repayments"]
    assert with_pay["double_repayments"] > 0
    assert with_pay["stale_reads"] > without["stale_reads"]
    assert with_pay["time_to_usable"]["mean"] > without["time_to_usable"]["mean"]


def test_the_fast_engine_computes_pay_again_itself_to_the_same_metrics():
    """`--engine fast` runs the fast engine (its fixed point over second payments) and writes
    exactly the event engine's metrics (record by record: tests/test_engine_differential.py)."""
    sc = make_scenario({"workload.arrivals.rate": "0.5/s", "workload.check.pay_again": PAY,
                        "pipeline.sync": {"workers": 1, "service": {"dist": "exponential", "mean": "1.5s"}}})
    fast = run_model(sc, replications=1, engine="fast")
    events = run_model(sc, replications=1, engine="events")
    assert fast["run"]["engine"] == "fast"
    assert fast["metrics"]["double_repayments"] > 0
    assert fast["metrics"] == events["metrics"]


# ---------------------------------------------------------------------- the live join


def _trace(reps):
    return {"t0": 1000.0, "time_scale": 2.0, "repayments": reps, "duplicates": 0, "backlog": []}


def _rep(rep_id, acked_at, changes):
    return {"id": rep_id, "key": rep_id, "account": "a", "acked_at": acked_at, "held": False, "changes": changes,
            "touches": []}


def test_the_live_join_counts_a_second_payment_the_ledger_committed():
    """A user's `again` record whose id the ledger holds is a double repayment of that user's
    first one; one the ledger lacks (or never acked) is not."""
    sc = make_scenario({"workload.check.pay_again": PAY})
    trace = _trace([_rep("r1", 120.0, [[200.0, True]]), _rep("r2", 130.0, [[200.0, True]]),
                    _rep("r1b", 140.0, [[210.0, True]])])
    users = [
        {"key": "r1", "id": "r1", "acked_at": 1060.0, "reads": [[1065.0, False, 1065.0, False]],
         "again": {"key": "r1-again", "id": "r1b", "ack": 1070.0}},
        {"key": "r2", "id": "r2", "acked_at": 1065.0, "reads": [[1070.0, False, 1070.0, False]],
         "again": {"key": "r2-again", "id": "gone", "ack": 1075.0}},
    ]
    col, counts = collect(sc, trace, users)
    m = finalize([col.state])["metrics"]
    assert (m["repayments"], m["double_repayments"], m["double_repayments_per_10k"]) == (2, 1, 5000.0)
    assert counts["paid_again"] == 1


# ---------------------------------------------------------------------- model vs live


def test_the_comparison_tests_double_repayments_when_both_results_carry_them():
    """The metric joins the Holm family only where both sides measured it."""
    sc = make_scenario({"workload.check.pay_again": PAY})
    sim = synthetic_result(sc)
    load = synthetic_result(sc, source="load", seed=77)
    for r, value, se in ((sim, 400.0, 20.0), (load, 430.0, 25.0)):
        r["metrics"]["double_repayments_per_10k"] = value
        r["metrics"]["intervals"]["double_repayments_per_10k"] = {"ci95": [value - 2 * se, value + 2 * se],
                                                                  "se": se, "dof": None}
    rows = {row["metric"]: row for row in compare_results(sim, load)["metrics"]}
    row = rows["double_repayments_per_10k"]
    # |400 - 430| = 30 against 1.96 * hypot(20, 25) = 62.8: not a disagreement
    assert row["test"] == "two-sample" and row["tolerance"] == pytest.approx(1.959964 * math.hypot(20, 25), rel=1e-5)
    assert row["agree"] is True
    load["metrics"]["double_repayments_per_10k"] = 600.0  # 200 apart: 6.2 standard errors
    rows = {row["metric"]: row for row in compare_results(sim, load)["metrics"]}
    assert rows["double_repayments_per_10k"]["agree"] is False
    del load["metrics"]["double_repayments_per_10k"]
    assert "double_repayments_per_10k" not in {r["metric"] for r in compare_results(sim, load)["metrics"]}


# ---------------------------------------------------------------------- the reports


def test_the_terminal_and_the_reports_show_double_repayments_only_where_users_pay_again():
    """Terminal line, Markdown and HTML headline column: present with pay_again, absent without."""
    from repaychaos.reports.html import _headline as html_headline
    from repaychaos.reports.markdown import _headline as md_headline
    from repaychaos.reports.summary import format_summary

    with_pay = synthetic_result(make_scenario({"workload.check.pay_again": PAY}))
    without = synthetic_result(make_scenario())
    assert "double_repayments_per_10k" in format_summary(with_pay)
    assert "double_repayments" not in format_summary(without)
    assert "paid twice /10k" in md_headline([with_pay]) and "paid twice /10k" in html_headline([with_pay])
    assert "paid twice" not in md_headline([without]) + html_headline([without])
    header, rule = md_headline([with_pay]).splitlines()[:2]
    assert header.count("|") == rule.count("|")  # one more column, and its rule


# ---------------------------------------------------------------------- live


@pytest.mark.live
def test_live_users_pay_again_as_the_closed_form_says():
    """Live, one read at ack + d on unlimited exp(mean m) workers, pay again after it with p:
    the share of users who paid twice is p * exp(-d/m), inside the 99.9 % Wilson interval of
    the measured share (real timing is not seeded: a 95 % interval would fail one run in twenty)."""
    from honest import resolved

    from repaychaos.core.stats import wilson
    from repaychaos.load.runner import run_load

    mean, d, p = 2.0, 2.0, 0.5
    scenario = load_scenario_data({
        "version": 1, "name": "exp-pay-again", "duration": "50s", "seed": 11,
        "workload": {"arrivals": {"rate": "20/s"},
                     "check": {"first_after": f"{d}s", "every": "1s", "max_checks": 1,
                               "pay_again": {"after_stale_reads": 1, "probability": p}}},
        "pipeline": {"channel": {"latency": 0}, "sync": {"workers": "unlimited",
                                                         "service": {"dist": "exponential", "mean": f"{mean}s"}},
                     "credit": {"service": 0}, "reconcile": "off"},
    })
    # time scale 10: each read is answered as of its instant, so the scale does not bias what it saw
    result = run_load(scenario, time_scale=10.0, progress=False)
    if not resolved(result):
        return
    m = result["metrics"]
    assert m["duplicate_repayments"] == 0  # a second payment has a key of its own: not a duplicate
    assert m["repayments"] > 700
    # the run counts every committed second payment; the metric those of users acked in the window
    assert result["run"]["paid_again"] >= m["double_repayments"] > 0
    low, high = wilson(m["double_repayments"], m["repayments"], z=3.2905)
    assert low <= p * math.exp(-d / mean) <= high


def test_model_runs_of_one_scenario_compare_double_repayments_paired_by_batch_position():
    """Two model runs on independent seeds stand in for model and measurement: the metric is
    tested paired by batch position (what `repaychaos run` does), they agree; a measurement
    with every double counted twice (per position and in total) is told apart."""
    import copy

    sc = make_scenario({"workload.arrivals.rate": "1/s", "workload.check.pay_again": {"after_stale_reads": 1,
                                                                                     "probability": 0.5},
                        "pipeline.sync": {"workers": 1, "service": {"dist": "exponential", "mean": "0.8s"}}},
                       duration="1h", warmup="2m")
    sim = run_model(sc, seed=1, replications=2)
    load = run_model(sc, seed=2, replications=1)
    load["source"] = "load"
    assert sum(sim["batches"]["double"]) == sim["metrics"]["double_repayments"]
    row = {r["metric"]: r for r in compare_results(sim, load)["metrics"]}["double_repayments_per_10k"]
    assert row["test"] == "paired by batch position" and row["agree"] is True
    doubled = copy.deepcopy(load)
    doubled["batches"]["double"] = [2 * x for x in load["batches"]["double"]]
    doubled["metrics"]["double_repayments_per_10k"] = 2 * load["metrics"]["double_repayments_per_10k"]
    row = {r["metric"]: r for r in compare_results(sim, doubled)["metrics"]}["double_repayments_per_10k"]
    assert row["test"] == "paired by batch position" and row["agree"] is False
