"""Drive the reference service with one scenario's users (an ordinary locustfile).

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000

Repayments arrive OPEN-LOOP: one arrival user per shard draws Poisson arrivals at the
scenario's rate or profile (divided by the number of shards) on the scenario clock and
spawns one greenlet per repayment, so a slow service never slows the arrivals down.
Each greenlet POSTs its repayment (retrying 503 every ``REJECT_RETRY`` scenario seconds
and timeouts with backoff, always with the same Idempotency-Key), then follows the
scenario's check policy (``first_after``, ``every``, ``max_checks``, stop at the first
``usable``) and records every read.

Settings: the ``REPAYCHAOS_*`` environment variables of
:class:`repaychaos.load.settings.LocustSettings` (all optional): ``SCENARIO`` (bundled
name or path, default ``nightly-maintenance``), ``TIME_SCALE``, ``T0``, ``RECORD``,
``SHARDS``, ``QUIT_WHEN_DONE``, ``DEADLINE``, ``RUN_ID``, ``PARENT_PID``, ``ALLOW_REMOTE``.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from typing import Any

import gevent
from gevent.pool import Group
from locust import constant, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.exception import StopUser
from locust.runners import LocalRunner

from repaychaos.scenarios import resolve_scenario
from repaychaos.semantics import REJECT_RETRY
from repaychaos.core.safety import check_target
from repaychaos.core.streams import stream
from repaychaos.core.errors import RepaychaosError
from repaychaos.load.settings import LocustSettings
from repaychaos.semantics import arrival_times

try:
    SETTINGS = LocustSettings.from_env()
    SCENARIO = resolve_scenario(SETTINGS.scenario)
except RepaychaosError as exc:  # a bad setting or scenario is the user's input: say what, not a traceback
    raise SystemExit(f"repaychaos: {exc}") from None
SHARDS = SETTINGS.shards
RECORD_DIR = SETTINGS.record
READ_BIAS_MAX = 0.010  # wall seconds a read may be sent ahead of its instant
#: Wall seconds a ledger retry is sent ahead of its grid instant (the service waits for the instant).
RETRY_LEAD = 0.5
MAX_FAILURES = 8  # non-503 failures (timeouts, 5xx) before a user gives up; it is then counted

_open_records: dict[str, dict[str, Any]] = {}
_record_file: Any = None


def _record(line: dict[str, Any]) -> None:
    global _record_file
    if RECORD_DIR is None:
        return
    if _record_file is None:
        name = f"records-{os.getpid()}-{uuid.uuid4().hex[:6]}.jsonl"
        _record_file = open(os.path.join(RECORD_DIR, name), "a", buffering=1, encoding="utf-8")
    _record_file.write(json.dumps(line, separators=(",", ":")) + "\n")


@events.init_command_line_parser.add_listener
def _web_ui_on_loopback(parser: Any, **_kwargs: Any) -> None:
    """Locust's web UI listens on every interface by default; ours on loopback unless --web-host says so."""
    parser.set_defaults(web_host="127.0.0.1")


@events.init.add_listener
def _loopback_only(environment: Any, **_kwargs: Any) -> None:
    """Load goes to loopback only, unless REPAYCHAOS_ALLOW_REMOTE=1 says otherwise (as --allow-remote does)."""
    if not environment.host:
        return
    try:
        check_target(environment.host, SETTINGS.allow_remote)
    except RepaychaosError as exc:
        raise SystemExit(f"repaychaos: {exc} (set REPAYCHAOS_ALLOW_REMOTE=1 to allow it)") from None


@events.init.add_listener
def _exit_with_parent(**_kwargs: Any) -> None:
    """Under the load runner: stop when the runner is gone (it may have been killed hard)."""
    parent = SETTINGS.parent_pid
    if parent is None:
        return

    def watch() -> None:
        while os.getppid() == parent:
            gevent.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    gevent.spawn(watch)


@events.test_stop.add_listener
def _flush_unfinished(**_kwargs: Any) -> None:
    """Users still reading when the test stops are recorded as they are, marked incomplete."""
    for rec in list(_open_records.values()):
        rec["incomplete"] = True
        _record(rec)
    _open_records.clear()
    if _record_file is not None:
        _record_file.flush()


