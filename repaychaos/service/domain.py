"""The reference service without HTTP: ledger commits, idempotency, recovery, metrics, trace.

:mod:`repaychaos.service.app` maps docs/reference/http-api.md onto this object; keeping the behaviour here makes it
testable without a server and keeps the HTTP layer thin.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import os
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from repaychaos.core.errors import InvalidInput
from repaychaos.core.timescale import TimeScale
from repaychaos.service.clock import ScenarioClock
from repaychaos.service.edge import MAX_KEY, key_ok, parse_repayment, parse_status_query, to_plain
from repaychaos.semantics import release_time
from repaychaos.service.fault_board import MAX_LIVE_FAULTS, FaultBoard, TooManyFaults, parse_fault
from repaychaos.service.reservoir import Reservoir
from repaychaos.service.stages import HISTORY_WALL, Pipeline
from repaychaos.service.spill import Spiller, ViewMap, trace_json
from repaychaos.service.store import LedgerRow, Store
from repaychaos.scenarios.faults import FAULT_TYPES
from repaychaos.scenarios.faults.base import MAX_FAULT_TIME

if TYPE_CHECKING:
    from repaychaos.scenarios import Scenario

__all__ = ["Service", "RepayOutcome", "default_scenario", "default_max_backlog", "MAX_FAULT_TIME", "MAX_READ_AHEAD"]

#: Scenario seconds of the peak arrival rate the default backlog bound holds ("a few minutes").
BACKLOG_SECONDS = 300.0
#: The smallest default backlog bound, whatever the rate.
MIN_BACKLOG = 1000
#: Idempotency keys answered from memory; older ones are looked up in the ledger's index.
KEY_CACHE = 10_000
#: Most wall seconds ahead of now a read may name with ``as_of`` (it waits until then): 422 beyond.
MAX_READ_AHEAD = 30.0
#: Most wall seconds before its arrival a repayment's ``as_of`` is honoured (earlier: this far back).
MAX_MADE_BACK_WALL = 1.0


def default_max_backlog(scenario: Scenario) -> int:
    """Outbox events the service holds before it sheds: the scenario's peak arrival rate times
    :data:`BACKLOG_SECONDS` or its longest finite fault window, whichever is longer (a planned
    pause must not shed), and at least :data:`MIN_BACKLOG`."""
    peak = max(rate for _at, rate in scenario.workload.arrivals.steps)
    longest = max((float(f.for_) for f in scenario.faults if getattr(f, "for_", None) is not None), default=0.0)
    return max(MIN_BACKLOG, math.ceil(peak * max(BACKLOG_SECONDS, longest) * 1.5))


def default_scenario() -> Any:
    """The pipeline of docs/reference/scenario-format.md with no faults: what ``repaychaos serve`` runs without --scenario."""
    from repaychaos.scenarios import load_scenario_data

    return load_scenario_data({"version": 1, "name": "serve-default", "duration": "1d",
                               "workload": {"arrivals": {"rate": "1/s"}}}, "<serve default>")


@dataclass(frozen=True)
class RepayOutcome:
    """What ``POST /repayments`` answers: status code, JSON body, extra headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] | None = None


