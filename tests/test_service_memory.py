"""The service's memory does not grow with what it has served.

Status reads of accounts nobody repaid cache nothing; idempotency keys are answered from
the ledger's index behind a bounded cache; a repayment's trace and its account's view
move to SQLite once final (:mod:`repaychaos.service.spill`). The default suite reads
40k accounts and posts 20k repayments; the soak version reads 200k and posts 100k.
"""

from __future__ import annotations

import http.client
import json
import threading
import time

import pytest
import requests

from repaychaos.load.launcher import ServiceProcess
from repaychaos.scenarios import load_scenario_data

pytestmark = pytest.mark.live

SCENARIO = {
    "version": 1, "name": "memory", "duration": "1h",
    "workload": {"arrivals": {"rate": 1}},
    # a short status cache (1 s) so entries expire within the test; every other stage instant
    "pipeline": {"channel": {"latency": 0}, "sync": {"workers": 8, "service": "1ms"}, "credit": {"service": 0},
                 "view": {"cache_ttl": "1s"}, "reconcile": "off"},
}

#: RSS growth allowed while reading the distinct unknown accounts (MB): was 57 MB for 200k.
READ_GROWTH_MB = 4.0
#: RSS growth allowed while posting (MB). It was ~1.2 KB per repayment without bound (24 MB for
#: 20k, 120 MB for 100k). Measured on this code from a fresh start: +9.4 MB over the first 20k
#: (SQLite's page caches, the 10k-key cache and the bounded samples filling), +15.6 MB over 100k
#: on a machine at load 5-8, flat after about 60k (+0.0 MB over the last 40k on a quieter run).
POST_GROWTH_MB = {20_000: 14.0, 100_000: 20.0}
#: In the soak run, the last quarter of the repayments must find memory flat (MB).
PLATEAU_MB = 1.5


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def hammer(port: int, request, first: int, count: int, threads: int = 4) -> None:
    """``request(conn, i)`` for i in [first, first + count), over keep-alive connections."""
    errors: list[BaseException] = []

    def work(lo: int, hi: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            for i in range(lo, hi):
                request(conn, i)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    bounds = [first + count * k // threads for k in range(threads + 1)]
    workers = [threading.Thread(target=work, args=(bounds[k], bounds[k + 1])) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors, errors[0]


def read(conn: http.client.HTTPConnection, i: int) -> None:
    conn.request("GET", f"/accounts/unknown-{i}/status")
    resp = conn.getresponse()
    assert json.loads(resp.read())["status"] == "unusable" and resp.status == 200


def post(conn: http.client.HTTPConnection, i: int) -> None:
    conn.request("POST", "/repayments", body=json.dumps({"account": f"p-{i}", "amount": "1.00"}),
                 headers={"Content-Type": "application/json", "Idempotency-Key": f"mem-{i}"})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 201, resp.status


def check_memory(tmp_path, reads: int, posts: int) -> None:
    with ServiceProcess(load_scenario_data(SCENARIO), tmp_path / "svc.db") as svc:
        pid = svc.proc.pid
        hammer(svc.port, read, 0, 5_000)
        hammer(svc.port, post, 0, 5_000)  # warm-up: the code paths, not the caches
        before = rss_mb(pid)
        hammer(svc.port, read, 10**8, reads)
        after_reads = rss_mb(pid)
        samples = [after_reads]
        for k in range(4):
            hammer(svc.port, post, 10**8 + k * posts // 4, posts // 4)
            samples.append(rss_mb(pid))
        # nothing acknowledged is lost, and the trace still has every repayment (spilled or not),
        # once the last posts' messages have left the pipeline: the outbox is empty and every
        # account's view has been written (a message leaves the outbox before its view write)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            health = requests.get(svc.url + "/healthz", timeout=10).json()
            if not health["outbox_backlog"] and not health["unsettled_accounts"]:
                break
            time.sleep(0.1)
        trace = requests.get(svc.url + "/chaos/trace", headers=svc.auth(), timeout=300).json()
        assert len(trace["repayments"]) == 5_000 + posts
        usable = sum(1 for r in trace["repayments"] if r["changes"] and r["changes"][-1][1])
        assert usable == 5_000 + posts - sum(r["held"] for r in trace["repayments"])
    print(f"RSS {before:.1f} MB -> {after_reads:.1f} after {reads} reads -> "
          + " -> ".join(f"{m:.1f}" for m in samples[1:]) + f" after each {posts // 4} posts")
    assert after_reads - before <= READ_GROWTH_MB
    assert samples[-1] - after_reads <= POST_GROWTH_MB[posts]
    if posts >= 100_000:
        assert samples[-1] - samples[-2] <= PLATEAU_MB


def test_memory_is_bounded_under_reads_and_repayments(tmp_path):
    check_memory(tmp_path, reads=40_000, posts=20_000)


@pytest.mark.soak
def test_memory_is_bounded_under_200k_reads_and_100k_repayments(tmp_path):
    check_memory(tmp_path, reads=200_000, posts=100_000)
