"""Target files: loaded with the scenario loader's error quality; placeholders; the CLI around them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from repaychaos.core.errors import InvalidInput, InvalidScenario, UnsafeTarget
from repaychaos.scenarios import load_scenario, load_scenario_data
from repaychaos.load.blackbox import run_target
from repaychaos.target import is_target_file, load_target
from repaychaos.target.render import render, resolve_pointer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "loadtests" / "targets" / "reference-service.yaml"
DEMO = ROOT / "loadtests" / "targets" / "pause-sync-demo.yaml"

GOOD = """\
base_url: http://127.0.0.1:8000
repay:
  path: /repayments
  json: {account: "{account}"}
status:
  path: /accounts/{account}/status
  usable: {pointer: /status, equals: usable}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "target.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_the_bundled_example_and_its_demo_scenario_load():
    """The README's example target file and scenario are valid and name the same fault."""
    target = load_target(EXAMPLE)
    assert is_target_file(EXAMPLE) and not is_target_file(DEMO)
    assert [f.fault for f in target.faults] == ["pause-sync"]
    assert load_scenario(DEMO).fault_label(0) == "pause-sync"


def test_a_bad_key_is_named_with_its_line_and_a_suggestion(tmp_path):
    """An unknown key: file, line, key path, what was expected, and a did-you-mean."""
    path = _write(tmp_path, GOOD.replace("  usable:", "  usabel:"))
    with pytest.raises(InvalidScenario) as err:
        load_target(path)
    text = str(err.value)
    assert f"{path}:7: status.usabel:" in text and "did you mean 'usable'?" in text
    assert f"{path}:5: status.usable:" in text and "required key 'usable'" in text


def test_a_bad_value_names_expected_and_found(tmp_path):
    """An action that is both an HTTP request and a command; a pointer without '/'; a bad method."""
    path = _write(tmp_path, GOOD.replace("pointer: /status", "pointer: status") + textwrap.dedent("""\
        faults:
          - fault: x
            start: {path: /chaos, command: [echo]}
            stop: {method: FETCH, path: /x}
        """))
    with pytest.raises(InvalidScenario) as err:
        load_target(path)
    problems = {p.path: p for p in err.value.problems}
    assert problems["status.usable.pointer"].line == 7 and "JSON pointer" in problems["status.usable.pointer"].expected
    assert problems["faults[0].start"].line == 10 and "exactly one of 'path'" in problems["faults[0].start"].expected
    assert problems["faults[0].stop.method"].found == "'FETCH'"


def test_a_fault_the_scenario_does_not_have_is_refused_before_anything_runs(tmp_path):
    """Fault actions are matched to the scenario's faults by name or label."""
    target = load_target(_write(tmp_path, GOOD + "faults:\n  - fault: pause-snyc\n    stop: {command: ['true']}\n"))
    with pytest.raises(InvalidScenario, match="did you mean 'pause-sync'"):
        run_target(load_scenario(DEMO), target, target_file="t.yaml")


def test_remote_targets_and_missing_environment_are_refused(tmp_path, monkeypatch):
    """A non-loopback base_url needs allow_remote; an unset {env.NAME} is bad input (exit 2)."""
    scenario = load_scenario(DEMO)
    remote = load_target(_write(tmp_path, GOOD.replace("127.0.0.1", "192.0.2.7")))
    with pytest.raises(UnsafeTarget, match="base_url"):
        run_target(scenario, remote)
    monkeypatch.delenv("REPAYCHAOS_TOKEN", raising=False)
    with pytest.raises(InvalidInput, match="REPAYCHAOS_TOKEN"):
        run_target(scenario, load_target(EXAMPLE))


def test_the_request_cap_bounds_a_run_before_it_starts(tmp_path):
    """Expected repayments x (1 + max_checks) above max_requests: refused, nothing sent."""
    target = load_target(_write(tmp_path, GOOD + "max_requests: 100\n"))
    scenario = load_scenario_data({"version": 1, "name": "cap", "duration": "1m",
                                   "workload": {"arrivals": {"rate": "2/s"}}})
    with pytest.raises(InvalidInput, match="max_requests"):
        run_target(scenario, target)


def test_phantom_records_are_refused_in_target_mode_before_anything_runs(tmp_path):
    """Only the reference service writes phantom records on accounts its holders know: a target run
    (and `repaychaos run --target`) refuses a scenario with one, saying why (exit 2)."""
    scenario = load_scenario_data({"version": 1, "name": "phantom-target", "duration": "1m",
                                   "workload": {"arrivals": {"rate": "2/s"}},
                                   "faults": [{"type": "phantom_record", "rate": "1/s", "holder_looks": ["5s"]}]})
    with pytest.raises(InvalidInput, match="phantom_record.*target mode"):
        run_target(scenario, load_target(_write(tmp_path, GOOD)))


def test_placeholders_and_pointers():
    """{name}, {env.X} and {start./pointer} are filled; RFC 6901 escapes work; unknown names are errors."""
    values = {"account": "a-1", "key": "k"}
    assert render({"h": "{key}", "b": ["{account}", 3]}, values) == {"h": "k", "b": ["a-1", 3]}
    assert render("/chaos/faults/{start./id}", values, start={"id": "f7"}) == "/chaos/faults/f7"
    assert resolve_pointer({"a/b": {"~x": [1, 2]}}, "/a~1b/~0x/1") == 2
    with pytest.raises(InvalidInput, match="unknown placeholder"):
        render("{acount}", values)


def test_cli_validate_and_schema_know_target_files(tmp_path):
    """`repaychaos validate` accepts a target file (exit 0) and refuses a bad one (exit 2, no traceback);
    `repaychaos schema --target` prints the target file's JSON Schema."""
    ok = subprocess.run([sys.executable, "-m", "repaychaos", "validate", str(EXAMPLE), str(DEMO)],
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and "target http://127.0.0.1:8000" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "repaychaos", "validate",
                          str(_write(tmp_path, GOOD.replace("/repayments", "repayments")))],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "repay.path" in bad.stderr and "Traceback" not in bad.stderr
    schema = subprocess.run([sys.executable, "-m", "repaychaos", "schema", "--target"],
                            capture_output=True, text=True, timeout=60)
    data = json.loads(schema.stdout)
    assert schema.returncode == 0 and {"base_url", "repay", "status"} <= set(data["required"])
