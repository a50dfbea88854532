"""The repaying users of every load run, live or black-box (an ordinary locustfile).

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000

One user implementation, driven by a description of the service's API in the target
file format (:mod:`repaychaos.target.spec`): the reference service's built-in one
(:mod:`repaychaos.target.reference`) for ``repaychaos load SCENARIO``, the user's target
file for ``repaychaos load SCENARIO --target TARGET.yaml``.

Repayments arrive OPEN-LOOP: one arrival user per shard (one per Locust worker) draws
Poisson arrivals at the scenario's rate or profile (divided by the number of shards) on
the scenario clock and spawns one greenlet per repayment, so a slow service never slows
the arrivals down. Each greenlet repays with an idempotency key (a ``retry`` status is
retried with the same key: at the instant the answer names when the description points
at one, else after Retry-After; timeouts and 5xx with backoff), then follows the
scenario's check policy (``first_after``, ``every``, ``max_checks``, stop at the first
usable read) and records every read. With ``pay_again`` in the policy, a user whose first
``after_stale_reads`` reads were all stale pays a second time with that probability, right
after that read: a new idempotency key (on an account of its own, docs/explanation/semantics.md
14), through the same request, while the user keeps to the policy's reads
(docs/explanation/semantics.md, 10a). Each status read carries the instant it is meant
for (``{read_at}``). With a fault that writes debts onto accounts whose holders did not
repay (``phantom_record``, 10b), the shard also plays those holders: at each write the
scenario names, a greenlet looks at the account at the fault's delays after it.

Requests leave at their instants: each shard learns how late its sleeps wake (per kind
of request) and wakes that much earlier, the lead bounded by :data:`LEAD_MAX`; what
lateness remains is counted per kind (:mod:`repaychaos.load.lateness`) and sent with the
shard's end-of-run marker. Users are recorded as JSON lines when they finish; on a
Locust worker the lines travel to the master as messages, so a worker on another machine
works like a local one.

Settings: the ``REPAYCHAOS_*`` environment variables of
:class:`repaychaos.load.settings.LocustSettings` (all optional): ``SCENARIO`` (bundled
name or path, default ``nightly-maintenance``), ``API`` (the description as JSON; default
the reference service's), ``TIME_SCALE``, ``T0``, ``RECORD``, ``SHARDS``,
``QUIT_WHEN_DONE``, ``DEADLINE``, ``RUN_ID``, ``PARENT_PID``, ``ALLOW_REMOTE``,
``MAX_REQUESTS``.
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
from locust.runners import LocalRunner, MasterRunner, WorkerRunner

from repaychaos.core.errors import RepaychaosError
from repaychaos.core.safety import check_target
from repaychaos.core.streams import keyed_uniform, stream
from repaychaos.core.timescale import TimeScale
from repaychaos.load import events as live_events
from repaychaos.load.clock import Clock, retry_after_seconds
from repaychaos.load.lateness import Lateness
from repaychaos.load.settings import LocustSettings
from repaychaos.scenarios import load_scenario_data, resolve_scenario
from repaychaos.scenarios.faults import REGISTRY
from repaychaos.semantics import account_of, arrival_times, pays_again
from repaychaos.target.reference import reference_target
from repaychaos.target.render import MISSING, render, resolve_pointer
from repaychaos.target.spec import Target

__all__ = ["Repayer", "LEAD_MAX", "RETRY_LEAD", "MAX_FAILURES", "DEFAULT_RETRY_AFTER"]

try:
    SETTINGS = LocustSettings.from_env()
    # inline JSON (as the runner hands it to remote workers), a path, or a bundled name
    SCENARIO = (load_scenario_data(json.loads(SETTINGS.scenario)) if SETTINGS.scenario.startswith("{")
                else resolve_scenario(SETTINGS.scenario))
    if SETTINGS.api is None:
        API: Target | None = None  # the reference service's, once the host is known
    elif SETTINGS.api.startswith("{"):
        API = Target.model_validate(json.loads(SETTINGS.api))
    else:
        with open(SETTINGS.api, encoding="utf-8") as _fh:
            API = Target.model_validate(json.load(_fh))
except (RepaychaosError, OSError, ValueError) as exc:  # the user's input: say what, not a traceback
    raise SystemExit(f"repaychaos: {exc}") from None
SHARDS = SETTINGS.shards
RECORD_DIR = SETTINGS.record
#: Wall seconds a request may be sent ahead of its instant (the learnt lead's bound).
LEAD_MAX = 0.010
#: How fast the lead follows the lateness it sees (an exponential average's weight).
LEAD_GAIN = 0.05
#: Wall seconds a retry is sent ahead of the instant the service names (it waits for the instant).
RETRY_LEAD = 0.5
#: Failures (timeouts, connection errors, 5xx not in ``retry``) before a user gives up repaying.
MAX_FAILURES = 8
#: Wall seconds before retrying a ``retry`` status that came without Retry-After or an instant.
DEFAULT_RETRY_AFTER = 1.0
#: Wall seconds between batches of user records sent from a worker to the master.
FLUSH_EVERY = 0.5

_open_records: dict[str, dict[str, Any]] = {}
_record_file: Any = None
_outbox: list[dict[str, Any]] = []  # a worker's records not yet sent to the master
_done_seen: set[str] = set()  # the master's: shards whose end-of-run marker arrived
_ending = False  # this process is on its way out (see _end_process)


def _write_lines(lines: list[dict[str, Any]]) -> None:
    global _record_file
    if RECORD_DIR is None or not lines:
        return
    if _record_file is None:
        name = f"records-{os.getpid()}-{uuid.uuid4().hex[:6]}.jsonl"
        _record_file = open(os.path.join(RECORD_DIR, name), "a", buffering=1, encoding="utf-8")
    _record_file.write("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines))


def _write_done(done: dict[str, Any]) -> None:
    if RECORD_DIR is None:
        return
    path = os.path.join(RECORD_DIR, f"done-{os.getpid()}-{done['shard']}.json")
    with open(path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(done, fh)
    os.replace(path + ".tmp", path)


def _is_worker(environment: Any) -> bool:
    return isinstance(environment.runner, WorkerRunner)


def _record(environment: Any, line: dict[str, Any]) -> None:
    if _is_worker(environment):
        _outbox.append(line)
    else:
        _write_lines([line])


def _send_outbox(environment: Any) -> None:
    if _outbox:
        batch = _outbox[:]
        del _outbox[:]
        environment.runner.send_message("repaychaos_records", batch)


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


def _end_process(environment: Any) -> None:
    """Under the load runner (``QUIT_WHEN_DONE``), end this Locust process once the test is over.

    Headless, the runner quitting ends the process. With the web UI (``--autostart
    --autoquit N``) the page goes on serving the final numbers N seconds, then closes, and
    the process ends the same way (Locust's own end of ``--run-time`` does the same);
    without ``--autoquit`` it stays up, as Locust's web UI does."""
    global _ending
    if _ending:
        return
    _ending = True
    gevent.spawn_later(0.1, environment.runner.quit)
    web_ui = getattr(environment, "web_ui", None)
    autoquit = getattr(environment.parsed_options, "autoquit", -1) if environment.parsed_options else -1
    if web_ui is not None and autoquit is not None and autoquit >= 0:
        gevent.spawn_later(0.1 + autoquit, web_ui.stop)


@events.test_stop.add_listener
def _stopped_in_the_web_ui(environment: Any, **_kwargs: Any) -> None:
    """Someone pressed Stop in the web UI of a runner-driven run: its users have stopped
    (recorded as incomplete), so the process ends and the run reports what it has."""
    if SETTINGS.quit_when_done and getattr(environment, "web_ui", None) is not None and not _is_worker(environment):
        _end_process(environment)


@events.init.add_listener
def _records_travel_to_the_master(environment: Any, **_kwargs: Any) -> None:
    """On a master, write what the workers send; on a worker, send batches every FLUSH_EVERY s."""
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        def on_records(msg: Any, **_kw: Any) -> None:
            _write_lines(list(msg.data))

        def on_done(msg: Any, **_kw: Any) -> None:
            _write_done(dict(msg.data))
            _done_seen.add(str(msg.data["shard"]))
            if SETTINGS.quit_when_done and len(_done_seen) >= SHARDS:
                _end_process(environment)

        runner.register_message("repaychaos_records", on_records)
        runner.register_message("repaychaos_done", on_done)
    elif isinstance(runner, WorkerRunner):
        def pump() -> None:
            while True:
                gevent.sleep(FLUSH_EVERY)
                _send_outbox(environment)

        gevent.spawn(pump)


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
def _flush_unfinished(environment: Any, **_kwargs: Any) -> None:
    """Users still at work when the test stops are recorded as they are, marked incomplete."""
    for rec in list(_open_records.values()):
        rec["incomplete"] = True
        _record(environment, rec)
    _open_records.clear()
    if _is_worker(environment):
        _send_outbox(environment)
    if _record_file is not None:
        _record_file.flush()


class Repayer(FastHttpUser):
    """One open-loop arrival process (a shard of the scenario's arrivals) and its users.

    Example::

        REPAYCHAOS_SCENARIO=nightly-maintenance locust -f loadtests/locustfile.py \\
            --headless -u 1 -r 1 -t 60s --host http://127.0.0.1:8000
    """

    fixed_count = SHARDS
    wait_time = constant(0)
    concurrency = API.concurrency if API is not None else 1024  # the HTTP pool this shard's users share
    network_timeout = 30.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        self.api = API if API is not None else reference_target(self.host or "http://127.0.0.1")
        health: dict[str, Any] = {}
        explicit = SETTINGS.time_scale is not None or SETTINGS.time_scales is not None
        if not explicit or SETTINGS.t0 is None:  # standalone, against the reference service
            with self.client.get("/healthz", name="/healthz", catch_response=True) as resp:
                if resp.status_code == 200:
                    health = resp.json()
                    resp.success()
                else:
                    resp.failure(f"healthz answered {resp.status_code}")
        k: float | TimeScale
        if SETTINGS.time_scales is not None:
            k = TimeScale.parse(SETTINGS.time_scales)
        elif SETTINGS.time_scale is not None:
            k = SETTINGS.time_scale
        elif health.get("time_scales"):
            k = TimeScale.from_json(health["time_scales"])
        else:
            k = float(health.get("time_scale") or 1.0)
        if SETTINGS.t0 is not None:
            t0 = SETTINGS.t0
        else:
            t0 = float(health.get("t0") or time.time())
            if Clock(t0, k).now() >= SCENARIO.duration:
                t0 = time.time()  # the service's timeline is past the scenario: start our own
        self.clock = Clock(t0, k)
        self.deadline = SETTINGS.deadline if SETTINGS.deadline is not None else float("inf")
        self.run_id = SETTINGS.run_id or uuid.uuid4().hex[:8]
        runner = self.environment.runner
        self.shard = str(runner.worker_index) if isinstance(runner, WorkerRunner) else "0"
        self.finished = False
        self.lead = {"repay": 0.0, "retry": 0.0, "read": 0.0}
        self.late = {"repay": Lateness(), "retry": Lateness(), "read": Lateness()}
        self.read_server_late = Lateness()  # the service's read instant against the policy's (live)
        self.requests = 0
        self.cap = SETTINGS.max_requests
        self.cap_hit = False
        self.arrivals_on_time: list[float] = []

    # ------------------------------------------------------------------ timing

    def _wait(self, instant: float, kind: str) -> float:
        """Sleep until ``instant`` (wall) less the learnt lead; count how late the request leaves."""
        delay = instant - time.time() - self.lead[kind]
        if delay > 0:
            gevent.sleep(delay)
        sent = time.time()
        late = sent - instant
        self.late[kind].add(late)
        if delay > 0:  # only a sleep that could have been on time teaches the lead
            self.lead[kind] = min(LEAD_MAX, max(0.0, self.lead[kind] + LEAD_GAIN * late))
        return late

    def _take_request(self) -> bool:
        if self.cap is not None and self.requests >= self.cap:
            self.cap_hit = True
            return False
        self.requests += 1
        return True

    # ------------------------------------------------------------------ arrivals

    @task
    def arrivals(self) -> None:
        if self.finished:
            raise StopUser()
        # its own streams, shared with nothing in the service (see Pipeline.__init__)
        part = "" if SHARDS == 1 else f"/{self.shard}"
        rng = stream(SCENARIO.seed, 0, "live-arrivals" + part)
        first_after = SCENARIO.workload.check.first_after.sampler(stream(SCENARIO.seed, 0, "live-users" + part))
        group = Group()
        seq = 0
        began = max(0.0, self.clock.now())  # past 0 when Locust started late: the arrivals before are skipped
        group.spawn(self.holders, group, began)
        # open loop: this shard's share of the arrivals, from now on (the shared rule)
        for t in arrival_times(SCENARIO.workload.arrivals.steps, SCENARIO.duration, lambda: rng.expovariate(1.0),
                               start=began, scale=1.0 / SHARDS):
            first = first_after()
            self._wait(self.clock.wall(t), "repay")
            group.spawn(self.repay, seq, t, first)
            seq += 1
        group.join()
        done = {"done": True, "shard": self.shard, "arrivals": seq, "began_s": began, "requests": self.requests,
                "request_cap_hit": self.cap_hit, "lead": dict(self.lead),
                "lateness": {kind: h.to_json() for kind, h in self.late.items()},
                "read_server_lateness": self.read_server_late.to_json()}
        if _is_worker(self.environment):
            _send_outbox(self.environment)
            self.environment.runner.send_message("repaychaos_done", done)
        else:
            if _record_file is not None:
                _record_file.flush()
            _write_done(done)
        self.finished = True
        if SETTINGS.quit_when_done and isinstance(self.environment.runner, LocalRunner):
            _end_process(self.environment)
        raise StopUser()

    # ------------------------------------------------------------------ one user

    def repay(self, seq: int, t_arrival: float, first_after: float) -> None:
        """One user: repay (with retries on the same key), then check the status per the policy."""
        key = f"{self.run_id}-{self.shard}-{seq}"
        values: dict[str, Any] = {"key": key, "account": self._account(seq),
                                  "amount": self.api.repay.amount, "id": "", "read_at": "",
                                  "repay_at": _epoch(self.clock.wall(t_arrival))}
        rec: dict[str, Any] = {"key": key, "account": values["account"], "arrived": self.clock.wall(t_arrival),
                               "attempts": 0, "rejected": 0, "failures": 0, "tries": [], "reads": []}
        _open_records[key] = rec
        again = Group()
        try:
            if not self._repay(values, rec):
                return
            live_events.repayment_acked.fire(scenario=SCENARIO.name, ack_at=self.clock.scenario(rec["ack_mark"]))
            self._check(values, rec, self.clock.scenario(rec["ack_mark"]) + first_after, seq, again)
            again.join()
        finally:
            if _open_records.pop(key, None) is not None:
                _record(self.environment, rec)

    def _account(self, seq: int) -> str:
        """The account the ``seq``-th arrival of this shard repays on: its own, or with
        ``workload.accounts`` the one the model would put it on — the same keyed uniform of
        the scenario seed and the place in the arrival order (``account/<seq>`` on the first
        shard; the others are keyed by shard too) (docs/explanation/semantics.md, 14)."""
        accounts = SCENARIO.workload.accounts
        if accounts is None:
            return f"a-{self.run_id}-{self.shard}-{seq}"
        name = f"account/{seq}" if self.shard == "0" else f"account/{self.shard}.{seq}"
        skew = SCENARIO.workload.account_skew
        return f"a-{self.run_id}-{account_of(keyed_uniform(SCENARIO.seed, 0, name), accounts, skew)}"

    def _request(self, spec: Any, values: dict[str, Any], name: str) -> tuple[int, Any, Any, float, float]:
        """Send one request of the description; (status or 0, JSON answer or None, headers, sent, answered)."""
        body = render(spec.json_body, values)
        headers = render(dict(spec.headers), values)
        if body is not None and not any(h.lower() == "content-type" for h in headers):
            headers["Content-Type"] = "application/json"
        sent = time.time()
        with self.client.request(spec.method, render(spec.path, values), name=name, headers=headers,
                                 data=None if body is None else json.dumps(body),
                                 catch_response=True) as resp:
            got = time.time()
            code = resp.status_code or 0
            try:
                data = resp.json() if code else None
            except Exception:  # noqa: BLE001 - an answer that is not JSON
                data = None
            resp.success()  # our own records judge the answers; Locust's stats show the statuses
            return code, data, resp.headers, sent, got

    def _repay(self, values: dict[str, Any], rec: dict[str, Any]) -> bool:
        spec = self.api.repay
        while time.time() < self.deadline:
            if not self._take_request():
                rec["gave_up"] = "request cap"
                return False
            if rec["attempts"] and values.get("repay_at"):
                values["repay_at"] = _epoch(time.time())  # a new attempt is made when it is sent
            rec["attempts"] += 1
            code, data, headers, sent, got = self._request(spec, values, spec.path)
            if code in spec.ok:
                rec["tries"].append([round(got, 4), code, None])
                rec["ack"] = got
                rec["ack_latency"] = got - sent
                if spec.id:
                    found = resolve_pointer(data, spec.id) if data is not None else MISSING
                    rec["id"] = values["id"] = None if found is MISSING else str(found)
                server = resolve_pointer(data, spec.acked_at) if spec.acked_at and data is not None else MISSING
                if isinstance(server, (int, float)):
                    rec["acked_at"] = float(server)
                # the first look is timed from the service's own ack when it names it
                rec["ack_mark"] = rec.get("acked_at", got)
                return True
            if code in spec.retry:
                retry_at = resolve_pointer(data, spec.retry_at) if spec.retry_at and data is not None else MISSING
                wait = retry_after_seconds(headers.get("Retry-After") if headers is not None else None, got)
                rec["tries"].append([round(got, 4), code, wait])
                if len(rec["tries"]) >= spec.max_tries:
                    rec["gave_up"] = f"{len(rec['tries'])} tries"
                    return False
                if isinstance(retry_at, (int, float)):
                    # the instant the service names (a ledger reject window's grid), a little early
                    rec["rejected"] += 1
                    self._wait(float(retry_at) - RETRY_LEAD, "retry")
                else:
                    rec["shed"] = rec.get("shed", 0) + 1
                    self._wait(got + (DEFAULT_RETRY_AFTER if wait is None else wait), "retry")
                continue
            rec["tries"].append([round(got, 4), code or "error", None])
            if code and code < 500:
                rec["gave_up"] = f"HTTP {code}"
                return False
            rec["failures"] += 1
            if rec["failures"] >= MAX_FAILURES or len(rec["tries"]) >= spec.max_tries:
                rec["gave_up"] = f"{rec['failures']} failures"
                return False
            gevent.sleep(min(2.0, 0.05 * 2 ** rec["failures"]))
        rec["gave_up"] = "deadline"
        return False

    def _pay_again(self, values: dict[str, Any], rec: dict[str, Any], made: float) -> None:
        """The user's second payment, made at wall instant ``made`` (the read that decided it) and
        recorded under ``again``: a new key, and an account of its own (docs/explanation/semantics.md,
        10a and 14), so its status write does not
        change what the user's reads of the first repayment show."""
        key = values["key"] + "-again"
        second: dict[str, Any] = {"key": key, "attempts": 0, "rejected": 0, "failures": 0, "tries": []}
        rec["again"] = second
        self._repay({**values, "key": key, "account": values["account"] + "-again", "id": "", "read_at": "",
                     "repay_at": _epoch(made)}, second)

    def _may_look(self, rec: dict[str, Any], instant: float) -> bool:
        """Whether a look meant for ``instant`` (wall) is taken: not past the run's deadline (the
        record is then left open, recorded as incomplete when the test stops) and within the
        request cap (else ``rec`` gives up)."""
        if instant > self.deadline:
            return False
        if not self._take_request():
            rec["gave_up"] = "request cap"
            return False
        return True

    def _look(self, values: dict[str, Any], rec: dict[str, Any], instant: float) -> list[Any] | None:
        """One status read meant for ``instant`` (wall) of ``values["account"]``:
        ``[t, usable, as_of or None, held, instant]`` (epochs), or None for an error answer
        (counted in ``rec["read_errors"]``)."""
        spec = self.api.status
        values["read_at"] = _epoch(instant)
        self._wait(instant, "read")
        code, data, _headers, sent, got = self._request(spec, values, spec.path)
        if code != 200 or data is None:
            rec["read_errors"] = rec.get("read_errors", 0) + 1
            return None
        usable = resolve_pointer(data, spec.usable.pointer) == spec.usable.equals
        held = (not usable and spec.hold is not None
                and resolve_pointer(data, spec.hold.pointer) == spec.hold.equals)
        read_at = resolve_pointer(data, spec.read_at) if spec.read_at else MISSING
        t = float(read_at) if isinstance(read_at, (int, float)) else (sent + got) / 2
        as_of = resolve_pointer(data, spec.as_of) if spec.as_of else MISSING
        if isinstance(read_at, (int, float)):
            self.read_server_late.add(t - instant)
        return [t, usable, float(as_of) if isinstance(as_of, (int, float)) else None, held, round(instant, 6)]

    # ------------------------------------------------------------------ holders of accounts a fault wrote on

    def holders(self, group: Group, began: float) -> None:
        """This shard's share of the holders of accounts a scenario fault writes a debt on
        (docs/explanation/semantics.md, 10b), in write order: at each write, one greenlet
        looks at the account at the fault's delays after it. The accounts and instants come
        from the scenario alone (the fault type's live rule names them as the service does)."""
        index = int(self.shard) if self.shard.isdigit() else 0
        n = 0
        for i, fault in enumerate(SCENARIO.faults):
            for account, written, looks in REGISTRY[fault.type].live.holders(fault, SCENARIO.fault_label(i),
                                                                              SCENARIO.duration):
                n += 1
                if (n - 1) % SHARDS != index % SHARDS or written < began:
                    continue
                delay = self.clock.wall(written) - time.time()
                if delay > 0:
                    gevent.sleep(delay)
                group.spawn(self.holder, account, written, looks, fault.type)

    def holder(self, account: str, written: float, looks: tuple[float, ...], cause: str) -> None:
        """One holder: a look at the account at each delay after the write (scenario seconds),
        stopping at the first that shows usable; recorded as ``holder`` (:mod:`repaychaos.load.measure`)."""
        key = f"holder-{self.run_id}-{account}"
        values: dict[str, Any] = {"key": key, "account": account, "amount": self.api.repay.amount, "id": "",
                                  "read_at": "", "repay_at": ""}
        rec: dict[str, Any] = {"holder": account, "written_at": written, "cause": cause, "reads": []}
        _open_records[key] = rec
        try:
            for delay in looks:
                instant = self.clock.wall(written + delay)
                if not self._may_look(rec, instant):
                    return
                read = self._look(values, rec, instant)
                if read is None:
                    continue
                rec["reads"].append(read)
                live_events.read_seen.fire(scenario=SCENARIO.name, usable=read[1], hold=read[3],
                                           since_ack_s=delay, index=looks.index(delay), holder=True)
                if read[1]:
                    break
            rec["done"] = True
        finally:
            if _open_records.pop(key, None) is not None:
                _record(self.environment, rec)

    def _check(self, values: dict[str, Any], rec: dict[str, Any], first: float, seq: int = 0,
               again: Group | None = None) -> None:
        check = SCENARIO.workload.check
        pay = check.pay_again
        ack_s = self.clock.scenario(rec["ack_mark"])
        stale_only = True
        for index in range(check.max_checks):
            at = first + index * check.every
            instant = self.clock.wall(at)
            if not self._may_look(rec, instant):
                return
            read = self._look(values, rec, instant)
            if read is None:
                continue
            t, usable, _as_of, held, _instant = read
            rec["reads"].append(read)
            live_events.read_seen.fire(scenario=SCENARIO.name, usable=usable, hold=held,
                                       since_ack_s=at - ack_s, index=index)
            if pay is not None and again is not None and index == pay.after_stale_reads - 1:
                # the user's own draw, the same whichever greenlet runs first
                part = "" if SHARDS == 1 else f"/{self.shard}"
                u = stream(SCENARIO.seed, seq, "live-pay-again" + part).random()
                stale = [not r[1] and not r[3] for r in rec["reads"]]
                if len(stale) == index + 1 and pays_again(stale, pay.after_stale_reads, u, pay.probability):
                    again.spawn(self._pay_again, values, rec, instant)
            if usable:
                live_events.user_done.fire(scenario=SCENARIO.name, support_contact=False,
                                           first_usable_s=self.clock.scenario(t) - ack_s)
                rec["done"] = True
                return
            stale_only = stale_only and not held
        rec["done"] = True
        live_events.user_done.fire(scenario=SCENARIO.name,
                                   support_contact=stale_only and len(rec["reads"]) == check.max_checks,
                                   first_usable_s=None)



def _epoch(wall: float) -> str:
    """A wall instant as the ``{read_at}`` and ``{repay_at}`` placeholders give it (epoch seconds, to the µs)."""
    return repr(round(wall, 6))


# Listeners that show a run live (repaychaos.integrations: the Prometheus exporter, the web UI
# tab) register through Locust's own events when their modules are imported; the runner names
# them in REPAYCHAOS_LOCUST_PLUGINS (``repaychaos load --metrics-port``).
for _plugin in filter(None, os.environ.get("REPAYCHAOS_LOCUST_PLUGINS", "").split(",")):
    __import__(_plugin.strip())
