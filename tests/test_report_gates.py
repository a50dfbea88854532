"""The SLO gate (repaychaos.core.result.evaluate_slos): pass on evidence, inconclusive when the
interval straddles the threshold, and say so instead of flipping a coin between runs."""

from __future__ import annotations

from repaychaos.scenarios.spec import SloRule
from repaychaos.core.result import evaluate_slos


def metrics(value: float, low: float, high: float, **extra) -> dict:
    return {"stale_read_ratio": {"value": value, "ci95": [low, high]}, **extra}


def judge(key: str, rule: str, m: dict, phases: dict | None = None, fail_on_inconclusive: bool = True):
    return evaluate_slos([SloRule.parse(key, rule)], m, phases or {}, fail_on_inconclusive)


def test_interval_wholly_below_threshold_passes():
    """A ratio whose whole 95% interval is under the threshold passes."""
    rows, gate, verdict = judge("stale_read_ratio", "< 1%", metrics(0.005, 0.004, 0.0099))
    assert (rows[0]["verdict"], gate, verdict) == ("pass", True, "pass")


def test_interval_wholly_above_threshold_fails():
    """A ratio whose whole interval is at or over the threshold fails."""
    rows, gate, verdict = judge("stale_read_ratio", "< 1%", metrics(0.02, 0.01, 0.03))
    assert (rows[0]["verdict"], gate, verdict) == ("fail", False, "fail")


def test_interval_straddling_threshold_is_inconclusive_and_fails_the_gate_by_default():
    """Point estimate under the threshold but the interval crosses it: inconclusive, gate fails."""
    rows, gate, verdict = judge("stale_read_ratio", "< 1%", metrics(0.009, 0.007, 0.012))
    assert (rows[0]["verdict"], rows[0]["passed"], gate, verdict) == ("inconclusive", False, False, "inconclusive")


def test_inconclusive_passes_the_gate_when_allowed():
    """With fail_on_inconclusive off the gate passes, but the verdict still says inconclusive."""
    rows, gate, verdict = judge("stale_read_ratio", "< 1%", metrics(0.011, 0.007, 0.012), fail_on_inconclusive=False)
    assert (rows[0]["verdict"], rows[0]["passed"], gate, verdict) == ("inconclusive", True, True, "inconclusive")


def test_fail_outweighs_inconclusive_in_the_overall_verdict():
    """One failing and one inconclusive SLO make the run fail, not inconclusive."""
    rules = [SloRule.parse("stale_read_ratio", "< 1%"), SloRule.parse("lost_repayments", "== 0")]
    m = metrics(0.009, 0.007, 0.012, lost_repayments=2)
    rows, gate, verdict = evaluate_slos(rules, m, {}, True)
    assert [r["verdict"] for r in rows] == ["inconclusive", "fail"]
    assert (gate, verdict) == (False, "fail")


def test_equality_rule_on_a_ratio_is_judged_on_the_value():
    """`== 0` on a ratio of 0 passes although the Wilson upper bound is above 0 (equality has no interval test)."""
    rows, _, _ = judge("stale_read_ratio", "== 0", metrics(0.0, 0.0, 0.0004))
    assert rows[0]["verdict"] == "pass"


def test_count_metrics_are_never_inconclusive():
    """Counts and quantiles carry no interval: they pass or fail on the observed value."""
    rows, _, _ = judge("time_to_usable.p99", "< 2m", {"time_to_usable": {"p99": 120.0}})
    assert rows[0]["verdict"] == "fail"  # 120 s is not < 2 min


def test_phase_slo_reads_the_phase_population():
    """`stale_read_ratio@maintenance` is judged on the maintenance phase, not the whole run."""
    phases = {"maintenance": metrics(0.4, 0.35, 0.45)}
    rows, _, _ = judge("stale_read_ratio@maintenance", "< 1%", metrics(0.001, 0.0005, 0.002), phases)
    assert (rows[0]["observed"], rows[0]["verdict"]) == (0.4, "fail")


def test_missing_metric_fails_with_observed_none():
    """An SLO whose metric is absent from the record fails rather than passing vacuously."""
    rows, gate, _ = judge("stale_read_ratio@after", "< 1%", metrics(0.001, 0.0, 0.002), {})
    assert (rows[0]["observed"], rows[0]["verdict"], gate) == (None, "fail", False)