def _quantiles(values: list[float]) -> dict[str, float | None]:
    values = sorted(values)
    if not values:
        return {"p50": None, "p99": None}
    return {"p50": values[len(values) // 2], "p99": values[int(0.99 * (len(values) - 1))]}


class Repayer(FastHttpUser):
    """One open-loop arrival process (a shard of the scenario's arrivals) and its users.

    Example::

        REPAYCHAOS_SCENARIO=nightly-maintenance locust -f loadtests/locustfile.py \\
            --headless -u 1 -r 1 -t 60s --host http://127.0.0.1:8000
    """

    fixed_count = SHARDS
    wait_time = constant(0)
    concurrency = 1024  # the HTTP pool shared by this user's repayment greenlets
    network_timeout = 30.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        health: dict[str, Any] = {}
        with self.client.get("/healthz", name="/healthz", catch_response=True) as resp:
            if resp.status_code == 200:
                health = resp.json()
                resp.success()
            else:
                resp.failure(f"healthz answered {resp.status_code}")
        self.k = float(SETTINGS.time_scale or health.get("time_scale") or 1.0)
        if SETTINGS.t0 is not None:
            self.t0 = SETTINGS.t0
        else:
            self.t0 = float(health.get("t0") or time.time())
            if (time.time() - self.t0) * self.k >= SCENARIO.duration:
                self.t0 = time.time()  # the service's timeline is past the scenario: start our own
        self.deadline = SETTINGS.deadline if SETTINGS.deadline is not None else float("inf")
        self.run_id = SETTINGS.run_id or uuid.uuid4().hex[:8]
        self.shard = uuid.uuid4().hex[:4] if SHARDS > 1 else "0"
        self.finished = False
        self.read_bias = 0.0
        self.read_late: list[float] = []

    def wall(self, t: float) -> float:
        return self.t0 + t / self.k

    def scenario_now(self) -> float:
        return (time.time() - self.t0) * self.k

    @task
    def arrivals(self) -> None:
        if self.finished:
            raise StopUser()
        # its own streams, shared with nothing in the service (see Pipeline.__init__)
        part = "" if SHARDS == 1 else f"/{self.shard}"
        rng = stream(SCENARIO.seed, 0, "live-arrivals" + part)
        first_after = SCENARIO.workload.check.first_after.sampler(stream(SCENARIO.seed, 0, "live-users" + part))
        group = Group()
        lags: list[float] = []
        seq = 0
        # open loop: this shard's share of the arrivals, from now on (the shared rule)
        for t in arrival_times(SCENARIO.workload.arrivals.steps, SCENARIO.duration, lambda: rng.expovariate(1.0),
                               start=max(0.0, self.scenario_now()), scale=1.0 / SHARDS):
            first = first_after()
            delay = self.wall(t) - time.time()
            if delay > 0:
                gevent.sleep(delay)
            lags.append(max(0.0, time.time() - self.wall(t)))
            group.spawn(self.repay, seq, t, first)
            seq += 1
        group.join()
        lags.sort()
        if _record_file is not None:
            _record_file.flush()
        if RECORD_DIR is not None:
            done = {"done": True, "shard": self.shard, "arrivals": seq, "lagged": sum(1 for x in lags if x > 0.05),
                    "lag_max": lags[-1] if lags else 0.0, "lag_p99": lags[int(0.99 * (len(lags) - 1))] if lags else 0.0,
                    "read_late": _quantiles(self.read_late)}
            path = os.path.join(RECORD_DIR, f"done-{os.getpid()}-{self.shard}.json")
            with open(path + ".tmp", "w", encoding="utf-8") as fh:
                json.dump(done, fh)
            os.replace(path + ".tmp", path)
        self.finished = True
        if SETTINGS.quit_when_done and isinstance(self.environment.runner, LocalRunner):
            gevent.spawn_later(0.1, self.environment.runner.quit)
        raise StopUser()

    def repay(self, seq: int, t_arrival: float, first_after: float) -> None:
        """One user: repay (with retries on the same key), then check the status per the policy."""
        key = f"{self.run_id}-{self.shard}-{seq}"
        account = f"a-{self.run_id}-{self.shard}-{seq}"
        body = json.dumps({"account": account, "amount": "100.00"})
        rec: dict[str, Any] = {"key": key, "account": account, "arrived": self.wall(t_arrival), "attempts": 0,
                               "rejected": 0, "failures": 0, "reads": []}
        _open_records[key] = rec
        try:
            ack = self._post(body, key, rec)
            if ack is None:
                rec["gave_up"] = True
                return
            rec["id"], rec["acked_at"] = ack["id"], ack["acked_at"]
            self._check(account, (ack["acked_at"] - self.t0) * self.k + first_after, rec)
        finally:
            if _open_records.pop(key, None) is not None:
                _record(rec)

    def _post(self, body: str, key: str, rec: dict[str, Any]) -> dict[str, Any] | None:
        headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
        began = time.time()
        while time.time() < self.deadline:
            rec["attempts"] += 1
            with self.client.post("/repayments", data=body, headers=headers, name="/repayments",
                                  catch_response=True) as resp:
                code = resp.status_code
                if code in (200, 201):
                    resp.success()
                    rec["ack_latency"] = time.time() - began
                    return resp.json()
                if code == 503:
                    resp.success()  # expected; retried with the same key
                    if _reason(resp) == "maintenance":
                        # a ledger reject window: retry on the scenario's grid (every REJECT_RETRY from
                        # the first attempt), at the instant the reference service names, a little
                        # early (it waits for the instant); Retry-After is whole wall seconds, far
                        # longer than REJECT_RETRY / K
                        rec["rejected"] += 1
                        retry_at = _retry_at(resp)
                        wait = REJECT_RETRY / self.k if retry_at is None else retry_at - time.time() - RETRY_LEAD
                        gevent.sleep(max(0.0, wait))
                    else:
                        # back-pressure (or stopping): the server's Retry-After, honoured as sent
                        rec["shed"] = rec.get("shed", 0) + 1
                        gevent.sleep(_retry_after(resp))
                    continue
                resp.failure(f"repayment answered {code}")
            rec["failures"] += 1
            if rec["failures"] >= MAX_FAILURES:
                return None
            gevent.sleep(min(2.0, 0.05 * 2 ** rec["failures"]))
        return None

    def _check(self, account: str, first: float, rec: dict[str, Any]) -> None:
        check = SCENARIO.workload.check
        path = f"/accounts/{account}/status"
        at = first
        for _ in range(check.max_checks):
            # Aim the *server's* read instant at the policy's: send early by the typical
            # send-to-read lag (learnt, capped), since K multiplies every wall millisecond.
            delay = self.wall(at) - time.time() - self.read_bias
            if delay > 0:
                gevent.sleep(delay)
            with self.client.get(path, name="/accounts/[account]/status", catch_response=True) as resp:
                if resp.status_code != 200:
                    resp.failure(f"status answered {resp.status_code}")
                    rec["read_errors"] = rec.get("read_errors", 0) + 1
                    at += check.every
                    continue
                data = resp.json()
                resp.success()
            usable = data["status"] == "usable"
            read_at = data.get("read_at", time.time())
            late = read_at - self.wall(at)
            if delay > 0:
                self.read_bias = min(READ_BIAS_MAX, max(0.0, self.read_bias + 0.05 * late))
            # every read counts, also one whose instant had passed before it could be sent (a
            # first look due sooner after the ack than the ack took to arrive): that lateness
            # is the load test's, K times the wall latency, and the model has no such delay
            self.read_late.append(late)
            rec["reads"].append([read_at, usable, data.get("as_of")])
            if usable:
                return
            at += check.every


def _reason(resp: Any) -> str | None:
    try:
        return resp.json().get("reason")
    except Exception:  # a body that is not JSON: no reason given
        return None


def _retry_at(resp: Any) -> float | None:
    """The epoch instant a ledger-reject 503 says to retry at (the reference service's
    ``retry_at``), or None."""
    try:
        value = resp.json().get("retry_at")
    except Exception:  # a body that is not JSON
        return None
    return float(value) if isinstance(value, (int, float)) else None


def _retry_after(resp: Any) -> float:
    """Wall seconds from a 503's Retry-After (delta-seconds; 1 s when absent or unreadable)."""
    try:
        return max(0.0, min(60.0, float(resp.headers.get("Retry-After", "1"))))
    except ValueError:
        return 1.0
for _plugin in filter(None, os.environ.get("REPAYCHAOS_LOCUST_PLUGINS", "").split(",")): __import__(_plugin.strip())
