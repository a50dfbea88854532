"""Model against measurement: agreement within combined intervals, curve RMS, renderings."""

from __future__ import annotations

import copy
import json
import math

import pytest

from repaychaos.scenarios.loader import load_scenario_text
from repaychaos.reports.compare import (
    HEADLINE,
    comparison_html,
    comparison_markdown,
    compare_results,
    interval_agreement,
    quantile_interval,
    write_comparison,
)
from repaychaos.reports.synthetic import synthetic_result

SCENARIO = """\
version: 1
name: compare-tiny
duration: 20m
warmup: 1m
seed: 9
replications: 3
workload:
  arrivals: {rate: 3/s}
  check: {first_after: {dist: exponential, mean: 2s}, every: 30s, max_checks: 3}
pipeline:
  sync: {workers: unlimited, service: {dist: exponential, mean: 1s}}
  reconcile: {every: 15m}
faults:
  - type: sync_delay
    at: 5m
    for: 5m
    extra: {dist: exponential, mean: 20s}
"""


@pytest.fixture(scope="module")
def pair():
    """A sim and a load record of one scenario from independent seeds (the same process)."""
    scenario = load_scenario_text(SCENARIO, "compare-tiny.yaml")
    return synthetic_result(scenario), synthetic_result(scenario, source="load", seed=1234)


def test_agreement_within_combined_half_widths():
    """|a - b| = 0.012 <= sqrt(0.01² + 0.01²) = 0.01414: agree."""
    agree, tol = interval_agreement(0.100, [0.090, 0.110], 0.112, [0.102, 0.122])
    assert agree and tol == pytest.approx(math.sqrt(2) * 0.01)


def test_disagreement_beyond_combined_half_widths():
    """|a - b| = 0.025 > 0.01414 although each interval alone is 0.01 wide on the facing side."""
    agree, _ = interval_agreement(0.100, [0.090, 0.110], 0.125, [0.115, 0.135])
    assert not agree


def test_agreement_uses_the_half_width_facing_the_other_estimate():
    """Asymmetric intervals: the model's upper and the measurement's lower half-width count when model < measured."""
    _, tol = interval_agreement(0.10, [0.00, 0.13], 0.20, [0.16, 0.50])
    assert tol == pytest.approx(math.hypot(0.03, 0.04))  # = 0.05


def test_missing_intervals_count_as_points():
    """Two point values agree only when equal."""
    assert interval_agreement(2.0, None, 2.0, None)[0]
    assert not interval_agreement(2.0, None, 2.1, None)[0]


def test_a_result_agrees_with_itself_with_zero_rms(pair):
    """Comparing a record with a copy of itself: every metric agrees and the curves are identical."""
    sim, _ = pair
    load = copy.deepcopy(sim)
    load["source"] = "load"
    comparison = compare_results(sim, load)
    assert comparison["agree"] is True
    assert comparison["curve"]["rms"] == 0.0
    assert [r["metric"] for r in comparison["metrics"][: len(HEADLINE)]] == list(HEADLINE)


def test_independent_runs_of_one_scenario_agree(pair):
    """Two seeds of the same process agree on every headline metric (each check is a 95% band test)."""
    comparison = compare_results(*pair)
    assert comparison["disagree_on"] == []
    assert comparison["agree"] is True


def test_shifted_ratio_is_a_disagreement(pair):
    """Moving the measured stale_read_ratio far outside both intervals makes it disagree, and only it."""
    sim, load = pair
    load = copy.deepcopy(load)
    node = load["metrics"]["stale_read_ratio"]
    node["value"] *= 3
    node["ci95"] = [node["value"] * 0.95, node["value"] * 1.05]
    comparison = compare_results(sim, load)
    assert comparison["agree"] is False
    assert comparison["disagree_on"] == ["stale_read_ratio"]


def test_curve_rms_of_a_constant_shift(pair):
    """Shifting every measured curve point by 0.01 gives an RMS difference of exactly 0.01."""
    sim, _ = pair
    load = copy.deepcopy(sim)
    load["source"] = "load"
    load["metrics"]["visibility"]["p_stale"] = [p + 0.01 for p in sim["metrics"]["visibility"]["p_stale"]]
    curve = compare_results(sim, load)["curve"]
    assert curve["rms"] == pytest.approx(0.01, abs=1e-9)
    assert curve["max_abs"] == pytest.approx(0.01, abs=1e-9)


def test_quantile_interval_brackets_the_reported_quantile(pair):
    """The curve-derived interval of p50/p95/p99 contains the reported quantile."""
    sim, _ = pair
    for key, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        low, high = quantile_interval(sim, q)
        assert low <= sim["metrics"]["time_to_usable"][key] <= high


def test_quantile_interval_narrows_with_more_repayments(pair):
    """Four times the repayments on the same curve halves δ, so the interval cannot widen."""
    sim, _ = pair
    more = copy.deepcopy(sim)
    more["metrics"]["repayments"] *= 4
    more["metrics"]["never_usable"] *= 4
    more["metrics"]["risk_holds"] *= 4
    low, high = quantile_interval(sim, 0.5)
    low4, high4 = quantile_interval(more, 0.5)
    assert high4 - low4 <= high - low


def test_different_scenarios_are_noted(pair):
    """Comparing records of two different scenarios says so in the notes."""
    sim, load = pair
    load = copy.deepcopy(load)
    load["scenario"]["name"] = "other"
    assert any("different scenarios" in n for n in compare_results(sim, load)["notes"])


def test_comparison_json_round_trips(pair, tmp_path):
    """comparison.json is strict JSON (no NaN) and reads back equal."""
    comparison = compare_results(*pair)
    path = write_comparison(comparison, tmp_path)
    assert path.name == "comparison.json"
    assert json.loads(path.read_text(encoding="utf-8")) == comparison


def test_markdown_and_html_list_every_compared_metric(pair):
    """Both renderings have one table row per compared metric."""
    comparison = compare_results(*pair)
    md = comparison_markdown(comparison)
    html = comparison_html(comparison)
    for row in comparison["metrics"]:
        assert f"| {row['metric']} |" in md
        assert f"<td>{row['metric']}</td>" in html
