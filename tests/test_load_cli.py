"""`repaychaos load` end to end, and Locust's own master/worker mode."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from honest import resolved, resolved_exit

from repaychaos.load.runner import run_load
from repaychaos.scenarios import load_scenario_data

pytestmark = pytest.mark.live

SHORT = {
    "version": 1, "name": "short-live", "duration": "40s", "warmup": "2s", "seed": 3,
    "workload": {"arrivals": {"rate": "10/s"}, "check": {"first_after": "1s", "every": "2s", "max_checks": 3}},
    "pipeline": {"channel": {"latency": "50ms"}, "sync": {"workers": 4, "service": "100ms"},
                 "credit": {"service": "10ms"}, "reconcile": {"every": "20s"}},
    "slo": {"lost_repayments": "== 0", "duplicate_repayments": "== 0"},
}


def test_load_command_finishes_by_itself_writes_result_and_says_where_it_is(tmp_path):
    """`repaychaos load FILE --wall 8s` starts the service, drives it, stops, writes result.json
    and exits 0; with no terminal it prints its plan (the time scale --wall chose), then a status
    line at least every STATUS_EVERY seconds."""
    import time

    from repaychaos.load.runner import STATUS_EVERY

    path = tmp_path / "short.yaml"
    path.write_text(json.dumps(SHORT))  # JSON is YAML
    out = tmp_path / "out"
    began = time.time()
    proc = subprocess.run([sys.executable, "-m", "repaychaos", "load", str(path), "--wall", "8s",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    ok = resolved_exit(proc, out)  # a run too late to resolve its reads says so: exit 3, and still reports
    result = json.loads((out / "result.json").read_text())
    assert result["source"] == "load" and result["passed"] is ok
    m = result["metrics"]
    # ~380 acks in [2 s, 40 s) at 10/s (Poisson sd ~20): a bound far outside the noise.
    assert 250 <= m["repayments"] <= 520
    assert m["lost_repayments"] == 0 and m["duplicate_repayments"] == 0
    # No fault and 1 s to the first check against ~0.16 s of pipeline: every user sees usable at once.
    assert m["reads"] == m["repayments"]
    lines = proc.stderr.splitlines()
    assert lines[0].startswith("load short-live: about 8s wall") and "(--wall 8s)" in lines[0], lines[0]
    status = [line for line in lines if line.startswith("load: ")]
    assert len(status) >= max(1, int((time.time() - began - 8) // STATUS_EVERY)), lines
    assert "repayments done" in status[-1] and "ETA" in status[-1]


def test_master_worker_mode_splits_arrivals_and_loses_nothing():
    """With two local Locust workers the arrivals are sharded, and every ack is counted once."""
    result = run_load(load_scenario_data(SHORT), time_scale=10.0, locust_workers=2, progress=False)
    resolved(result)  # counts below hold either way; a late run must only say it was late
    assert result["run"]["locust_workers"] == 2 and result["run"]["arrivals"] == result["run"]["users"]
    m = result["metrics"]
    assert 250 <= m["repayments"] <= 520
    assert m["lost_repayments"] == 0 and m["duplicate_repayments"] == 0
    assert m["reads"] == m["repayments"]
