"""`repaychaos run` tells its verdict: the terminal table, distinct exit messages, the report banner."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest

from repaychaos.cli import _run_exit
from repaychaos.reports.compare import compare_results
from repaychaos.reports.html import report_html
from repaychaos.reports.markdown import summary_markdown
from synthetic import synthetic_result
from repaychaos.scenarios.loader import load_scenario_text
from builders import scenario_yaml

SCENARIO = scenario_yaml(
    {"workload.arrivals.rate": "3/s", "workload.check.first_after": {"dist": "exponential", "mean": "2s"},
     "pipeline.sync.service": {"dist": "exponential", "mean": "1s"}},
    name="verdict-tiny", seed=9, slo={"stale_read_ratio": "< 90%"})


#: The bundled library, spelled out so a new scenario must be added here (checked below).
BUNDLED = ["bad-day", "cached-app-view", "corrupting-interface", "credit-rule-lag", "impatient-payers",
           "interface-drop-reconcile", "maintenance-reject", "month-end-peak", "nightly-maintenance",
           "out-of-order-status-writes", "phantom-debt-until-reconcile", "quiet-baseline", "risk-holds", "slow-sync", "system-cutover"]


@pytest.fixture(scope="module")
def pair():
    scenario = load_scenario_text(SCENARIO, "verdict-tiny.yaml")
    sim = synthetic_result(scenario)
    load = copy.deepcopy(sim)
    load["source"] = "load"
    return sim, load


def _disagreeing(sim, load):
    load = copy.deepcopy(load)
    node = load["metrics"]["stale_read_ratio"]
    node["value"] *= 3
    node["ci95"] = [x * 3 for x in node["ci95"]]
    return compare_results(sim, load)


def test_disagreement_and_slo_failure_have_distinct_messages(pair, capsys):
    """Exit 1 either way, but stderr says which: DISAGREE on <metrics>, or the SLO gate failed."""
    sim, load = pair
    assert _run_exit(sim, load, compare_results(sim, load)) == 0
    assert capsys.readouterr().err == ""

    assert _run_exit(sim, load, _disagreeing(sim, load)) == 1
    err = capsys.readouterr().err
    assert "DISAGREE on stale_read_ratio" in err and "SLO" not in err

    failed = copy.deepcopy(load)
    failed["passed"], failed["verdict"] = False, "fail"
    assert _run_exit(sim, failed, compare_results(sim, failed)) == 1
    err = capsys.readouterr().err
    assert "SLO gate failed for the measurement" in err and "DISAGREE" not in err


def test_report_banner_says_disagree_over_a_passing_gate(pair):
    """SLOs pass but model and measurement disagree: the banner is red and says DISAGREE, not PASS."""
    sim, load = pair
    assert sim["passed"] and load["passed"]
    comparison = _disagreeing(sim, load)
    page = report_html([sim, load], [[], []], comparison)
    banner = next(line for line in page.splitlines() if 'class="banner' in line)
    assert 'class="banner fail"' in banner and "DISAGREE" in banner and "PASS —" not in banner
    assert summary_markdown([sim, load], comparison).startswith("## repaychaos: DISAGREE")


def test_report_banner_says_agree_when_they_do(pair):
    """With agreement the banner keeps the SLO verdict and says the two agree."""
    sim, load = pair
    page = report_html([sim, load], [[], []], compare_results(sim, load))
    banner = next(line for line in page.splitlines() if 'class="banner' in line)
    assert 'class="banner pass"' in banner and "agree" in banner


@pytest.mark.soak
@pytest.mark.live
@pytest.mark.parametrize("name", BUNDLED)
def test_run_agrees_on_every_bundled_scenario(name, tmp_path):
    """`repaychaos run NAME` at default settings: the verdict table is printed and model and measurement agree."""
    proc = subprocess.run([sys.executable, "-m", "repaychaos", "run", name, "--out", str(tmp_path), "--no-progress"],
                          capture_output=True, text=True, timeout=3600)
    assert "model vs measurement: " in proc.stdout, proc.stdout + proc.stderr
    assert "DISAGREE" not in proc.stderr, proc.stdout + proc.stderr


def test_the_soak_list_is_every_bundled_scenario():
    """The soak test above names every bundled scenario (a new one must be added there)."""
    from repaychaos.scenarios import bundled_scenarios

    assert sorted(bundled_scenarios()) == sorted(BUNDLED)
