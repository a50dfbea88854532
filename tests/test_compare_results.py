"""Model against measurement: per-metric two-sample tests under Holm, curve RMS, power, renderings.

The error rates of the verdict over many seeds are checked in tests/test_statistics_calibration.py."""

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
    comparison_text,
    holm,
    interval_agreement,
    two_sample_test,
    write_comparison,
)
from synthetic import synthetic_result
from builders import scenario_yaml

SCENARIO = scenario_yaml(
    {"workload.arrivals.rate": "3/s", "workload.check.first_after": {"dist": "exponential", "mean": "2s"},
     "pipeline.sync.service": {"dist": "exponential", "mean": "1s"}, "pipeline.reconcile": {"every": "15m"}},
    name="compare-tiny", seed=9, replications=3,
    faults=[{"type": "sync_delay", "at": "5m", "for": "5m", "extra": {"dist": "exponential", "mean": "20s"}}])


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


def test_holm_adjusts_step_down():
    """Holm on (0.01, 0.04, 0.03, 0.005): adjusted 4·0.005, 3·0.01, 2·0.03, max(0.06, 0.04) (textbook)."""
    adjusted, rejected = holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert rejected == [True, False, False, True]


def test_two_sample_test_known_values():
    """|0.10 − 0.13| / hypot(0.01, 0.01) = 2.1213 → normal two-sided p = 0.0339; Welch d.o.f. with 19 each = 38."""
    p, se, dof = two_sample_test(0.10, 0.01, None, 0.13, 0.01, None)
    assert se == pytest.approx(math.sqrt(2) * 0.01) and dof is None
    assert p == pytest.approx(0.033895, abs=1e-5)
    _, _, dof = two_sample_test(0.10, 0.01, 19, 0.13, 0.01, 19)
    assert dof == pytest.approx(38.0)


def test_every_headline_metric_carries_a_test(pair):
    """Each headline row has both standard errors, a p-value and a Holm-adjusted p-value ≥ it."""
    comparison = compare_results(*pair)
    for row in comparison["metrics"][: len(HEADLINE)]:
        if row["agree"] is None:
            continue
        assert row["model_se"] is not None and row["measured_se"] is not None
        assert 0 <= row["p_value"] <= row["p_holm"] <= 1


def test_power_is_stated(pair):
    """comparison.json says the minimal detectable relative bias of stale_read_ratio at 80 % power:
    (z(1 − α/2m) + z(0.8))·se / model value, with the paired-by-position se when both results
    carry batches and hypot(se_model, se_measured) when they do not."""
    from scipy.stats import norm

    from repaychaos.reports.compare import paired_test

    comparison = compare_results(*pair)
    power = comparison["power"]
    row = comparison["metrics"][0]
    m = power["family"]
    z = norm.ppf(1 - 0.05 / m / 2) + norm.ppf(0.8)
    assert power["test"] == row["test"] == "paired by batch position"
    se = paired_test(*pair, "stale_read_ratio")[2]
    assert power["min_detectable_relative_bias"] == pytest.approx(z * se / row["model"] + 0.03, rel=1e-4)
    unpaired = [copy.deepcopy(r) for r in pair]
    for r in unpaired:
        del r["batches"]
    comparison = compare_results(*unpaired)
    row = comparison["metrics"][0]
    assert row["test"] == "two-sample" and "test" not in comparison["power"]
    expected = z * math.hypot(row["model_se"], row["measured_se"]) / row["model"]
    assert comparison["power"]["min_detectable_relative_bias"] == pytest.approx(expected, rel=1e-4)


def test_a_fault_window_is_not_noise_when_paired_by_position(pair):
    """The pair's scenario has a sync_delay window: pairing by batch position takes the window's
    between-batch differences out of the measured side's noise, so the paired tolerance of
    stale_read_ratio is far tighter than the two-sample one (the coverage of the paired test over
    seeds is checked in tests/test_statistics_calibration.py)."""
    from repaychaos.reports.compare import paired_test, two_sample_test

    sim, load = pair
    _diff, p, se, dof = paired_test(sim, load, "stale_read_ratio")
    row = compare_results(sim, load)["metrics"][0]
    _p, se_two, _dof = two_sample_test(row["model"], row["model_se"], None, row["measured"], row["measured_se"], None)
    assert 1 <= dof <= 19 and 0 <= p <= 1
    assert se < 0.5 * se_two, (se, se_two)


def test_terminal_text_has_the_verdict_and_a_row_per_metric(pair):
    """The text `repaychaos run` prints: the verdict first, one line per compared metric, curve RMS and power."""
    comparison = compare_results(*pair)
    text = comparison_text(comparison)
    assert text.splitlines()[0] == "model vs measurement: AGREE"
    for row in comparison["metrics"]:
        assert any(line.strip().startswith(row["metric"] + " ") for line in text.splitlines())
    assert "RMS difference" in text and "Power:" in text


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