class Service:
    """One running reference service: its clock, database, fault board and pipeline."""

    def __init__(self, scenario: Scenario, *, db: str | os.PathLike[str], time_scale: float | TimeScale = 1.0,
                 t0: float | None = None,
                 token: str | None = None, synchronous: str = "FULL", seed: int | None = None,
                 max_backlog: int | None = None):
        self.scenario = scenario
        self.max_backlog = default_max_backlog(scenario) if max_backlog is None else max_backlog
        self.store = Store(db, synchronous=synchronous)
        self.store.open()
        stored_t0 = self.store.get_meta("t0")
        if t0 is None:
            # A restart on the same file keeps the timeline, so old rows keep their scenario times.
            t0 = float(stored_t0) if stored_t0 is not None else time.time()
        self.store.set_meta_now("t0", repr(t0))
        self.clock = ScenarioClock(t0, time_scale)
        self.store.set_meta_now("time_scale", self.clock.scale.text())
        self.token = token or secrets.token_urlsafe(24)
        self.board = FaultBoard(horizon=max(scenario.duration * 4, scenario.duration + 86_400))
        for index, fault in enumerate(scenario.faults):
            self.board.add(fault, label=scenario.fault_label(index))
        self.pipeline = Pipeline(scenario, self.clock, self.board, self.store,
                                 scenario.seed if seed is None else seed)
        self.pipeline.view = ViewMap(self.store, self.clock)  # settled accounts are read from SQLite
        self.pipeline.moved_account = self.store.spilled_account  # shared accounts' repayments at rest
        self.timeline = self.pipeline.timeline
        self.spiller = Spiller(self.pipeline, self.store)
        # the outbox event starts at the commit callback itself (not one more hop later, when the
        # request's coroutine resumes), and even when that coroutine was cancelled meanwhile
        self._publish_lag = Reservoir()  # scenario seconds
        #: rep_id -> when its ack began waiting out a ledger window, and the cause of that window
        self._ledger_waits: dict[str, tuple[float, str]] = {}
        self.store.on_acked = self._on_acked
        self._spill_task: asyncio.Task | None = None
        # key -> (ack body, account, amount): a bounded cache in front of the ledger's UNIQUE index
        self.keys: OrderedDict[str, tuple[dict[str, Any], str, str]] = OrderedDict()
        self.pending: dict[str, asyncio.Future] = {}
        #: key -> (first rejected attempt, the gate's cause, the retry instant the 503 named)
        self.rejected_at: OrderedDict[str, tuple[float, str, float]] = OrderedDict()
        #: how late (scenario s) retries came after the instant their 503 named
        self.retry_lateness = Reservoir()
        self.shedding = False
        self.accepting = False
        self.recovered = 0
        self._started_at = math.inf  # no view history before start: reads as of the past wait for it
        self._boot = uuid.uuid4().hex[:12]  # ids stay unique across restarts on one file
        self._seq = 0
        self._registry = CollectorRegistry()
        self._init_metrics()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the writer, rebuild state from the file (a restart), republish the outbox."""
        self.store.start(asyncio.get_running_loop())
        ledger = self.store.all_ledger()
        self.recovered = self.pipeline.recover(ledger, self.store.all_views(), self.store.pending_outbox())
        self.pipeline.start()
        self._spill_task = asyncio.get_running_loop().create_task(self.spiller.run())
        self._started_at = time.time()
        self.accepting = True

    async def stop(self) -> None:
        self.accepting = False
        if self._spill_task is not None:
            self._spill_task.cancel()
            await asyncio.gather(self._spill_task, return_exceptions=True)
        await self.pipeline.stop()
        self.store.close()

    # ------------------------------------------------------------------ repayments

    def _body(self, row: LedgerRow) -> dict[str, Any]:
        return {"id": row.id, "account": row.account, "acked_at": row.acked_at}

    async def handle_repayment(self, key: str | None, raw: bytes, query: bytes | str = b"") -> RepayOutcome:
        """``POST /repayments`` from its Idempotency-Key header, raw JSON body and query string
        (``as_of``: the instant the repayment is made at; docs/reference/http-api.md)."""
        if key is None or not key_ok(key):
            return RepayOutcome(422, {"detail": f"header Idempotency-Key: required, 1-{MAX_KEY} visible ASCII characters"})
        made_at, repayment, problem = parse_status_query(query)
        if problem is None and repayment is not None:
            problem = "query: unexpected parameter(s) 'repayment'; only as_of is known here"
        if problem is None and made_at is not None and made_at - time.time() > MAX_READ_AHEAD:
            problem = f"as_of: at most {MAX_READ_AHEAD:g} s ahead of the service's clock, found {made_at - time.time():.3f} s ahead"
        if problem is not None:
            return RepayOutcome(422, {"detail": problem})
        parsed = parse_repayment(raw)
        if isinstance(parsed, str):
            return RepayOutcome(422, {"detail": parsed})
        if not self.accepting:
            return RepayOutcome(503, {"detail": "the service is starting or stopping", "reason": "stopping"},
                                {"Retry-After": "1"})
        return await self.repay(key, *parsed, made_at=made_at)

    def _known(self, key: str) -> tuple[dict[str, Any], str, str] | None:
        known = self.keys.get(key)
        if known is not None:
            self.keys.move_to_end(key)
            return known
        row = self.store.ledger_by_key(key)  # the ledger's UNIQUE index: one indexed read
        if row is None:
            return None
        return self._remember(row.key, self._body(row), row.account, row.amount)

    def _remember(self, key: str, body: dict[str, Any], account: str, amount: str) -> tuple[dict[str, Any], str, str]:
        known = self.keys[key] = (body, account, amount)
        if len(self.keys) > KEY_CACHE:
            self.keys.popitem(last=False)
        return known

    def overhead(self) -> dict[str, Any]:
        """What the live service adds to the scenario's stage times, in scenario seconds:
        ``view_write``: how late each view write happened after its intended instant (the sum of
        the scenario's stage times from the ack) — exactly what time_to_usable gains over the
        stages (0 on the ordinary path, where a write is due at its instant); ``timer_wake``:
        how late the event loop woke each write's task (not on the view's timeline: a read
        applies a due write first); ``ack_to_publish``: from the ack instant to the outbox
        event's start."""
        return {"view_write": self.pipeline.lateness.summary(), "timer_wake": self.pipeline.wake_lateness.summary(),
                "ack_to_publish": self._publish_lag.summary(), "retry_late": self.retry_lateness.summary()}

    def _on_acked(self, row: LedgerRow) -> None:
        """The outbox event of a committed row, published in the writer's callback itself."""
        self._publish_lag.add(self.clock.now() - self.clock.to_scenario(row.acked_at))
        trace = self.pipeline.publish(row)
        waited = self._ledger_waits.pop(row.id, None)
        if waited is not None:  # the ack itself waited out a ledger window (as the model records it)
            trace.touch(waited[1], trace.acked_at, trace.acked_at - waited[0])

    @property
    def backlog(self) -> int:
        """Outbox events not yet done plus commits in progress: what back-pressure bounds."""
        return len(self.pipeline.inflight) + len(self.pending)

    async def repay(self, key: str, account: str, amount: str, made_at: float | None = None) -> RepayOutcome:
        """Commit a repayment once per idempotency key; ack only after the commit. ``made_at``
        (epoch seconds): the instant the user made it, when the request names it."""
        while key in self.pending:
            await asyncio.shield(self.pending[key])
        known = self._known(key)
        if known is not None:
            if known[1:] != (account, amount):
                return RepayOutcome(422, {"detail": "Idempotency-Key was already used with a different body"})
            self.m_replays.inc()
            return RepayOutcome(200, known[0])
        backlog = self.backlog
        self.shedding = backlog >= self.max_backlog
        if self.shedding:
            # back-pressure: acknowledge nothing the pipeline cannot hold (docs/reference/http-api.md)
            self.m_shed.inc()
            return RepayOutcome(503, {"detail": f"the service holds {backlog} events, its bound is {self.max_backlog}; "
                                                "retry with the same Idempotency-Key after Retry-After",
                                      "reason": "backlog"}, {"Retry-After": "1"})
        done = asyncio.get_running_loop().create_future()
        self.pending[key] = done
        try:
            return await self._commit(key, account, amount, made_at)
        finally:
            del self.pending[key]
            done.set_result(None)

    async def _commit(self, key: str, account: str, amount: str, made_at: float | None) -> RepayOutcome:
        """Cross the channel, pass the ledger's windows, commit. A retry after a ledger 503 does
        not cross the channel again: it reaches the ledger on its first attempt's retry grid
        (docs/explanation/semantics.md), taken as the timeline says (:meth:`Timeline.take_retry`).

        A first attempt that names the instant it was made at (``made_at``) crosses the channel
        from that instant and is committed *as of* its end: the ledger's windows are judged
        there and the ack carries that instant, as the model's ack is the arrival plus the
        channel's latency. The request's own lateness, the event loop's and the group commit's
        (a few wall milliseconds, K times as many scenario ones) then stay out of the ack
        instant, out of the sync pool's arrival process and out of every read timed from the
        ack. At most :data:`MAX_MADE_BACK_WALL` wall seconds back are honoured."""
        clock, pipe, timeline = self.clock, self.pipeline, self.timeline
        rejected = self.rejected_at.get(key)
        waited_from: float | None = None
        held_by: str | None = None
        as_of: float | None = None  # the instant this attempt is taken at, when not now
        if rejected is None:
            made = clock.now()
            if made_at is not None:
                made = max(clock.to_scenario(made_at), made - MAX_MADE_BACK_WALL * clock.time_scale)
            arrived = made + pipe.channel_latency()
            await clock.sleep_until(arrived)
            if made_at is not None:
                if clock.now() < arrived:  # the clock's learnt bias wakes it a little early
                    await clock.sleep_until_precise(arrived)
                as_of = arrived
        else:
            waited_from, held_by, named = rejected
            self.retry_lateness.add(clock.now() - named)
            as_of = await timeline.take_retry(waited_from, named, lambda t: self.board.gate("ledger", t) is None)
        while True:
            window = self.board.gate("ledger", clock.now() if as_of is None else as_of)
            if window is None:
                break
            _start, end, mode, held_by = window
            if mode == "reject":
                # The 503 names the first retry instant that can succeed: the client comes then,
                # not at every grid instant through the window (K times the requests in wall time).
                self.m_rejected.inc()
                now = clock.now() if as_of is None else as_of
                first = now if waited_from is None else waited_from
                retry = timeline.named_retry(first, now, end)
                self.rejected_at[key] = (first, held_by, retry)
                self.rejected_at.move_to_end(key)
                if len(self.rejected_at) > KEY_CACHE:
                    self.rejected_at.popitem(last=False)
                return RepayOutcome(503, {"detail": "the ledger is in a maintenance window; retry with the same Idempotency-Key",
                                          "reason": "maintenance", "retry_at": clock.to_epoch(retry)},
                                    {"Retry-After": str(timeline.retry_after_wall(retry))})
            if waited_from is None:
                waited_from = clock.now()
            as_of = None  # a pause is waited out now, re-checked every poll (it may be ended live)
            await clock.sleep_until(min(release_time(clock.now(), end, mode), clock.now() + 0.2 * clock.time_scale))
        held = pipe.rng.random() < pipe.risk_hold_ratio
        self._seq += 1
        rep_id = f"r-{self._boot}-{self._seq}"
        started = time.perf_counter()
        if waited_from is not None and held_by is not None:
            self._ledger_waits[rep_id] = (waited_from, held_by)
        try:
            _acked, row = await self.store.repay(rep_id, key, account, amount, held,
                                                 as_of=None if as_of is None else clock.to_epoch(as_of))
        except Exception:
            self._ledger_waits.pop(rep_id, None)
            raise
        finally:
            self.store.forget_as_of(rep_id)
        self.m_commit.observe(time.perf_counter() - started)
        if row is None:  # committed by an earlier process under this key (cannot normally happen)
            row = self.store.ledger_by_key(key)
            if row is None:
                raise RuntimeError(f"repayment {rep_id}: its key is neither new nor in the ledger")
            return RepayOutcome(200, self._remember(key, self._body(row), row.account, row.amount)[0])
        body = self._body(row)
        self._remember(key, body, account, amount)
        self.rejected_at.pop(key, None)
        return RepayOutcome(201, body)

    def health(self) -> dict[str, Any]:
        """``GET /healthz``: ok, degraded (shedding: the backlog is at its bound) or stopping."""
        backlog = self.backlog
        if not self.accepting or self.store.failed is not None:
            status = "stopping"
        else:
            status = "degraded" if backlog >= self.max_backlog else "ok"
        clock = self.clock
        return {"ok": status == "ok", "status": status, "scenario": self.scenario.name, "t0": clock.t0,
                "time_scale": clock.time_scale, "time_scales": clock.scale.as_json(), "now": clock.now(),
                "outbox_backlog": backlog,
                "max_backlog": self.max_backlog, "unsettled_accounts": len(self.pipeline.unsettled)}

    # ------------------------------------------------------------------ reads

    def status(self, account: str, repayment: str | None = None) -> dict[str, Any]:
        """``GET /accounts/{account}/status``: the view now (as the user of ``repayment`` sees
        it, when the scenario has accounts: docs/explanation/semantics.md 14)."""
        now = time.time()
        usable, as_of = self.pipeline.read(account, self.clock.to_scenario(now), repayment)
        return {"account": account, "status": "usable" if usable else "unusable",
                "as_of": self.clock.to_epoch(as_of), "read_at": now}

    def as_of_problem(self, instant: float) -> str | None:
        """What is wrong with reading as of epoch ``instant``, or None: it must lie between the
        oldest instant the view history still answers for and :data:`MAX_READ_AHEAD` ahead."""
        now = time.time()
        if not math.isfinite(instant):
            return "as_of: expected a finite number of epoch seconds"
        if instant - now > MAX_READ_AHEAD:
            return (f"as_of: at most {MAX_READ_AHEAD:g} s ahead of the service's clock, found "
                    f"{instant - now:.3f} s ahead")
        oldest = self.oldest_readable()
        if instant < oldest:
            return (f"as_of: the service answers as of instants at most {HISTORY_WALL:g} s back and not before "
                    f"its start, found {now - instant:.3f} s back")
        return None

    def oldest_readable(self) -> float:
        """The earliest epoch instant a read as of a past instant is answered for."""
        return max(self._started_at, time.time() - HISTORY_WALL)

    async def status_as_of(self, account: str, instant: float, repayment: str | None = None) -> dict[str, Any]:
        """``GET /accounts/{account}/status?as_of=``: the view as of epoch ``instant`` — at once
        when it has passed, else once it has (the caller checked :meth:`as_of_problem`)."""
        clock = self.clock
        t = clock.to_scenario(instant)
        if clock.now() < t:
            await clock.sleep_until(t)
            if clock.now() < t:  # the clock's learnt bias wakes it a little early
                await clock.sleep_until_precise(t)
        await self.timeline.acts_done_until(t)
        usable, shown = self.pipeline.read(account, t, repayment)
        return {"account": account, "status": "usable" if usable else "unusable",
                "as_of": instant if shown == t else clock.to_epoch(shown), "read_at": instant}

    def repayment(self, rep_id: str) -> dict[str, Any] | None:
        row = self.store.ledger_row(rep_id)
        if row is None:
            return None
        return {"id": row.id, "account": row.account, "amount": row.amount, "acked_at": row.acked_at}

    # ------------------------------------------------------------------ chaos control

    def check_token(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        return secrets.compare_digest(header[7:].strip().encode(), self.token.encode())

    def add_fault(self, data: Any) -> dict[str, Any]:
        """Validate one fault in scenario syntax and place it with ``at`` relative to now.

        :class:`InvalidInput` (422) for a fault the scenario format refuses or one that would
        start beyond the service's timeline (it could never be listed or act);
        :class:`TooManyFaults` (429) when :data:`MAX_LIVE_FAULTS` live ones are in force or
        scheduled."""
        fault = parse_fault(to_plain(data))
        now = self.clock.now()
        board = self.board
        if now + fault.at >= board.horizon:
            raise InvalidInput(f"fault: at: expected a start within the service's timeline (it ends "
                               f"{board.horizon - now:.0f} s from now), found {fault.at:g} s")
        oldest = min((msg.enqueued for msg in self.pipeline.inflight.values()), default=now)
        board.prune(min(oldest, now))
        if board.live_count(now) >= MAX_LIVE_FAULTS:
            raise TooManyFaults(f"fault: {MAX_LIVE_FAULTS} live faults are in force or scheduled already; "
                                "end one (DELETE /chaos/faults/{id}) first")
        active = board.add(fault, offset=now, source="live")
        return active.as_json(now)

    def trace(self) -> dict[str, Any]:
        """Every ledger row joined with what the pipeline recorded for it, in scenario seconds."""
        to_s = self.clock.to_scenario
        traces, spilling = self.pipeline.traces, self.spiller.spilling
        spilled = self.store.spilled_traces()
        shared = self.pipeline.account_traces() if self.pipeline.accounts_on else {}
        regressions = self.store.spilled_regressions() if self.pipeline.accounts_on else {}
        reps = []
        for row in self.store.all_ledger():
            tr = traces.get(row.id) or spilling.get(row.id)
            regressed = 0
            if row.id in shared:
                changes, touches, regressed = shared[row.id]
            elif tr is not None:
                changes, touches = trace_json(tr)
            elif row.id in spilled:
                changes, touches = (json.loads(text) for text in spilled[row.id])
                regressed = regressions.get(row.id, 0)
            else:
                changes, touches = [], []
            reps.append({
                "id": row.id,
                "key": row.key,
                "account": row.account,
                "acked_at": to_s(row.acked_at),
                "held": row.held,
                "changes": changes,
                "touches": touches,
            })
            if self.pipeline.accounts_on:
                reps[-1]["regressed"] = regressed  # status writes that put the account's view back (14a)
        return {
            "t0": self.clock.t0,
            "time_scale": self.clock.top,
            "time_scales": self.clock.scale.as_json(),
            "now": self.clock.now(),
            "repayments": reps,
            "accounts": self.pipeline.accounts_on,
            # accounts an external interface wrote a debt on (docs/explanation/semantics.md 10b)
            "phantoms": [{"account": tr.account, "written_at": tr.acked_at, "changes": [list(c) for c in tr.changes]}
                         for tr in self.pipeline.phantoms.values()],
            "duplicates": self.store.duplicate_rows(),
            "backlog": [[t, n] for t, n in self.pipeline.backlog],
            "recovered": self.recovered,
            "outbox_pending": len(self.pipeline.inflight),
            "stage_errors": self.pipeline.errors,
            "write_lateness": self.pipeline.lateness_summary(),
            "overhead": self.overhead(),
        }

    # ------------------------------------------------------------------ prometheus

    def _init_metrics(self) -> None:
        reg = self._registry
        self.m_requests = Counter("repaychaos_requests", "HTTP requests served", ["route", "status"], registry=reg)
        self.m_replays = Counter("repaychaos_idempotent_replays", "Repayment requests answered from an earlier commit",
                                 registry=reg)
        self.m_shed = Counter("repaychaos_shed", "Repayments refused with 503 because the backlog was at its bound",
                              registry=reg)
        Gauge("repaychaos_max_backlog", "The backlog bound beyond which repayments are shed",
              registry=reg).set(self.max_backlog)
        self.m_rejected = Counter("repaychaos_ledger_rejections", "Repayments refused by a ledger reject window",
                                  registry=reg)
        self.m_commit = Histogram("repaychaos_ledger_commit_seconds", "Wall time from queueing a repayment to its commit",
                                  buckets=(.001, .002, .005, .01, .02, .05, .1, .2, .5, 1, 2, 5), registry=reg)
        pipe = self.pipeline
        Gauge("repaychaos_outbox_backlog", "Outbox events published and not yet completed",
              registry=reg).set_function(lambda: len(pipe.inflight))
        Gauge("repaychaos_sync_backlog", "Messages waiting for or in sync service",
              registry=reg).set_function(lambda: pipe.in_sync)
        Gauge("repaychaos_sync_in_flight", "Messages in sync service now",
              registry=reg).set_function(lambda: pipe.sync_busy)
        Gauge("repaychaos_stale_accounts", "Accounts whose view shows unusable while the truth is usable",
              registry=reg).set_function(lambda: pipe.stale_counts()[0])
        Gauge("repaychaos_wrong_usable_accounts", "Accounts whose view shows usable while the truth is unusable",
              registry=reg).set_function(lambda: pipe.stale_counts()[1])
        Gauge("repaychaos_scenario_seconds", "The service's scenario clock",
              registry=reg).set_function(self.clock.now)
        faults = Gauge("repaychaos_faults_active", "Faults in force now, by type", ["type"], registry=reg)
        for fault_type in FAULT_TYPES:
            faults.labels(fault_type).set_function(functools.partial(self._active_count, fault_type))

    def _active_count(self, fault_type: str) -> int:
        return self.board.active_counts(self.clock.now())[fault_type]

    def metrics_text(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self._registry)
