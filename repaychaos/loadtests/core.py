"""The reference service without HTTP: ledger commits, idempotency, recovery, metrics, trace.

:mod:`repaychaos.loadtests.app` maps SPEC §7 onto this object; keeping the behaviour here makes it
testable without a server and keeps the HTTP layer thin.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from repaychaos.loadtests.clock import ScenarioClock
from repaychaos.loadtests.faults import REJECT_RETRY, FaultBoard, release_time
from repaychaos.loadtests.pipeline import Pipeline
from repaychaos.loadtests.store import LedgerRow, Store
from repaychaos.scenarios.faults import FAULT_TYPES

__all__ = ["Service", "RepayOutcome", "default_scenario"]


def default_scenario() -> Any:
    """The pipeline of SPEC §3 with no faults: what ``repaychaos serve`` runs without --scenario."""
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

    def __init__(self, scenario: Any, *, db: str | Path, time_scale: float = 1.0, t0: float | None = None,
                 token: str | None = None, synchronous: str = "FULL", seed: int | None = None):
        self.scenario = scenario
        self.store = Store(db, synchronous=synchronous)
        self.store.open()
        stored_t0 = self.store.get_meta("t0")
        if t0 is None:
            # A restart on the same file keeps the timeline, so old rows keep their scenario times.
            t0 = float(stored_t0) if stored_t0 is not None else time.time()
        self.store.set_meta_now("t0", repr(t0))
        self.store.set_meta_now("time_scale", repr(time_scale))
        self.clock = ScenarioClock(t0, time_scale)
        self.token = token or secrets.token_urlsafe(24)
        self.board = FaultBoard(horizon=max(scenario.duration * 4, scenario.duration + 86_400))
        for index, fault in enumerate(scenario.faults):
            self.board.add(fault, label=scenario.fault_label(index))
        self.pipeline = Pipeline(scenario, self.clock, self.board, self.store,
                                 scenario.seed if seed is None else seed)
        self.keys: dict[str, dict[str, Any]] = {}
        self.key_owner: dict[str, tuple[str, str]] = {}
        self.pending: dict[str, asyncio.Future] = {}
        self.rejected_at: dict[str, float] = {}
        self.accepting = False
        self.recovered = 0
        self._boot = uuid.uuid4().hex[:12]  # ids stay unique across restarts on one file
        self._seq = 0
        self._registry = CollectorRegistry()
        self._init_metrics()

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the writer, rebuild state from the file (a restart), republish the outbox."""
        self.store.start(asyncio.get_running_loop())
        ledger = self.store.all_ledger()
        for row in ledger:
            self.keys[row.key] = self._body(row)
            self.key_owner[row.key] = (row.account, row.amount)
        self.recovered = self.pipeline.recover(ledger, self.store.all_views(), self.store.pending_outbox())
        self.pipeline.start()
        self.accepting = True

    async def stop(self) -> None:
        self.accepting = False
        await self.pipeline.stop()
        self.store.close()

    # ------------------------------------------------------------------ repayments

    def _body(self, row: LedgerRow) -> dict[str, Any]:
        return {"id": row.id, "account": row.account, "acked_at": row.acked_at}

    async def repay(self, key: str, account: str, amount: str) -> RepayOutcome:
        """Commit a repayment once per idempotency key; ack only after the commit."""
        while key in self.pending:
            await asyncio.shield(self.pending[key])
        known = self.keys.get(key)
        if known is not None:
            if self.key_owner.get(key) != (account, amount):
                return RepayOutcome(422, {"detail": "Idempotency-Key was already used with a different body"})
            self.m_replays.inc()
            return RepayOutcome(200, known)
        done = asyncio.get_running_loop().create_future()
        self.pending[key] = done
        try:
            return await self._commit(key, account, amount)
        finally:
            del self.pending[key]
            done.set_result(None)

    async def _commit(self, key: str, account: str, amount: str) -> RepayOutcome:
        clock, pipe = self.clock, self.pipeline
        arrive = clock.now() + pipe.channel_latency()
        await clock.sleep_until(arrive)
        waited_from = self.rejected_at.get(key)
        while True:
            window = self.board.maintenance("ledger", clock.now())
            if window is None:
                break
            _start, end, mode = window
            if mode == "reject":
                self.m_rejected.inc()
                self.rejected_at.setdefault(key, clock.now())
                wait_wall = max(1, math.ceil(REJECT_RETRY / clock.time_scale))
                return RepayOutcome(503, {"detail": "the ledger is in a maintenance window; retry with the same Idempotency-Key"},
                                    {"Retry-After": str(wait_wall)})
            if waited_from is None:
                waited_from = clock.now()
            await clock.sleep_until(min(release_time(clock.now(), end, mode), clock.now() + 0.2 * clock.time_scale))
        held = pipe.rng.random() < pipe.risk_hold_ratio
        self._seq += 1
        rep_id = f"r-{self._boot}-{self._seq}"
        started = time.perf_counter()
        _acked, row = await self.store.repay(rep_id, key, account, amount, held)
        self.m_commit.observe(time.perf_counter() - started)
        if row is None:  # committed by an earlier process under this key (cannot normally happen)
            row = self.store.ledger_by_key(key)
            self.keys[key] = self._body(row)
            self.key_owner[key] = (row.account, row.amount)
            return RepayOutcome(200, self.keys[key])
        body = self._body(row)
        self.keys[key] = body
        self.key_owner[key] = (account, amount)
        self.rejected_at.pop(key, None)
        trace = pipe.publish(row)
        if waited_from is not None:  # the ack itself waited out a ledger window (as the model records it)
            trace.touch("maintenance", trace.acked_at, trace.acked_at - waited_from)
        return RepayOutcome(201, body)

    # ------------------------------------------------------------------ reads

    def status(self, account: str) -> dict[str, Any]:
        now = time.time()
        usable, as_of = self.pipeline.read(account, self.clock.to_scenario(now))
        return {"account": account, "status": "usable" if usable else "unusable",
                "as_of": self.clock.to_epoch(as_of), "read_at": now}

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
        """Validate one fault in scenario syntax and place it with ``at`` relative to now."""
        from repaychaos.loadtests.faults import parse_fault

        fault = parse_fault(data)
        active = self.board.add(fault, offset=self.clock.now(), source="live")
        return active.as_json(self.clock.now())

    def trace(self) -> dict[str, Any]:
        """Every ledger row joined with what the pipeline recorded for it, in scenario seconds."""
        to_s = self.clock.to_scenario
        traces = self.pipeline.traces
        reps = []
        for row in self.store.all_ledger():
            tr = traces.get(row.id)
            reps.append({
                "id": row.id,
                "key": row.key,
                "account": row.account,
                "acked_at": to_s(row.acked_at),
                "held": row.held,
                "changes": [[t, u] for t, u in tr.changes] if tr else [],
                "touches": [[c, a, _finite(d)] for c, a, d in tr.resolved_touches()] if tr else [],
            })
        return {
            "t0": self.clock.t0,
            "time_scale": self.clock.time_scale,
            "now": self.clock.now(),
            "repayments": reps,
            "duplicates": self.store.duplicate_rows(),
            "backlog": [[t, n] for t, n in self.pipeline.backlog],
            "recovered": self.recovered,
            "outbox_pending": len(self.pipeline.inflight),
            "stage_errors": self.pipeline.errors,
            "write_lateness": self.pipeline.lateness_summary(),
        }

    # ------------------------------------------------------------------ prometheus

    def _init_metrics(self) -> None:
        reg = self._registry
        self.m_requests = Counter("repaychaos_requests", "HTTP requests served", ["route", "status"], registry=reg)
        self.m_replays = Counter("repaychaos_idempotent_replays", "Repayment requests answered from an earlier commit",
                                 registry=reg)
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
            faults.labels(fault_type).set_function(
                lambda ft=fault_type: self.board.active_counts(self.clock.now())[ft])

    def metrics_text(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self._registry)


def _finite(x: float) -> float | None:
    return None if x == math.inf else x
