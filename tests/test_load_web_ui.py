"""``repaychaos load --web-ui``: Locust's web UI with the Staleness tab on a real live run.

The run is started as a user starts it (a subprocess of the command line) on a short
scenario with a sync pause; while it goes on, the web UI's staleness endpoints must carry
the run's own numbers, and the run must end by itself with its usual exit status and
result.json. The numbers the tab shows last (after every user is done: the page stays up
``WEB_UI_LINGER`` seconds for that) are the counts the run's read log holds, because both
count the same reads: the users' ``read_seen`` events and their records. (The result's
metrics leave out repayments acked after the scenario's end; the read log has every user.)
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from repaychaos.core.errors import InvalidInput, UnsafeTarget
from repaychaos.load.launcher import free_port, stop_process
from repaychaos.load.swarm import WEB_UI_LINGER, web_ui

#: 40 scenario seconds at 5 repayments/s with a 10 s sync pause: at time scale 8 the arrivals
#: take 5 wall seconds and the whole run about 15 (the web UI stays up WEB_UI_LINGER s of that).
SCENARIO = {
    "version": 1, "name": "web-ui-check", "description": "a short run for the web UI test",
    "duration": "40s", "seed": 5,
    "workload": {"arrivals": {"rate": "5/s"}, "check": {"first_after": "2s", "every": "2s", "max_checks": 3}},
    "pipeline": {"channel": {"latency": "20ms"}, "sync": {"workers": 4, "service": "100ms"},
                 "credit": {"service": "20ms", "risk_hold_ratio": 0}},
    "faults": [{"type": "maintenance", "name": "short-pause", "component": "sync", "mode": "pause", "at": "10s",
                "for": "10s"}],
}
#: Wall seconds the run may take before the test gives up on it (it takes about 15).
BOUND = 120.0


def _row(stats: dict[str, Any]) -> dict[str, Any] | None:
    """The Staleness tab's row for this run in a /stats/requests answer."""
    for table in stats.get("extended_stats", []):
        if table.get("key") == "staleness":
            rows = [r for r in table["data"] if r["scenario"] == SCENARIO["name"]]
            return rows[0] if rows else None
    return None


def _exit_status(result: dict[str, Any]) -> int:
    """What ``repaychaos load`` exits with for this result (docs/reference/cli.md, exit codes)."""
    if not result["run"]["validity"]["ok"]:
        return 3
    return 0 if result["passed"] else 1


