"""The staleness plugin inside real Locust processes: /metrics, the web UI tab and chart, master/worker merging.

Locust runs as a subprocess (importing it here would monkey-patch this test process); its
users fire a fixed, seeded script of events (tests/locust_fixed_events.py), so the counts
the endpoint must reach are known exactly: those of the same script fed to the tallies here.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from staleness_events import script

from repaychaos.integrations.live_metrics import LiveStaleness, exposition
from repaychaos.load.launcher import free_port, stop_process

ROOT = Path(__file__).resolve().parents[1]
LOCUSTFILES = f"{ROOT / 'tests' / 'locust_fixed_events.py'},{ROOT / 'loadtests' / 'staleness.py'}"
USERS, SEED = 300, 4
#: Wall seconds any one process gets to come up and report (Locust workers report every 3 s).
BOUND = 90.0


def _expected(copies: int) -> dict[str, float]:
    live = LiveStaleness("load")
    for _ in range(copies):
        for name, kwargs in script(USERS, SEED):
            getattr(live, "on_" + name)(**kwargs)
    return _counters(exposition(live).decode())


def _counters(text: str) -> dict[str, float]:
    """The counter and histogram samples of a scrape (the clock gauge differs between processes)."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for fam in text_string_to_metric_families(text):
        if fam.type in ("counter", "histogram") or fam.name == "repaychaos_stale_read_ratio":
            for s in fam.samples:
                out[s.name + repr(sorted(s.labels.items()))] = s.value
    return out


def _env(metrics_port: int) -> dict[str, str]:
    return dict(os.environ, REPAYCHAOS_SCENARIO="nightly-maintenance", REPAYCHAOS_METRICS_PORT=str(metrics_port),
                REPAYCHAOS_T0=repr(time.time()), REPAYCHAOS_TIME_SCALE="60", SCRIPT_USERS=str(USERS),
                SCRIPT_SEED=str(SEED), PYTHONPATH=str(ROOT))


def _wait_for(url: str, want: dict[str, float], procs: list[subprocess.Popen[Any]]) -> dict[str, float]:
    """Scrape ``url`` until its counters equal ``want`` (or the bound passes: the last scrape)."""
    end, got = time.time() + BOUND, {}
    while time.time() < end:
        for p in procs:
            assert p.poll() is None, f"a Locust process exited with {p.returncode}"
        try:
            got = _counters(requests.get(url, timeout=5).text)
        except requests.RequestException:
            got = {}
        if got == want:
            return got
        time.sleep(0.5)
    return got


@pytest.fixture
def logs(tmp_path: Path) -> Iterator[Any]:
    with open(tmp_path / "locust.log", "w") as fh:
        yield fh


def test_a_local_run_serves_the_counts_the_tab_and_the_chart(logs: Any) -> None:
    """One Locust process with the web UI: /metrics reaches exactly the script's counts, the
    Staleness tab's rows ride on /stats/requests, and the chart page, its data and CSV answer."""
    metrics_port, web_port = free_port(), free_port()
    cmd = [sys.executable, "-m", "locust", "-f", LOCUSTFILES, "--autostart", "-u", "1", "-r", "1",
           "--web-host", "127.0.0.1", "--web-port", str(web_port), "--run-time", f"{BOUND:.0f}s"]
    proc = subprocess.Popen(cmd, env=_env(metrics_port), stdout=logs, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        want = _expected(1)
        assert _wait_for(f"http://127.0.0.1:{metrics_port}/metrics", want, [proc]) == want
        web = f"http://127.0.0.1:{web_port}"
        stats = requests.get(web + "/stats/requests", timeout=10).json()
        rows = next(s["data"] for s in stats["extended_stats"] if s["key"] == "staleness")
        live = LiveStaleness("load")
        for name, kwargs in script(USERS, SEED):
            getattr(live, "on_" + name)(**kwargs)
        (expected_row,) = live.summary()
        (row,) = rows
        assert {k: v for k, v in row.items() if k != "faults_in_force"} == \
               {k: v for k, v in expected_row.items() if k != "faults_in_force"}
        page = requests.get(web + "/staleness", timeout=10)
        assert page.status_code == 200 and "Stale share of reads" in page.text
        data = requests.get(web + "/staleness/data", timeout=10).json()
        assert data["history"] and data["windows"][0]["fault"] == "nightly-deploy"
        csv_text = requests.get(web + "/staleness/csv", timeout=10).text
        assert csv_text.splitlines()[0].startswith("scenario_seconds,wall_seconds,scenario,reads,stale_reads")
    finally:
        stop_process(proc, 10.0)


def test_workers_counts_add_up_on_the_master(logs: Any) -> None:
    """Master and two workers: the master's /metrics reaches exactly twice one script's counts
    (each worker's users fire the script once; the workers' reports carry them over)."""
    metrics_port, master_port = free_port(), free_port()
    env = _env(metrics_port)
    base = [sys.executable, "-m", "locust", "-f", LOCUSTFILES]
    procs = [subprocess.Popen(base + ["--headless", "--master", "--master-bind-host", "127.0.0.1",
                                      "--master-bind-port", str(master_port), "--expect-workers", "2", "-u", "2",
                                      "-r", "2", "--run-time", f"{BOUND:.0f}s"],
                              env=env, stdout=logs, stderr=subprocess.STDOUT, cwd=ROOT)]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen(base + ["--worker", "--master-host", "127.0.0.1", "--master-port",
                                                  str(master_port)],
                                          env=env, stdout=logs, stderr=subprocess.STDOUT, cwd=ROOT))
        want = _expected(2)
        assert _wait_for(f"http://127.0.0.1:{metrics_port}/metrics", want, procs) == want
    finally:
        for p in reversed(procs):
            stop_process(p, 10.0)
