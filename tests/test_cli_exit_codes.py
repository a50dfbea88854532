"""The command line's contract (docs/reference/cli.md): exit codes, one-line errors, result files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from repaychaos.scenarios import bundled_scenarios
from builders import scenario_yaml

def tiny_text(rule: str) -> str:
    """Two replications of 20 minutes, four exponential sync workers, an SLO on the stale-read ratio."""
    return scenario_yaml(
        {"workload.check": {"first_after": "2s", "every": "10s", "max_checks": 3},
         "pipeline.channel": {"latency": "50ms"},
         "pipeline.sync": {"workers": 4, "service": {"dist": "exponential", "mean": "100ms"}},
         "pipeline.credit": {"service": "10ms"}},
        name="tiny-cli", slo={"lost_repayments": "== 0", "stale_read_ratio": rule})


def repaychaos(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "repaychaos", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def tiny(write_scenario, rule: str) -> Path:
    return write_scenario(tiny_text(rule))


def test_validate_valid_files_exit_0():
    """Every bundled scenario validates with exit 0 and one ok line each."""
    paths = [str(p) for p in bundled_scenarios().values()]
    proc = repaychaos("validate", *paths)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\nok ") + proc.stdout.startswith("ok ") == len(paths)


def test_validate_invalid_file_exit_2_without_traceback(write_scenario):
    """A bad file gets file:line: key path: expected ... and exit 2, never a traceback."""
    text = tiny_text("< 1%").replace("workers: 4", "workers: four")
    line = text.splitlines().index("    workers: four") + 1
    path = write_scenario(text)
    proc = repaychaos("validate", str(path))
    assert proc.returncode == 2
    assert f"{path}:{line}: pipeline.sync.workers: expected a valid integer" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_list_shows_every_bundled_scenario():
    """A header, then one line per bundled scenario, each starting with its name."""
    proc = repaychaos("list")
    assert proc.returncode == 0
    names = [line.split()[0] for line in proc.stdout.splitlines()[1:]]
    assert names == list(bundled_scenarios())


def test_sim_exit_0_when_slos_met_and_writes_result(write_scenario, tmp_path):
    """A loose SLO passes: exit 0, and result.json follows docs/reference/result-file.md."""
    out = tmp_path / "out"
    proc = repaychaos("sim", str(tiny(write_scenario, "< 50%")), "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["schema"] == "repaychaos.result/1" and result["source"] == "sim"
    assert result["seed"] == 3 and result["scenario"]["name"] == "tiny-cli"
    for key in ("repayments", "reads", "stale_reads", "stale_read_ratio", "affected_ratio", "time_to_usable",
                "never_usable", "visibility", "support_contacts_per_10k", "lost_repayments",
                "duplicate_repayments", "wrong_usable_reads", "stale_reads_by_cause"):
        assert key in result["metrics"], key
    assert result["passed"] is True and [r["metric"] for r in result["slo"]] == ["lost_repayments", "stale_read_ratio"]
    assert "tiny-cli [sim]" in proc.stdout


def test_sim_exit_1_when_an_slo_fails(write_scenario, tmp_path):
    """An impossible SLO (stale reads below zero) fails the gate with exit 1."""
    proc = repaychaos("sim", str(tiny(write_scenario, "< 0%")), "--out", str(tmp_path / "o"), "--no-progress")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAIL" in proc.stdout


def test_sim_exit_2_on_bad_input(write_scenario, tmp_path):
    """Unknown scenario, bad scenario and bad option all exit 2 without a traceback."""
    bad = write_scenario("version: 1\nname: x\n  broken: [\n")
    for args in (["sim", "no-such-scenario"], ["sim", str(bad)], ["sim", "quiet-baseline", "--replications", "0"]):
        proc = repaychaos(*args)
        assert proc.returncode == 2, args
        assert "Traceback" not in proc.stderr


@pytest.mark.slow  # runs the model several times through the command line
def test_same_seed_gives_byte_identical_metrics(write_scenario, tmp_path):
    """Two runs with the same scenario and seed write identical metrics, byte for byte."""
    path = tiny(write_scenario, "< 50%")
    blobs = []
    for name in ("a", "b"):
        repaychaos("sim", str(path), "--out", str(tmp_path / name), "--no-progress")
        result = json.loads((tmp_path / name / "result.json").read_text())
        blobs.append(json.dumps(result["metrics"], sort_keys=True))
    assert blobs[0] == blobs[1]
    repaychaos("sim", str(path), "--seed", "4", "--out", str(tmp_path / "c"), "--no-progress")
    other = json.loads((tmp_path / "c" / "result.json").read_text())
    assert json.dumps(other["metrics"], sort_keys=True) != blobs[0]


def test_report_refuses_a_file_that_is_not_a_result(tmp_path):
    """report on arbitrary JSON exits 2 naming the file."""
    junk = tmp_path / "x.json"
    junk.write_text('{"hello": 1}')
    proc = repaychaos("report", str(junk))
    assert proc.returncode == 2 and str(junk) in proc.stderr


def test_sweep_without_vary_is_refused():
    """sweep needs something to vary: exit 2 with a usage hint."""
    proc = repaychaos("sweep", "quiet-baseline")
    assert proc.returncode == 2 and "--vary" in proc.stderr
