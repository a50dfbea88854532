"""A Locust worker that joins from "another machine": it runs the command the run prints, with
nothing but that environment, and its users' records reach the runner through Locust's messages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repaychaos.load.launcher import ServiceProcess
from repaychaos.scenarios import load_scenario_data

pytestmark = [pytest.mark.live, pytest.mark.soak]  # remote workers get a minute to join

ROOT = Path(__file__).resolve().parents[1]


def test_a_remote_worker_joins_with_the_printed_command_and_its_reads_come_back(tmp_path):
    """One local and one 'remote' worker (started from the printed line, in another folder, with
    a clean environment): every arrival of both shards is acked and counted once."""
    scenario = load_scenario_data({
        "version": 1, "name": "remote", "duration": "10s", "seed": 2,
        "workload": {"arrivals": {"rate": "10/s"}, "check": {"first_after": "1s", "every": "1s", "max_checks": 2}},
        "pipeline": {"channel": {"latency": 0}, "sync": {"workers": "unlimited", "service": "100ms"},
                     "credit": {"service": 0}, "reconcile": "off"}})
    (tmp_path / "sc.json").write_text(json.dumps(scenario.normalised()))
    with ServiceProcess(scenario, tmp_path / "svc.db", time_scale=1.0) as svc:
        text = (ROOT / "loadtests" / "targets" / "reference-service.yaml").read_text(encoding="utf-8")
        (tmp_path / "t.yaml").write_text(text.replace("http://127.0.0.1:8000", svc.url).split("\nfaults:")[0])
        run = subprocess.Popen([sys.executable, "-m", "repaychaos", "load", str(tmp_path / "sc.json"), "--target",
                                str(tmp_path / "t.yaml"), "--locust-workers", "1", "--locust-remote-workers", "1",
                                "--out", str(tmp_path / "out"), "--no-progress"],
                               stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        assert run.stderr is not None
        line = ""
        end = time.time() + 30
        while time.time() < end and "on each machine run:" not in line:
            line = run.stderr.readline()
        command = run.stderr.readline().strip()
        assert command.startswith("env REPAYCHAOS_"), command
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        env = {"PATH": os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""),
               "HOME": str(elsewhere)}
        worker = subprocess.Popen(command, shell=True, cwd=elsewhere, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _, err = run.communicate(timeout=240)
        finally:
            worker.kill()
    assert run.returncode in (0, 1, 3), err
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    r = result["run"]
    assert r["complete"] and r["users"] == r["arrivals"] == r["acked"] > 50  # 100 arrivals expected
    assert r["request_lateness_s"]["repay"]["n"] == r["arrivals"]
