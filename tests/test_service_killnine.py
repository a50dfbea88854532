"""Durability: SIGKILL under load, restart on the same file, nothing acknowledged is lost."""

from __future__ import annotations

import threading
import time

import pytest
import requests

from repaychaos.scenarios import load_scenario_data
from repaychaos.load.launcher import ServiceProcess

pytestmark = pytest.mark.live

# A slow sync pool (4 workers x 20 ms = 200 events/s) so that hundreds of outbox events are
# still pending at the kill, and reconcile off: only the outbox can make the accounts usable.
SCENARIO = {
    "version": 1, "name": "kill-nine", "duration": "1h",
    "workload": {"arrivals": {"rate": 1}},
    "pipeline": {"channel": {"latency": 0}, "sync": {"workers": 4, "service": "20ms"}, "credit": {"service": 0},
                 "reconcile": "off"},
}


def _drive(url: str, stop: threading.Event, acked: dict[str, str], prefix: str) -> None:
    session = requests.Session()
    n = 0
    while not stop.is_set():
        key = f"{prefix}-{n}"
        try:
            resp = session.post(url + "/repayments", json={"account": f"a-{key}", "amount": "1"},
                                headers={"Idempotency-Key": key}, timeout=5)
        except requests.RequestException:
            return  # the server died under us: that request was never acknowledged
        if resp.status_code in (200, 201):
            acked[resp.json()["id"]] = f"a-{key}"
        n += 1


def test_acked_repayments_survive_sigkill_and_every_account_becomes_usable(tmp_path):
    """Every id acked before a kill -9 is in the ledger after restart, and the outbox makes every account usable."""
    scenario = load_scenario_data(SCENARIO)
    db = tmp_path / "svc.db"
    first = ServiceProcess(scenario, db, token="t").start()
    acked: dict[str, str] = {}
    stop = threading.Event()
    threads = [threading.Thread(target=_drive, args=(first.url, stop, acked, f"w{i}")) for i in range(8)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    first.kill()
    stop.set()
    for thread in threads:
        thread.join(10)
    assert len(acked) > 100, "the load did not get going"

    second = ServiceProcess(scenario, db, token="t").start()
    try:
        trace = requests.get(second.url + "/chaos/trace", headers=second.auth(), timeout=30).json()
        assert trace["recovered"] > 0, "no outbox event was pending at the kill: the test proved nothing"
        in_ledger = {r["id"] for r in trace["repayments"]}
        assert set(acked) <= in_ledger
        assert trace["duplicates"] == 0
        print(f"kill -9: {len(acked)} acked before the kill, {len(set(acked) - in_ledger)} of them missing, "
              f"{trace['recovered']} outbox events republished")
        for rep_id in list(acked)[:50]:
            assert requests.get(f"{second.url}/repayments/{rep_id}", timeout=5).status_code == 200
        deadline = time.time() + 60
        while requests.get(second.url + "/healthz", timeout=5).json()["outbox_backlog"] and time.time() < deadline:
            time.sleep(0.2)
        session = requests.Session()
        unusable = [a for a in acked.values()
                    if session.get(f"{second.url}/accounts/{a}/status", timeout=5).json()["status"] != "usable"]
        assert not unusable, f"{len(unusable)} accounts never became usable after the restart"
    finally:
        second.stop()
