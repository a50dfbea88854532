"""The validation page generator: one row per `repaychaos run` folder, the comparison `run`
itself makes, a date-and-machine stamp, and a clear refusal of a folder that is not a run."""

from __future__ import annotations

import math
import subprocess
import sys

from repaychaos.core.result import write_result
from repaychaos.reports.compare import compare_results
from repaychaos.scenarios.loader import load_scenario_text
from synthetic import synthetic_result

SCENARIO = """\
version: 1
name: validation-tiny
duration: 20m
warmup: 1m
seed: 9
replications: 2
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


def _page(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "repaychaos.reports.validation", *args], capture_output=True,
                          text=True, timeout=120)


def test_a_run_folder_becomes_one_row_with_the_runs_own_verdict(tmp_path):
    """The row carries both stale ratios and the verdict compare_results gives the same pair."""
    scenario = load_scenario_text(SCENARIO, "validation-tiny.yaml")
    sim, load = synthetic_result(scenario), synthetic_result(scenario, source="load", seed=1234)
    run = tmp_path / "validation-tiny-run"
    write_result(sim, run / "sim")
    write_result(load, run / "load")
    proc = _page(str(run))
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| validation-tiny |")]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].strip("|").split("|")]
    model, live = (float(x.strip(" %")) / 100 for x in cells[1].split("/"))
    for shown, record in ((model, sim), (live, load)):
        true = record["metrics"]["stale_read_ratio"]["value"]
        # printed to 3 significant digits: off by at most half a unit in the third
        assert abs(shown - true) <= 0.5 * 10 ** (math.floor(math.log10(true)) - 2) + 1e-12
    expected = "agree" if compare_results(sim, load)["agree"] else "DISAGREE"
    assert cells[4].startswith(expected)
    assert "*Generated " in proc.stdout and " CPUs, Python " in proc.stdout


def test_a_folder_that_is_not_a_run_is_refused_in_one_line(tmp_path):
    """Exit 2, the folder named, what was expected; no traceback."""
    proc = _page(str(tmp_path))
    assert proc.returncode == 2
    assert str(tmp_path) in proc.stderr and "sim/result.json" in proc.stderr
    assert "Traceback" not in proc.stderr
