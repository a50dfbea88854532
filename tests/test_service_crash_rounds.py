"""Crash rounds: load from several clients with idempotent retries, ``kill -9`` of the
service's process group at a random instant, restart on the same database — and after
every round: every acknowledged repayment is in the ledger, no key has two rows, the outbox
drains and the view settles (every account shows its truth).

A request in flight at the kill may or may not have been committed: its client retries it,
with the same key and body, on the restarted service, which must answer it once (200 if it
was committed, 201 if not). The default suite runs :data:`SHORT_ROUNDS` rounds; the soak
suite :data:`SOAK_ROUNDS`.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import threading
import time
from dataclasses import dataclass, field

import pytest
import requests

from repaychaos.load.launcher import ServiceProcess
from repaychaos.scenarios import load_scenario_data

pytestmark = pytest.mark.live

SHORT_ROUNDS = 3
SOAK_ROUNDS = 50
CLIENTS = 4
#: Wall seconds of load before the kill: uniform in this range, drawn from the round's seed.
KILL_AFTER = (0.3, 1.5)
#: Wall seconds the outbox has to drain and the view to settle after a restart.
SETTLE_WITHIN = 60.0

# A slow pool (4 workers x 20 ms = 200 events/s): outbox events are pending at most kills,
# so recovery has work to republish. Reconcile off: only the outbox can settle the view.
SCENARIO = {
    "version": 1, "name": "crash-rounds", "duration": "1h",
    "workload": {"arrivals": {"rate": 1}},
    "pipeline": {"channel": {"latency": 0}, "sync": {"workers": 4, "service": "20ms"}, "credit": {"service": 0},
                 "reconcile": "off"},
}


@dataclass
class Ledger:
    """What the clients know: acked ids by key, and keys sent but not answered (to retry)."""

    acked: dict[str, str] = field(default_factory=dict)  # key -> id
    pending: dict[str, list[str]] = field(default_factory=dict)  # client -> keys to retry first
    replays_after_crash: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client(url: str, name: str, ledger: Ledger, stop: threading.Event, start_at: int) -> None:
    """Repay key after key; on 503 retry the same key after Retry-After; when the service dies,
    leave the key for the next round (an idempotent retry)."""
    session = requests.Session()
    with ledger.lock:
        queue = list(ledger.pending.pop(name, []))
    n = start_at
    while not stop.is_set():
        retried = bool(queue)
        key = queue.pop(0) if queue else f"{name}-{n}"
        if not retried:
            n += 1
        while True:
            try:
                resp = session.post(url + "/repayments", json={"account": f"a-{key}", "amount": "1.00"},
                                    headers={"Idempotency-Key": key}, timeout=10)
            except requests.RequestException:
                with ledger.lock:
                    ledger.pending.setdefault(name, []).extend([key, *queue])
                return
            if resp.status_code == 503:
                time.sleep(0.05)
                continue
            assert resp.status_code in (200, 201), resp.text[:200]
            body = resp.json()
            with ledger.lock:
                assert ledger.acked.get(key, body["id"]) == body["id"], f"key {key} acked with two ids"
                ledger.acked[key] = body["id"]
                if retried and resp.status_code == 200:
                    ledger.replays_after_crash += 1
            break


def _settled(service: ServiceProcess) -> bool:
    health = requests.get(service.url + "/healthz", timeout=5).json()
    return health["outbox_backlog"] == 0 and health["unsettled_accounts"] == 0


def run_rounds(tmp_path, rounds: int, seed: int = 20261205) -> dict[str, int]:
    """``rounds`` crash rounds on one database; returns the totals (and asserts every round)."""
    scenario = load_scenario_data(SCENARIO)
    db = tmp_path / "crash.db"
    ledger = Ledger()
    rng = random.Random(seed)
    kills = recovered = 0
    for round_no in range(rounds):
        service = ServiceProcess(scenario, db, token="t").start()
        try:
            # the state the last kill left: everything acked is there, and settles
            deadline = time.monotonic() + SETTLE_WITHIN
            while not _settled(service):
                assert time.monotonic() < deadline, f"round {round_no}: outbox or view did not settle"
                time.sleep(0.1)
            _check_ledger(db, ledger, round_no)
            recovered += requests.get(service.url + "/chaos/trace", headers=service.auth(),
                                      timeout=60).json()["recovered"] if round_no else 0
            stop = threading.Event()
            threads = [threading.Thread(target=_client, args=(service.url, f"c{i}", ledger, stop, round_no * 100_000))
                       for i in range(CLIENTS)]
            for thread in threads:
                thread.start()
            time.sleep(rng.uniform(*KILL_AFTER))
            assert service.proc is not None
            os.killpg(service.proc.pid, signal.SIGKILL)  # the service's whole process group, at once
            service.proc.wait(10)
            kills += 1
            stop.set()
            for thread in threads:
                thread.join(30)
                assert not thread.is_alive(), "a client hung on a dead service"
        finally:
            service.stop()
    # a last restart: the final round's kill is checked like every other
    with ServiceProcess(scenario, db, token="t") as service:
        deadline = time.monotonic() + SETTLE_WITHIN
        while not _settled(service):
            assert time.monotonic() < deadline, "after the last round: outbox or view did not settle"
            time.sleep(0.1)
        # every key left unanswered at a kill is retried once more: answered once, never twice
        for name in list(ledger.pending):
            _retry_pending(service.url, name, ledger)
        _check_ledger(db, ledger, rounds)
    totals = {"rounds": rounds, "kills": kills, "acked": len(ledger.acked),
              "lost": len(set(ledger.acked.values()) - _ledger_ids(db)), "duplicates": _duplicates(db),
              "replayed_after_crash": ledger.replays_after_crash, "recovered_outbox_events": recovered}
    print("crash rounds:", totals)
    return totals


def _retry_pending(url: str, name: str, ledger: Ledger) -> None:
    session = requests.Session()
    with ledger.lock:
        keys = ledger.pending.pop(name, [])
    for key in keys:
        resp = session.post(url + "/repayments", json={"account": f"a-{key}", "amount": "1.00"},
                            headers={"Idempotency-Key": key}, timeout=10)
        assert resp.status_code in (200, 201), resp.text[:200]
        with ledger.lock:
            assert ledger.acked.get(key, resp.json()["id"]) == resp.json()["id"]
            ledger.acked[key] = resp.json()["id"]
            if resp.status_code == 200:
                ledger.replays_after_crash += 1


def _ledger_ids(db) -> set[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM ledger")}


def _duplicates(db) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        return int(conn.execute("SELECT COUNT(*) - COUNT(DISTINCT idem_key) FROM ledger").fetchone()[0])


def _check_ledger(db, ledger: Ledger, round_no: int) -> None:
    ids = _ledger_ids(db)
    with ledger.lock:
        lost = set(ledger.acked.values()) - ids
    assert not lost, f"round {round_no}: {len(lost)} acknowledged repayments are not in the ledger"
    assert _duplicates(db) == 0, f"round {round_no}: a key has two ledger rows"


def test_crash_rounds_lose_nothing_and_settle(tmp_path):
    """SHORT_ROUNDS rounds of load, kill -9 at a random instant and restart: nothing acked lost."""
    totals = run_rounds(tmp_path, SHORT_ROUNDS)
    assert totals["acked"] >= 20 * SHORT_ROUNDS, f"the load did not get going: {totals}"
    assert totals["lost"] == 0 and totals["duplicates"] == 0


@pytest.mark.soak
def test_fifty_crash_rounds_lose_nothing_and_settle(tmp_path):
    """SOAK_ROUNDS rounds: the same checks after every one."""
    totals = run_rounds(tmp_path, SOAK_ROUNDS, seed=50)
    assert totals["acked"] >= 20 * SOAK_ROUNDS and totals["recovered_outbox_events"] > 0, totals
    assert totals["lost"] == 0 and totals["duplicates"] == 0
