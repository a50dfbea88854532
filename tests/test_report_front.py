"""What a planner sees at a glance: no emoji, a staleness tail, empty phases said plainly,
the scenario as written, recovery against a fault-free run, units on sweep axes."""

from __future__ import annotations

import pytest

from repaychaos.reports.html import report_html
from repaychaos.reports.plots import quantile_points
from repaychaos.reports.recovery import fault_free_recovery
from repaychaos.reports.render import write_report
from repaychaos.reports.sweep_plots import _axis_label, cell_text
from repaychaos.scenarios.loader import load_scenario_text
from repaychaos.scenarios.reference import FAULT_EXAMPLES
from repaychaos.sim.simulate import run_model

EMOJI = ("\u2705", "\u274c", "\u26a0")


@pytest.fixture(scope="module")
def maintenance_result():
    """The reference's maintenance example (30 min at 5/s, sync paused 10m..15m), one replication."""
    scenario = load_scenario_text(FAULT_EXAMPLES["maintenance"], "maintenance.yaml")
    return run_model(scenario, replications=1, processes=1, progress=False)


def test_quantile_points_follow_from_the_time_to_usable_quantiles():
    """1000 repayments, 10 held, 5 never usable although not held (lost): the curve's
    population is 990; at p99 (q = 0.99) 1 % of the 985 that became usable are still stale,
    plus the 5 that never will: (9.85 + 5) / 990."""
    result = {"metrics": {"repayments": 1000, "never_usable": 15, "risk_holds": 10,
                          "time_to_usable": {"p50": 1.0, "p95": 60.0, "p99": 780.0, "p999": 880.0, "max": 900.0}}}
    points = dict(quantile_points(result))
    assert points[780.0] == pytest.approx((0.01 * 985 + 5) / 990)
    assert points[1.0] == pytest.approx((0.5 * 985 + 5) / 990)
    assert points[900.0] == pytest.approx(5 / 990)
    assert quantile_points({"metrics": {"repayments": 0}}) == []


def test_html_has_svg_marks_not_emoji_and_the_scenario_as_written(maintenance_result, tmp_path):
    paths = write_report([maintenance_result], tmp_path)
    page = paths["html"].read_text(encoding="utf-8")
    summary = paths["markdown"].read_text(encoding="utf-8")
    for mark in EMOJI:
        assert mark not in page and mark not in summary
    assert page.count('<svg class="mark"') == 1 + len(maintenance_result["slo"])  # banner + one per SLO
    assert "<h3>As written</h3>" in page and "name: example-maintenance" in page
    assert "component: sync" in page and "duration: 1800.0" in page  # written and normalised side by side


def test_empty_phase_says_no_repayments(maintenance_result):
    result = dict(maintenance_result)
    phases = dict(result["phases"])
    phases["deploy"] = {**phases["deploy"], "repayments": 0}
    result["phases"] = phases
    page = report_html([result], [[]])
    assert "n/a (no repayments)" in page
    row = page[page.index("<td>@deploy</td>"):].split("</tr>")[0]
    assert "agree" not in row and "0%" not in row


def test_recovery_is_measured_against_the_same_scenario_without_faults(maintenance_result):
    """The baseline is the stale share of a fault-free run with the same seed: the same as an
    explicit run of the scenario with `faults: []` (common random numbers make it exact)."""
    recovery = fault_free_recovery(maintenance_result)
    assert recovery is not None and "without its faults" in recovery["baseline"]
    text = FAULT_EXAMPLES["maintenance"]
    free_text = text[:text.index("faults:")]
    free = run_model(load_scenario_text(free_text, "free.yaml"), replications=1, processes=1, progress=False)
    series = free["series"]
    assert recovery["baseline_stale_share"] == pytest.approx(sum(series["stale_reads"]) / sum(series["reads"]))
    (window,) = recovery["windows"]
    assert window["fault"] == "deploy" and window["start"] == 600 and window["end"] == 900
    width = maintenance_result["series"]["bin_width"]
    # recovered some whole number of bins after the window, and before the run ends
    assert window["recovered_after"] is not None
    assert (window["recovered_after"] + 900) / width == pytest.approx(round((window["recovered_after"] + 900) / width))


def test_no_fault_free_run_for_a_result_without_faults():
    scenario = load_scenario_text(FAULT_EXAMPLES["maintenance"][:FAULT_EXAMPLES["maintenance"].index("faults:")])
    result = run_model(scenario, replications=1, processes=1, progress=False)
    assert fault_free_recovery(result) is None


def test_sweep_cells_and_axes():
    assert cell_text(0.012, "inconclusive") == "1.2%\nINCONCLUSIVE"
    assert cell_text(0.5, False) == "50%\nFAIL"
    assert cell_text(0.001, True) == "0.1%"
    assert _axis_label("workload.arrivals.rate") == "workload.arrivals.rate (/s)"
    assert _axis_label("faults[0].for") == "faults[0].for (s)"
    assert _axis_label("pipeline.sync.workers") == "pipeline.sync.workers"
