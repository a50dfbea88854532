"""Adding a fault type is adding one module to ``repaychaos/scenarios/faults/``.

The test copies the package, writes a toy fault module into the copy's fault package and
nothing else, and checks in a fresh interpreter that the toy type validates in a scenario,
has its keys in the JSON Schema and the scenario reference, is a cause of stale reads and
an SLO metric path, is accepted by the live service's fault API, and runs through the model
with its stale reads attributed to it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

TOY = '''\
"""Fault type ``toy_stall``: every sync message started in the window takes ``stall`` longer."""

from __future__ import annotations

from typing import Any, Literal

from repaychaos.scenarios.distributions import Duration
from repaychaos.scenarios.faults.base import FaultBase
from repaychaos.scenarios.faults.hooks import SYNC_START, Hook, LiveAPI, LiveFault, LiveMessage, LiveRule, ModelInjector

ORDER = 8
LABEL = "toy stall"
COLOUR = "#123456"
MEANINGS = {"stall": "Constant time added to each sync message started in the window."}
EXAMPLE_DESCRIPTION = "A toy stall."
EXAMPLE = """faults:
  - type: toy_stall
    at: 10m
    for: 5m
    stall: 20s
"""


class ToyStall(FaultBase):
    """Every sync message started in the window takes ``stall`` longer."""

    type: Literal["toy_stall"]
    stall: Duration


SPEC = ToyStall


class ToyStallInjector(ModelInjector):
    def hooks(self) -> list[tuple[Hook, float, float]]:
        return [(SYNC_START, s, e) for s, e in self.windows]

    def sync_start(self, msg: Any, t: float) -> float:
        msg.touch("toy_stall", t, self.fault.stall)
        self.model.slows_pool("toy_stall")
        return float(self.fault.stall)


class ToyStallRule(LiveRule):
    def sync_start(self, api: LiveAPI, active: LiveFault, msg: LiveMessage, t: float) -> float:
        msg.trace.touch("toy_stall", t, active.fault.stall)
        api.slows_pool("toy_stall")
        return float(active.fault.stall)


MODEL = ToyStallInjector
LIVE = ToyStallRule()
'''

CHECK = '''\
import json, sys
import repaychaos
from repaychaos.scenarios.loader import load_scenario_text
from repaychaos.scenarios.faults import CAUSES, FAULT_TYPES, REGISTRY
from repaychaos.scenarios.reference import reference_markdown, scenario_json_schema
from repaychaos.scenarios.spec import SLO_METRIC_PATHS
from repaychaos.service.fault_board import ActiveFault, parse_fault
from repaychaos.sim.simulate import run_model

scenario = load_scenario_text(sys.stdin.read())
fault = parse_fault({"type": "toy_stall", "at": "1m", "for": "1m", "stall": "5s"})
result = run_model(scenario, processes=1)
print(json.dumps({
    "package": repaychaos.__file__,
    "fault_types": list(FAULT_TYPES),
    "causes": list(CAUSES),
    "scenario_fault": scenario.faults[0].model_dump(by_alias=True),
    "schema": json.dumps(scenario_json_schema()),
    "reference": reference_markdown(),
    "slo_paths": list(SLO_METRIC_PATHS),
    "live_rule": type(ActiveFault("1", fault, "toy", "live").rule).__name__,
    "by_cause": result["metrics"]["stale_reads_by_cause"],
    "phases": sorted(result["phases"]),
    "slo": result["slo"],
}))
'''

SCENARIO = """\
version: 1
name: toy
duration: 10m
seed: 3
replications: 1
workload:
  arrivals: {rate: 1/s}
  check: {first_after: 2s, every: 10s, max_checks: 4}
pipeline:
  sync: {workers: 4, service: 50ms}
  reconcile: off
faults:
  - type: toy_stall
    at: 2m
    for: 3m
    stall: 15s
slo:
  stale_reads_by_cause.toy_stall: "> 0"
"""


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("toy")
    shutil.copytree(ROOT / "repaychaos", root / "repaychaos", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "repaychaos" / "scenarios" / "faults" / "toy_stall.py").write_text(TOY, encoding="utf-8")
    proc = subprocess.run([sys.executable, "-c", CHECK], input=SCENARIO, cwd=root, capture_output=True, text=True,
                          timeout=300, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert Path(found["package"]).is_relative_to(root), "the copy, not the work tree, must be imported"
    return found


def test_the_toy_module_is_a_registered_fault_type_and_a_cause(toy):
    assert toy["fault_types"][-1] == "toy_stall"  # ORDER 8: after the bundled types
    assert toy["causes"] == ["queueing", *toy["fault_types"], "cache"]
    assert "stale_reads_by_cause.toy_stall" in toy["slo_paths"]


def test_the_toy_fault_validates_in_a_scenario_and_in_the_service_api(toy):
    assert toy["scenario_fault"]["type"] == "toy_stall" and toy["scenario_fault"]["stall"] == 15.0
    assert toy["live_rule"] == "ToyStallRule"


def test_the_schema_and_the_reference_describe_the_toy_fault(toy):
    assert '"toy_stall"' in toy["schema"]
    assert "### `toy_stall`" in toy["reference"]
    assert ("| `stall` | duration | required | Constant time added to each sync message started in the window. |"
            in toy["reference"])
    assert "  - type: toy_stall" in toy["reference"]  # its runnable example
    assert "| `stale_reads_by_cause.toy_stall` |" in toy["reference"]


def test_the_model_runs_the_toy_fault_and_blames_it(toy):
    """Users read 2 s after the ack; a message started in the window takes 15 s longer, so
    its first read is stale and the toy fault is the only touch on its path."""
    assert toy["by_cause"]["toy_stall"] > 0
    # the first schema's causes, always; of the later ones, the toy (the scenario has it) and
    # none of rule_lag, phantom_record, unversioned_writes (it has none): docs/reference/metrics.md
    assert set(toy["by_cause"]) == set(toy["causes"]) - {"rule_lag", "phantom_record", "unversioned_writes"}
    assert "toy_stall" in toy["phases"]
    assert [row["passed"] for row in toy["slo"]] == [True]


def test_the_work_tree_itself_has_no_toy(toy):
    """The copy was changed, not the repository."""
    assert not (ROOT / "repaychaos" / "scenarios" / "faults" / "toy_stall.py").exists()