def test_the_web_ui_options_are_checked_before_anything_starts() -> None:
    """A taken port and a host beyond loopback are refused up front: exit 2, one line, no traceback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        with pytest.raises(InvalidInput, match="--web-port 0 for a free one"):
            web_ui(port)
        proc = subprocess.run([sys.executable, "-m", "repaychaos", "load", "nightly-maintenance", "--web-ui",
                               "--web-port", str(port)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"--web-port {port}: the web UI cannot listen there" in proc.stderr
    with pytest.raises(UnsafeTarget, match="--allow-remote"):
        web_ui(0, "0.0.0.0")
    assert web_ui(0, "0.0.0.0", allow_remote=True).port > 0
    free = web_ui(0)
    assert free.host == "127.0.0.1" and free.port > 0 and free.url == f"http://127.0.0.1:{free.port}"


@pytest.mark.live
def test_the_web_ui_shows_the_runs_staleness_and_the_run_ends_by_itself(tmp_path: Path) -> None:
    path = tmp_path / "web-ui-check.json"
    path.write_text(json.dumps(SCENARIO))
    port = free_port()
    web = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "repaychaos", "load", str(path), "--time-scale", "8", "--web-ui", "--web-port",
           str(port), "--out", str(tmp_path / "out"), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    during: dict[str, Any] | None = None  # the first row with reads in it
    last: dict[str, Any] | None = None  # the last row the web UI served before it closed
    chart = csv_text = ""
    try:
        end = time.time() + BOUND
        while time.time() < end and proc.poll() is None:
            try:
                row = _row(requests.get(web + "/stats/requests", timeout=5).json())
            except (requests.RequestException, ValueError):
                row = None
            if row is not None:
                last = row
                if during is None and row["reads"] > 0:
                    during = row
                    chart = requests.get(web + "/staleness", timeout=5).text
                if during is not None:
                    # the history is sampled on its own beat, so its rows lag the live row: keep
                    # the latest copy the page served
                    try:
                        csv_text = requests.get(web + "/staleness/csv", timeout=5).text
                    except requests.RequestException:
                        pass
            time.sleep(0.5)
        out, _ = proc.communicate(timeout=max(1.0, end - time.time()))
    finally:
        if proc.poll() is None:
            stop_process(proc, 10.0)
            proc.communicate()
    assert f"load: Locust web UI at {web} " in out, out[-3000:]
    # while the run went on: the tab's row, the chart page and the CSV history carry its reads
    assert during is not None, out[-3000:]
    assert during["source"] == "load" and during["reads"] > 0 and during["acked"] > 0
    assert "Stale share of reads" in chart
    history = [r for r in csv.DictReader(io.StringIO(csv_text)) if r["scenario"] == SCENARIO["name"]]
    assert history and int(history[-1]["reads"]) > 0
    # the run ended by itself, with the exit status and result file of a headless run
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert proc.returncode == _exit_status(result), out[-3000:]
    assert result["run"]["complete"] and result["run"]["locust_exit_codes"] == [0]
    # the page stayed up after the users were done, with the counts of the run's records
    assert last is not None
    with gzip.open(tmp_path / "out" / "reads.jsonl.gz", "rt") as fh:
        users = [json.loads(line) for line in fh][1:]  # after the header line
    reads = [mark for user in users for _, mark in user["reads"]]
    assert last["acked"] == result["run"]["acked"] and 0 < last["users_done"] <= last["acked"], last
    assert (last["reads"], last["stale_reads"]) == (len(reads), sum(m != "u" for m in reads)), last
    # the sync pause made reads stale
    assert result["metrics"]["stale_reads"] > 0 and last["stale_reads"] >= result["metrics"]["stale_reads"]
    assert WEB_UI_LINGER <= result["run"]["wall_seconds"] <= BOUND


@pytest.mark.live
@pytest.mark.soak  # 20 s; the default suite runs the web UI with its chart above
def test_stop_in_the_web_ui_ends_the_run_with_what_it_has(tmp_path: Path) -> None:
    """Stop pressed in the page (Locust's POST /stop) ends the run long before its 80 wall
    seconds of arrivals: the users still at work are recorded as incomplete, and the run says it is not
    a measurement (exit 3) instead of waiting for its deadline."""
    path = tmp_path / "web-ui-check.json"
    path.write_text(json.dumps(SCENARIO))
    port = free_port()
    web = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "repaychaos", "load", str(path), "--time-scale", "0.5", "--web-ui", "--web-port",
           str(port), "--out", str(tmp_path / "out"), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    stopped = False
    try:
        end = time.time() + BOUND
        while time.time() < end and proc.poll() is None and not stopped:
            try:
                row = _row(requests.get(web + "/stats/requests", timeout=5).json())
                if row is not None and row["reads"] > 0:
                    stopped = requests.post(web + "/stop", timeout=10).json()["success"]
            except (requests.RequestException, ValueError):
                pass
            time.sleep(0.5)
        out, _ = proc.communicate(timeout=max(1.0, end - time.time()))
    finally:
        if proc.poll() is None:
            stop_process(proc, 10.0)
            proc.communicate()
    assert stopped, out[-3000:]
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    run = result["run"]
    assert proc.returncode == 3 and not run["complete"] and not run["validity"]["ok"], out[-3000:]
    assert "the run ended before every shard's users were done" in run["validity"]["why"]
    # 40 scenario seconds of arrivals at time scale 0.5 take 80 wall seconds; stopped at the
    # first reads (about 10 s in), the run ends long before (the margin is the final drain's 30 s bound)
    assert run["wall_seconds"] < 60.0, run["wall_seconds"]
