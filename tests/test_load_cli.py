"""`repaychaos load` end to end, and Locust's own master/worker mode."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from honest import resolved, resolved_exit

from repaychaos.scenarios import load_scenario_data
from repaychaos.load.runner import run_load

pytestmark = pytest.mark.live

SHORT = {
    "version": 1, "name": "short-live", "duration": "40s", "warmup": "2s", "seed": 3,
    "workload": {"arrivals": {"rate": "10/s"}, "check": {"first_after": "1s", "every": "2s", "max_checks": 3}},
    "pipeline": {"channel": {"latency": "50ms"}, "sync": {"workers": 4, "service": "100ms"},
                 "credit": {"service": "10ms"}, "reconcile": {"every": "20s"}},
    "slo": {"lost_repayments": "== 0", "duplicate_repayments": "== 0"},
}


def test_load_command_finishes_by_itself_and_writes_result(tmp_path):
    """`repaychaos load FILE` starts the service, drives it, stops, writes result.json and exits 0."""
    path = tmp_path / "short.yaml"
    path.write_text(json.dumps(SHORT))  # JSON is YAML
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "repaychaos", "load", str(path), "--time-scale", "4",
                           "--out", str(out), "--no-progress"], capture_output=True, text=True, timeout=300)
    ok = resolved_exit(proc, out)
    result = json.loads((out / "result.json").read_text())
    assert result["source"] == "load" and result["passed"] is ok
    m = result["metrics"]
    # ~380 acks in [2 s, 40 s) at 10/s (Poisson sd ~20): a bound far outside the noise.
    assert 250 <= m["repayments"] <= 520
    assert m["lost_repayments"] == 0 and m["duplicate_repayments"] == 0
    # No fault and 1 s to the first check against ~0.16 s of pipeline: every user sees usable at once.
    assert m["reads"] == m["repayments"]


def test_master_worker_mode_splits_arrivals_and_loses_nothing():
    """With two local Locust workers the arrivals are sharded, and every ack is counted once."""
    result = run_load(load_scenario_data(SHORT), time_scale=4.0, locust_workers=2, progress=False)
    resolved(result)  # counts below hold either way; a late run must only say it was late
    assert result["run"]["locust_workers"] == 2 and result["run"]["arrivals"] == result["run"]["users"]
    m = result["metrics"]
    assert 250 <= m["repayments"] <= 520
    assert m["lost_repayments"] == 0 and m["duplicate_repayments"] == 0
    assert m["reads"] == m["repayments"]
