"""What a new user meets first: strict numbers, plain YAML errors, accounts that take effect,
`list`, a scale key for profiles, and the sweep's exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from repaychaos.scenarios.loader import load_scenario_text, with_overrides
from builders import scenario_yaml

BASE = """\
version: 1
name: front-door
duration: 10m
seed: 3
replications: {replications}
workload:
  arrivals: {{rate: 2/s}}
  check: {{first_after: 2s, every: 10s, max_checks: {max_checks}}}
pipeline:
  sync: {{workers: {workers}, service: {{dist: exponential, mean: 100ms}}}}
slo:
  lost_repayments: "== 0"
"""


def repaychaos(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "repaychaos", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


@pytest.mark.parametrize("key, line, value, found", [
    ("pipeline.sync.workers", 10, "true", "found True (a YAML boolean"),
    ("pipeline.sync.workers", 10, '"8"', "found '8'"),
    ("replications", 5, "yes", "found True (a YAML boolean"),
    ("workload.check.max_checks", 8, "true", "found True (a YAML boolean"),
])
def test_booleans_and_quoted_numbers_are_refused_where_a_number_belongs(write_scenario, key, line, value, found):
    values = {"replications": "1", "max_checks": "3", "workers": "4"}
    values[key.rsplit(".", 1)[-1]] = value
    path = write_scenario(BASE.format(**values))
    proc = repaychaos("validate", str(path))
    assert proc.returncode == 2
    assert f"{path}:{line}: {key}: expected a whole number" in proc.stderr
    assert found in proc.stderr
    assert "Traceback" not in proc.stderr


def test_quoted_accounts_refused_and_unit_strings_kept(write_scenario):
    text = BASE.format(replications=1, max_checks=3, workers="unlimited").replace(
        "workload:\n", 'workload:\n  accounts: "50000"\n')
    path = write_scenario(text)
    proc = repaychaos("validate", str(path))
    assert proc.returncode == 2
    assert f'{path}:7: workload.accounts: expected a whole number without quotes, found \'50000\'' in proc.stderr
    # the same file with units everywhere a unit belongs is fine
    scenario = load_scenario_text(BASE.format(replications=2, max_checks=3, workers=4))
    assert scenario.pipeline.sync.workers == 4 and scenario.workload.arrivals.rate == 2.0


def test_accounts_take_effect_without_a_warning(write_scenario):
    text = BASE.format(replications=1, max_checks=3, workers=4).replace("workload:\n", "workload:\n  accounts: 500\n")
    path = write_scenario(text)
    proc = repaychaos("validate", str(path))
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr
    proc = repaychaos("sim", str(path), "--replications", "1", "--processes", "1", "--out", str(path.parent / "o"))
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr
    assert "view_regressions 0" in proc.stdout


def test_accounts_with_users_who_pay_again_are_refused(write_scenario):
    text = BASE.format(replications=1, max_checks=3, workers=4).replace(
        "workload:\n", "workload:\n  accounts: 500\n").replace(
        "max_checks: 3}", "max_checks: 3, pay_again: {after_stale_reads: 1, probability: 0.5}}")
    path = write_scenario(text)
    proc = repaychaos("validate", str(path))
    assert proc.returncode == 2
    assert f"{path}:6: workload: expected workload.accounts not to come with workload.check.pay_again" in proc.stderr


@pytest.mark.parametrize("text, line, words", [
    ("version: 1\nname: t\nduration: 10m\nworkload:\n  arrivals:\n    rate: 2/s\n   check: {every: 30s}\n", 7,
     "each key indented exactly like the other keys of its mapping"),
    ("version: 1\nname: t\n  duration: 10m\n", 3, "a key here that has nothing to belong to"),
    ("version: 1\nname: t\n\tduration: 10m\n", 3, "YAML does not allow tabs"),
])
def test_yaml_indentation_errors_in_plain_words(write_scenario, text, line, words):
    path = write_scenario(text)
    proc = repaychaos("validate", str(path))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"{path}:{line}: expected ")
    assert words in proc.stderr
    assert "<block" not in proc.stderr


def test_list_has_a_header_and_straight_columns():
    lines = repaychaos("list").stdout.splitlines()
    assert lines[0].split()[:5] == ["SCENARIO", "LENGTH", "PEAK", "FAULTS", "DESCRIPTION"]
    column = lines[0].index("DESCRIPTION")
    bad_day = next(line for line in lines if line.startswith("bad-day "))
    assert "cutover, interface_bug, maintenance, sync_delay" in bad_day
    for line in lines[1:]:
        assert line[column - 2:column] == "  " and line[column] != " ", line


def test_scale_multiplies_a_whole_profile():
    text = """\
version: 1
name: profiled
duration: 2h
workload:
  arrivals:
    profile: [{at: 0s, rate: 10/s}, {at: 1h, rate: 30/s}]
"""
    scenario = load_scenario_text(text)
    scaled = with_overrides(scenario, {"workload.arrivals.scale": 1.5})
    assert scaled.workload.arrivals.steps == ((0.0, 15.0), (3600.0, 45.0))
    assert scaled.workload.arrivals.expected_count(0, 7200) == pytest.approx(1.5 * 3600 * 40)
    # normalising and loading again does not apply the scale twice
    again = with_overrides(scaled, {})
    assert again.workload.arrivals.steps == scaled.workload.arrivals.steps
    with pytest.raises(Exception, match="set 'scale'"):
        with_overrides(scenario, {"workload.arrivals.rate": 40})


SWEEP = scenario_yaml(
    {"workload.arrivals.rate": "4/s", "workload.check": {"first_after": "1s", "every": "10s", "max_checks": 3},
     "pipeline.sync": {"workers": 1, "service": {"dist": "exponential", "mean": "200ms"}}},
    name="sweep-exit", warmup=None, seed=5, replications=None, slo={"time_to_usable.p99": "< 2s"})


@pytest.mark.slow  # two sweeps through the command line
def test_sweep_exits_1_when_no_point_meets_the_slos_and_0_when_one_does(write_scenario, tmp_path):
    """At 4/s and 200 ms per message one worker is 80 % busy (p99 wait well over 2 s); with
    unlimited workers p99 of the exponential service is 0.92 s (+ credit 20 ms): it passes."""
    path = write_scenario(SWEEP)
    none = repaychaos("sweep", str(path), "--vary", "pipeline.sync.workers=1", "--replications", "1",
                      "--processes", "1", "--out", str(tmp_path / "a"))
    assert none.returncode == 1, none.stderr
    assert "no point of the sweep met every SLO" in none.stderr
    some = repaychaos("sweep", str(path), "--vary", "pipeline.sync.workers=1,unlimited", "--replications", "1",
                      "--processes", "1", "--out", str(tmp_path / "b"))
    assert some.returncode == 0, some.stderr
    bad = repaychaos("sweep", str(path), "--vary", "pipeline.sync.workers=true", "--out", str(tmp_path / "c"))
    assert bad.returncode == 2


def test_the_frontier_of_a_profile_sweep_is_its_load_scale():
    from repaychaos.sim.sweep_frontier import frontier_key

    assert frontier_key(["workload.arrivals.scale", "pipeline.sync.workers"]) == "workload.arrivals.scale"
    assert frontier_key(["pipeline.sync.workers", "faults[0].for"]) == "faults[0].for"
