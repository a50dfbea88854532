"""The stages after the ledger, live: outbox -> sync pool -> credit -> view, plus reconcile.

This follows docs/explanation/semantics.md step by step (the model follows it too), but with real
asyncio tasks on the compressed clock instead of simulated time. Every repayment keeps a
:class:`Trace` — ack time, risk hold, every view change, every fault that touched its
message and how much delay that fault added — in scenario seconds. That is the truth the
load test's metrics need; it is exported by ``GET /chaos/trace``.

Work that a fault loses (interface-bug drops, cutover in-flight loss) still completes its
outbox event: the message was consumed and lost downstream, and only a reconcile sweep
repairs the view — exactly the failure the scenario describes. Work in flight when the
process dies is *not* completed, so a restart republishes it.
"""

from __future__ import annotations

import asyncio
import heapq
import math
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from repaychaos.core.streams import stream
from repaychaos.service.clock import ScenarioClock
from repaychaos.service.fault_board import ActiveFault, FaultBoard
from repaychaos.service.timeline import Timeline
from repaychaos.service.reservoir import Reservoir
from repaychaos.service.store import LedgerRow, Store
from repaychaos.service.trace import Message, Trace
from repaychaos.semantics import (AccountView, account_views, cache_serves, kept_release, release_time,
                                  repaired_at,
                                  retry_at, until_repair, view_at, view_history,
                                  written_state)

if TYPE_CHECKING:
    from repaychaos.scenarios import Scenario

__all__ = ["Pipeline", "HISTORY_WALL"]

#: Wall seconds between re-checks while work waits out a window (a window can be ended live).
_POLL_WALL = 0.2
#: Wall seconds of view history the pipeline keeps: a read as of an instant at most this far
#: back is answered exactly (:meth:`Pipeline.read`); the service refuses one further back.
HISTORY_WALL = 10.0

class RuleAPI:
    """All a fault's live rule may do to the pipeline (:class:`~repaychaos.scenarios.faults.hooks.LiveAPI`):
    no queue object, no tasks, no view."""

    __slots__ = ("_pipe", "rng", "faults_rng", "pooled")

    def __init__(self, pipe: "Pipeline"):
        self._pipe = pipe
        self.rng = pipe.rng
        self.faults_rng = pipe.faults_rng
        self.pooled = pipe.workers is not None

    def now(self) -> float:
        return self._pipe.clock.now()

    def sleep_until(self, t: float) -> Awaitable[None]:
        return self._pipe.clock.sleep_until(t)

    def spawn(self, coro: Any) -> None:
        self._pipe._spawn(coro)

    def at(self, t: float, fn: Callable[[float], None]) -> None:
        self._pipe._at(t, fn)

    def inflight(self) -> list[Message]:
        return list(self._pipe.inflight.values())

    def blame_backlog(self, cause: str) -> None:
        if self.pooled and not self._pipe.queue.empty():
            self._pipe.degraded = cause

    def slows_pool(self, cause: str) -> None:
        if self.pooled:
            self._pipe.degraded = cause

    def write_phantom(self, account: str, t: float) -> None:
        self._pipe.write_phantom(account, t)


class Pipeline:
    """The sync workers, credit, view (with its cache) and the reconcile sweep of one service."""

    def __init__(self, scenario: Scenario, clock: ScenarioClock, board: FaultBoard, store: Store, seed: int):
        pipe = scenario.pipeline
        self.scenario = scenario
        self.clock = clock
        self.board = board
        self.store = store
        # One stream per purpose, none shared with the load generator: a draw's use never
        # depends on another process's draws or on the order requests arrive in, so service
        # times are an unbiased sample of their distribution whatever the client does.
        service = stream(seed, 0, "live-service")
        #: per-repayment decisions: risk hold, interface bugs, cutover loss and mapping
        self.rng = stream(seed, 0, "live-decisions")
        self.faults_rng = stream(seed, 0, "live-faults")
        self.sync_service = pipe.sync.service.sampler(service)
        self.credit_service = pipe.credit.service.sampler(service)
        self.channel_latency = pipe.channel.latency.sampler(service)
        self.workers = pipe.sync.workers
        self.risk_hold_ratio = pipe.credit.risk_hold_ratio
        self.cache_ttl = pipe.view.cache_ttl
        self.reconcile = pipe.reconcile
        self.queue: asyncio.Queue[Message] = asyncio.Queue()
        self._free_at: list[float] = [-math.inf] * (self.workers or 0)  # heap: intended free instants
        self.view: dict[str, tuple[bool, float]] = {}
        self.cache: dict[str, tuple[float, bool]] = {}
        #: account -> its view changes ``(instant, usable)`` of the last HISTORY_WALL, oldest first
        #: (accounts in the order of their last change): a read as of a past instant within that
        #: span finds every change after it here, so it never shows a later view
        self.history: OrderedDict[str, list[tuple[float, bool]]] = OrderedDict()
        self.history_span = HISTORY_WALL * clock.top
        self.latest: dict[str, Trace] = {}
        self.traces: dict[str, Trace] = {}
        #: account -> the record an external interface wrote on it with no repayment (a
        #: phantom record, docs/explanation/semantics.md 10b): never in the ledger, never spilled
        self.phantoms: dict[str, Trace] = {}
        self.unsettled: dict[str, None] = {}
        #: with ``workload.accounts`` (docs/explanation/semantics.md, 14): account -> its
        #: repayments in ledger order; a read names the repayment whose user reads, and is
        #: answered by the account's view (:func:`repaychaos.semantics.account_views`)
        self.accounts_on = scenario.workload.accounts is not None
        self.ledgers: dict[str, list[Trace]] = {}
        #: account -> (how many of its first repayments moved to SQLite, the instant they were
        #: at rest): :class:`~repaychaos.service.spill.Spiller`; ``ledgers`` holds the rest
        self.moved: dict[str, tuple[int, float]] = {}
        #: (instant from which an account may be at rest, push order, account), for the spiller
        self.rest_due: list[tuple[float, int, str]] = []
        self._rest_pushes = 0
        #: the account of a repayment moved to SQLite at rest (None: not moved); the domain
        #: sets it to the store's lookup
        self.moved_account: Callable[[str], str | None] = lambda rep_id: None
        #: account -> the last instant a read of it was answered "unusable" (any of its users)
        self._unusable_seen: dict[str, float] = {}
        #: account -> (a reconcile sweep, how many of its first repayments were acked and
        #: written or lost by then) (:meth:`_settled`)
        self._done: dict[str, tuple[float, int]] = {}
        self.inflight: dict[str, Message] = {}
        self.in_sync = 0
        self.sync_busy = 0
        self.backlog: list[tuple[float, int]] = []
        self._tasks: set[asyncio.Task] = set()
        self._started = False
        self.errors = 0
        self.writes = 0
        #: the fault whose backlog the sync queue is draining (docs/explanation/semantics.md 3a), or None
        self.degraded: str | None = None
        self.lateness = Reservoir()
        #: how late the event loop woke the write's own task (not on the timeline: see _after_sync)
        self.wake_lateness = Reservoir()
        #: the scenario's instants: due view writes, fault acts, the retry grid
        self.timeline = Timeline(clock, self._apply_due_write, self._spawn)
        #: what the faults' live rules may do here
        self.api = RuleAPI(self)
        board.on_add.append(self._fault_added)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._started = True
        if self.workers is not None:
            for _ in range(self.workers):
                self._spawn(self._worker())
        self._spawn(self._reconcile_loop())
        self._spawn(self._sample_backlog())
        for active in list(self.board.faults.values()):
            self._fault_added(active)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    def recover(self, ledger: list[LedgerRow], views: dict[str, tuple[bool, float]],
                pending: list[tuple[str, str, float, bool]]) -> int:
        """Rebuild state from the database after a restart; returns how many events are republished."""
        to_s = self.clock.to_scenario
        for row in sorted(ledger, key=lambda r: r.acked_at):
            trace = Trace(row.id, row.account, to_s(row.acked_at), row.held)
            self.traces[row.id] = trace
            self.latest[row.account] = trace
        for account, (usable, as_of) in views.items():
            self.view[account] = (usable, to_s(as_of))
        for account, trace in self.latest.items():
            if self.view.get(account, (False, 0.0))[0] != (not trace.held):
                self.unsettled[account] = None
        if self.accounts_on:
            # each account's repayments in ledger order; one whose event was done before the
            # restart is taken as written at its ack (its write's instant is not kept)
            waiting = {rep_id for rep_id, *_ in pending}
            for trace in self.traces.values():
                account_ledger = self.ledgers.setdefault(trace.account, [])
                account_ledger.append(trace)
                trace.seq = len(account_ledger)
                if trace.id not in waiting:
                    trace.written_at = trace.acked_at
        now = self.clock.now()
        for rep_id, _account, _acked, _held in pending:
            pending_trace = self.traces.get(rep_id)
            if pending_trace is not None:
                self._enqueue(Message(pending_trace, now))
        return len(pending)

    # ------------------------------------------------------------------ ack -> outbox event

    def truth(self, account: str) -> bool:
        trace = self.latest.get(account)
        return trace is not None and not trace.held

    def publish(self, row: LedgerRow) -> Trace:
        """The outbox event of a just-committed repayment (link ledger->sync judged now)."""
        t = self.clock.to_scenario(row.acked_at)
        if row.account in self.timeline.due:
            self.timeline.apply_due(row.account, t)
        trace = Trace(row.id, row.account, t, row.held)
        self.traces[row.id] = trace
        self.latest[row.account] = trace
        if self.accounts_on:
            ledger = self.ledgers.setdefault(row.account, [])
            ledger.append(trace)
            trace.seq = self.moved.get(row.account, _NONE_MOVED)[0] + len(ledger)
            self.rest_due_at(t, row.account)
        self._settle(row.account)
        if self.accounts_on and self.cache_ttl > 0:
            key = _cache_key(row.account, row.id)
            self.cache.pop(key, None)
            self.cache[key] = (t, self._shows(trace, t))
            self._expire_cache(t)
        elif self.cache_ttl > 0:
            self.cache.pop(row.account, None)  # re-inserted last: the cache stays in time order
            self.cache[row.account] = (t, self.view.get(row.account, (False, t))[0])
            self._expire_cache(t)
        msg = Message(trace, t)
        if self._link(msg, "ledger->sync", t) == "drop":
            self._finish(msg, wrote=False)
        else:
            self._enqueue(msg)
        return trace

    def _enqueue(self, msg: Message) -> None:
        self.inflight[msg.id] = msg
        msg.in_sync = True
        self.in_sync += 1
        if self.workers is None:
            self._spawn(self._carry(msg))
        else:
            self.queue.put_nowait(msg)

    # ------------------------------------------------------------------ stages

    # Scheduling uses *intended* scenario instants: a stage starts when the previous one was
    # due to end (or when its worker was due to be free), not when the event loop got round
    # to it, and the view write enters the view's timeline at its intended instant (the
    # Timeline's due writes). So the event loop's timer lateness is not added to any stage;
    # it is measured (run.overhead.timer_wake).

    async def _worker(self) -> None:
        # The pool is c servers in *intended* time: a message takes the server that is free
        # earliest (a shared heap), not the one this task ran last, so a task's early or late
        # wake never makes a message wait while another server is idle (waits are M/M/c's).
        while True:
            msg = await self.queue.get()
            free_at = heapq.heappop(self._free_at)
            end = None
            try:
                end = await self._sync(msg, max(msg.enqueued, free_at))
                if self.queue.empty():
                    self.degraded = None  # the backlog a fault left has drained (semantics 3a)
            except asyncio.CancelledError:
                raise
            except Exception:  # pragma: no cover - a bug must not kill the worker pool
                import traceback

                traceback.print_exc()
                self.errors += 1
            finally:
                heapq.heappush(self._free_at, free_at if end is None else end)

    async def _carry(self, msg: Message) -> None:
        await self._sync(msg, msg.enqueued)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # a bug in a stage must be loud, not a message silently stuck in flight
            import traceback

            traceback.print_exception(task.exception())
            self.errors += 1

    async def _sync(self, msg: Message, start: float) -> float | None:
        """Hold a worker for the service time (plus sync_delay extras) from the intended
        ``start``; the intended end, or None if the message ended here."""
        if msg.lost:
            self._leave_sync(msg)
            self._finish(msg, wrote=False)
            return None
        if self.degraded is not None and start > msg.enqueued:
            # it waited for a worker in the backlog a fault left behind (semantics 3a)
            msg.trace.touch(self.degraded, msg.enqueued, start - msg.enqueued)
        window = self.board.gate("sync", start)
        if window is not None and window[2] == "reject":
            # rejected: the message comes back at its retry and the worker is free meanwhile
            retry = release_time(start, window[1], "reject")
            since = max(msg.enqueued, window[0])
            msg.trace.touch(window[3], since, retry - since)
            self._spawn(self._requeue(msg, start))
            return None
        waited_from = start
        start, held_by = await self._wait_out("sync", msg, msg.enqueued, start)
        if held_by is not None and start > waited_from:
            # semantics 3a also for a window ended early through DELETE /chaos/faults/{id}
            self.api.blame_backlog(held_by)
        if msg.lost:
            self._leave_sync(msg)
            self._finish(msg, wrote=False)
            return None
        service = self.sync_service()
        extras: list[tuple[ActiveFault, float, int]] = []
        for active in self.board.in_force(start):
            touched = len(msg.trace.touches)
            extra = active.rule.sync_start(self.api, active, msg, start)
            if extra > 0:
                extras.append((active, extra, touched if len(msg.trace.touches) > touched else -1))
            service += extra
        end = start + service
        self.sync_busy += 1
        try:
            if extras:
                end = await self._hold(msg, end, extras)
            # The stages after sync start now, from the intended end: they do not wait for this
            # task to wake at ``end`` (up to a millisecond late, more on a busy loop), so the one
            # wake that decides the view write is their own precise one (see _after_sync).
            self._spawn(self._after_sync(msg, end))
            await self.clock.sleep_until(end)
        finally:
            self.sync_busy -= 1
            self._leave_sync(msg)
        return end

    async def _hold(self, msg: Message, end: float, extras: list[tuple[ActiveFault, float, int]]) -> float:
        """Hold ``msg`` in service until ``end`` is within one poll, and return its end: a fault
        ended meanwhile (DELETE /chaos/faults/{id}) releases what its extra still held — the
        end moves back to when it ended, and its touch shrinks by as much."""
        clock = self.clock
        poll = _POLL_WALL * clock.time_scale
        while True:
            for i, (active, extra, touch) in enumerate(extras):
                if active.ended is None or extra <= 0:
                    continue
                released = max(active.ended, end - extra)
                if released < end:
                    cut = end - released
                    if touch >= 0:
                        cause, at, added = msg.trace.touches[touch]
                        msg.trace.touches[touch] = (cause, at, added - cut)
                    extras[i] = (active, extra - cut, touch)
                    end = released
            if end - clock.now() <= poll:
                return end
            await clock.sleep_until(clock.now() + poll)

    async def _requeue(self, msg: Message, first: float) -> None:
        """Retry a rejected message every REJECT_RETRY from ``first`` until no reject window holds it."""
        clock = self.clock
        k = 1
        while True:
            retry = retry_at(first, k)
            await clock.sleep_until(retry)
            window = self.board.gate("sync", retry)
            if window is None or window[2] != "reject":
                break
            k += 1
        msg.enqueued = retry
        if self.workers is None:
            self._spawn(self._carry(msg))
        else:
            self.queue.put_nowait(msg)

    def _leave_sync(self, msg: Message) -> None:
        if msg.in_sync:
            msg.in_sync = False
            self.in_sync -= 1

    async def _after_sync(self, msg: Message, t: float) -> None:
        """Credit and the view write, from the intended sync end ``t``.

        Started when the sync stage begins, so no earlier wake's lateness carries over. Every
        rule is judged for its intended instant (the fault board answers for any instant).
        On the ordinary path the write is then *due* at its instant ``t``: it enters the view's
        timeline at ``t`` exactly — a read of the account at or after ``t`` applies it first
        (:meth:`Timeline.apply_due`), and this task applies it when its own (late) timer fires.
        So the event loop's timer lateness, which the time scale multiplies, is not added
        to time_to_usable, and every read still sees exactly what the trace says.
        Paths that wait out a view window, or lose the message at credit->view, keep the
        real instant; a message lost meanwhile (a cutover's switch) is never written."""
        clock = self.clock
        if msg.lost or self._link(msg, "sync->credit", t) == "drop":
            self._finish(msg, wrote=False)
            return
        t, _ = await self._wait_out("credit", msg, t, t)
        t += self.credit_service()
        dropped = self._link(msg, "credit->view", t) == "drop"
        if dropped or self.board.gate("view", t) is not None:
            await clock.sleep_until_precise(t)
            if dropped or msg.lost:
                self._finish(msg, wrote=False)
                return
            t, _ = await self._wait_out("view", msg, t, t)
            if msg.lost:
                self._finish(msg, wrote=False)
                return
            state = self._final_state(msg, t)
            now = clock.now()
            self._note_lateness(now - t)
            self._write(msg.trace, state, now, done_id=msg.id)
            self.inflight.pop(msg.id, None)
            return
        state = self._final_state(msg, t)
        seen = msg.trace.read_unusable_at
        if self.accounts_on:  # a read of any of the account's users: the write lands after it
            seen = max(seen, self._unusable_seen.get(msg.account, -math.inf))
        t = self.timeline.add_due(msg.account, t, msg, state, seen)
        self.wake_lateness.add(await self.timeline.write_when_due(msg.account, t))

    def _final_state(self, msg: Message, t: float) -> bool:
        """The state the view write of ``msg`` at ``t`` shows (a cutover may leave it unmapped)."""
        unmapped = False
        for active in self.board.in_force(t):
            if active.rule.write(self.api, active, msg, t):
                unmapped = True
        return written_state(not msg.held, msg.bad, unmapped)

    def _apply_due_write(self, t: float, msg: Message, state: bool) -> None:
        """A due view write enters the view at its instant ``t`` (unless its message was lost)."""
        if msg.lost:
            self._finish(msg, wrote=False)
            return
        self._note_lateness(0.0)
        self._write(msg.trace, state, t, done_id=msg.id)
        self.inflight.pop(msg.id, None)

    def _note_lateness(self, late: float) -> None:
        """How late a view write entered the view's timeline (scenario seconds): time_to_usable's
        excess over the stages. 0 on the ordinary path; the real lateness on the others."""
        self.writes += 1
        self.lateness.add(late)

    def lateness_summary(self) -> dict[str, float | int | None]:
        summary = self.lateness.summary()
        return {key: summary[key] for key in ("p50", "p99", "max")}

    async def _wait_out(self, component: str, msg: Message, since: float, t: float) -> tuple[float, str | None]:
        """Pass ``component`` at intended instant ``t``: wait while a fault holds it (a gate),
        touching the message for every window it waited in (counted from ``since``, when it
        reached the component). Returns the instant it went through and the cause of the last
        gate that held it (None: none did)."""
        clock = self.clock
        went = t
        first = None
        held_by = None
        while True:
            window = self.board.gate(component, went)
            if window is None:
                break
            _start, end, mode, held_by = window
            if first is None:
                first = went
            release = release_time(first if mode == "reject" else went, end, mode)
            poll = clock.now() + _POLL_WALL * clock.time_scale
            if release <= poll:
                await clock.sleep_until_precise(release)  # it may be the view write's instant
            else:
                await clock.sleep_until(poll)
            now = clock.now()
            if now >= release:
                went = release
            elif self.board.gate(component, now) is None:
                # the window was ended live: through now, or at the next retry when rejected
                went = release_time(first, now, mode)
                await clock.sleep_until(went)
                break
            else:
                went = max(went, now)
        # touches for every window it waited in, also one it queued in that ended before ``t``
        for active in self.board.faults.values():
            active.rule.waited(self.api, active, component, msg, since, went)
        return went, held_by

    def _link(self, msg: Message, link: str, t: float) -> str | None:
        """Every fault in force on ``link`` at ``t`` judges the message, in the order placed
        (each with its own draw): 'drop', or None (its state may have been flipped)."""
        for active in self.board.in_force(t):
            if active.rule.link(self.api, active, msg, link, t):
                return "drop"
        return None

    def _finish(self, msg: Message, wrote: bool) -> None:
        self.inflight.pop(msg.id, None)
        if not wrote:
            self.store.outbox_done(msg.id)

    def write_phantom(self, account: str, t: float) -> None:
        """A phantom record on ``account`` at ``t``: the account's truth is usable (it owes
        nothing; its record is the latest, not held), its view shows unusable from ``t`` until
        the first reconcile sweep at or after ``t`` writes the truth. An account with a
        repayment of its own is left alone (every repayment has an account of its own, 14)."""
        if account in self.traces or (account in self.latest and account not in self.phantoms):
            return
        trace = Trace(f"phantom:{account}", account, t, False)
        self.phantoms[account] = trace
        self.latest[account] = trace
        self._write(trace, False, t, done_id=None)

    # ------------------------------------------------------------------ the view

    def _write(self, trace: Trace, state: bool, t: float, done_id: str | None) -> None:
        account = trace.account
        if done_id is not None and self.accounts_on and trace.written_at is None:
            trace.written_at = t  # the repayment's own write: its account's view applies it (14)
            trace.wrong = state != (not trace.held)
        if account in self.timeline.due:
            self.timeline.apply_due(account, t, by_read=False)  # the timeline stays in time order
        before = self.view.get(account)
        self.view[account] = (state, t)
        self.store.write_view(account, state, self.clock.to_epoch(t), done_id)
        if (before[0] if before else False) != state:
            trace.changes.append((t, state))
            self._remember_change(account, t, state)
        self._settle(account)

    def _remember_change(self, account: str, t: float, state: bool) -> None:
        """Keep a view change for reads as of past instants; forget accounts whose last change
        is older than the history span (amortised: at most two per change, oldest first)."""
        history = self.history
        changes = history.get(account)
        if changes is None:
            history[account] = [(t, state)]
        else:
            changes.append((t, state))
            history.move_to_end(account)
        horizon = t - self.history_span
        for _ in range(2):
            oldest = next(iter(history.items()), None)
            if oldest is None or oldest[1][-1][0] >= horizon:
                return
            del history[oldest[0]]

    def _view_at(self, account: str, t: float) -> bool:
        """What the uncached view of ``account`` shows at ``t`` (not before the history span)."""
        changes = self.history.get(account)
        if changes is None or t >= changes[-1][0]:
            return bool(self.view.get(account, (False, t))[0])
        if t < changes[0][0]:
            return not changes[0][1]  # each entry is a change: before the first, the opposite
        return view_at(changes, t)

    def _settle(self, account: str) -> None:
        if self.view.get(account, (False, 0.0))[0] == self.truth(account):
            self.unsettled.pop(account, None)
        else:
            self.unsettled[account] = None

    def read(self, account: str, t: float, repayment: str | None = None) -> tuple[bool, float]:
        """What the app shows at ``t``: ``(usable, as_of)``, through the cache when cache_ttl > 0.

        ``t`` is now or a past instant within the history span (the view changes after it are
        kept in :attr:`history`): the answer is the view as of ``t``, never a later one. With
        accounts, the read of the user of ``repayment`` is answered by the account's view
        (:meth:`_shows`)."""
        if account in self.timeline.due:
            self.timeline.apply_due(account, t)
        if self.accounts_on and repayment is not None:
            trace = self.traces.get(repayment)
            if trace is not None and trace.account == account:
                return self._read_user(account, repayment, self._shows(trace, t), t)
            if trace is None and account in self.moved and self.moved_account(repayment) == account:
                # at rest before the oldest readable instant: shown usable for good (semantics 14)
                return self._read_user(account, repayment, True, t)
        usable = self._view_at(account, t)
        if not usable:
            trace = self.latest.get(account)
            if trace is not None and trace.read_unusable_at < t:
                trace.read_unusable_at = t
        if self.cache_ttl > 0:
            cached = self.cache.get(account)
            if cached is not None and cached[0] > t:
                return usable, t  # filled after t: the cache as of t is not known, the view is
            if cached is not None and cache_serves(t, cached[0], self.cache_ttl):
                return cached[1], cached[0]
            if account in self.view or account in self.latest:
                # an unknown account is not cached: nothing to be stale about, and caching it would
                # let reads of made-up accounts grow memory (publish caches an account at its ack)
                self.cache.pop(account, None)
                self.cache[account] = (t, usable)
                self._expire_cache(t)
        return usable, t

    def _shows(self, trace: Trace, t: float) -> bool:
        """What the account's view shows the user of ``trace`` at ``t`` (docs/explanation/
        semantics.md, 14): the rule both engines apply, over the writes made so far (a write
        after ``t`` does not change the view at ``t``). A held repayment keeps its own view."""
        next_sweep = self.reconcile.next_sweep
        if trace.held:
            usable_at, changes, _ = view_history(trace.acked_at, True, trace.written_at, trace.wrong, next_sweep)
            return view_at(changes, t) if changes is not None else t >= usable_at
        ledger = self.ledgers[trace.account]
        base = self.moved.get(trace.account, _NONE_MOVED)[0]
        since, done = self._settled(trace.account, ledger, t)
        if trace.seq <= done:
            return True  # shown at the sweep ``since``; nothing after it can put it back
        views = account_views([tr.facts() for tr in ledger[done - base:]], next_sweep, since, done)
        return view_at(views[trace.seq - 1 - done].changes, t)

    def _settled(self, account: str, ledger: list[Trace], t: float) -> tuple[float, int]:
        """``(since, done)``: the last reconcile sweep at or before ``t`` that no rule lag kept
        the account from, and how many of its first repayments were acked and written (or
        lost) by then — ``(-inf, 0)`` when there is none. The sweep sets the view to the
        ledger whatever came before it, so a read computes the view from there over the
        other repayments only (:func:`repaychaos.semantics.account_views`). Repayments moved
        to SQLite at rest (``ledger`` holds those after them) count as settled; a sweep at or
        before the instant they were at rest is none for the others, all acked after it."""
        base, rest = self.moved.get(account, _NONE_MOVED)
        every = self.reconcile.every
        if every is None or t < every:
            return -math.inf, base
        z = math.floor(t / every) * every
        while z > t:  # float rounding
            z -= every
        if z < every or z <= rest:
            return -math.inf, base
        next_sweep = self.reconcile.next_sweep
        known_z, known = self._done.get(account, (-math.inf, 0))
        # a prefix settled by an earlier sweep is settled by this one
        start = max(known if known_z <= z else 0, base)
        for tr in ledger[start - base:]:
            if (tr.kept_until is not None and tr.written_at is not None and tr.written_at <= z
                    and kept_release(tr.kept_until, next_sweep) > z):
                return -math.inf, base
        done = start
        while done - base < len(ledger):
            tr = ledger[done - base]
            written = tr.written_at
            if tr.acked_at > z or (written is None and tr.id in self.inflight) or (written is not None and written > z):
                break
            if tr.kept_until is not None and kept_release(tr.kept_until, next_sweep) > z:
                break
            done += 1
        if z >= known_z:
            self._done[account] = (z, done)
        return z, done

    def _read_user(self, account: str, repayment: str, usable: bool, t: float) -> tuple[bool, float]:
        """The answer to the user of ``repayment`` on a shared account whose view shows it
        ``usable`` at ``t``, through the app's cache of what that user saw."""
        if not usable and self._unusable_seen.get(account, -math.inf) < t:
            self._unusable_seen[account] = t
        if self.cache_ttl > 0:
            key = _cache_key(account, repayment)
            cached = self.cache.get(key)
            if cached is not None and cached[0] > t:
                return usable, t
            if cached is not None and cache_serves(t, cached[0], self.cache_ttl):
                return cached[1], cached[0]
            self.cache.pop(key, None)
            self.cache[key] = (t, usable)
            self._expire_cache(t)
        return usable, t

    def account_traces(self) -> dict[str, tuple[list[list[Any]], list[list[Any]], int]]:
        """With accounts: every repayment in memory, its view changes as its user saw them,
        its touches (a regression's until repaired) and how many regressions its write made,
        by id (those moved to SQLite at rest are there, final)."""
        out: dict[str, tuple[list[list[Any]], list[list[Any]], int]] = {}
        for account, traces in self.ledgers.items():
            for tr, view in zip(traces, self.views_of(account, traces)):
                out[tr.id] = self.account_trace(tr, view)
        return out

    def views_of(self, account: str, traces: list[Trace]) -> list[AccountView]:
        """The account's view of ``traces``, its repayments after those moved to SQLite."""
        base = self.moved.get(account, _NONE_MOVED)[0]
        return account_views([tr.facts() for tr in traces], self.reconcile.next_sweep, -math.inf, base)

    def account_trace(self, tr: Trace, view: AccountView) -> tuple[list[list[Any]], list[list[Any]], int]:
        """``(changes, touches, regressed)`` of a repayment on a shared account, as
        ``/chaos/trace`` shows them, from its account's ``view``."""
        next_sweep = self.reconcile.next_sweep
        if tr.held:
            usable_at, held_changes, _ = view_history(tr.acked_at, True, tr.written_at, tr.wrong, next_sweep)
            changes = held_changes if held_changes is not None else (
                [(usable_at, True)] if usable_at != math.inf else [])
            touches = [[c, a, d] for c, a, d in tr.resolved_touches()]
        else:
            changes = view.changes
            repaired = repaired_at(True, changes)
            touches = [list(x) for x in tr.touches]
            for cause, at in list(tr.pending) + view.regressions:
                added = until_repair(at, repaired)
                if added is not None:
                    touches.append([cause, at, added])
        return ([[a, u] for a, u in changes], [[c, a, None if d == math.inf else d] for c, a, d in touches],
                view.regressed)

    def rest_due_at(self, t: float, account: str) -> None:
        """The account's repayments may be at rest from ``t`` on (for the spiller)."""
        heapq.heappush(self.rest_due, (t, self._rest_pushes, account))
        self._rest_pushes += 1

    def _expire_cache(self, t: float) -> None:
        """Drop entries older than cache_ttl (equivalent to absent): the cache holds one TTL of reads."""
        cache, ttl = self.cache, self.cache_ttl
        for _ in range(2):  # amortised: at most two per insertion, oldest first
            oldest = next(iter(cache.items()), None)
            if oldest is None or t - oldest[1][0] < ttl:
                return
            del cache[oldest[0]]

    async def _reconcile_loop(self) -> None:
        every = self.reconcile.every
        if every is None:
            return
        z = max(every, self.reconcile.next_sweep(max(self.clock.now(), 0.0)))
        while True:
            await self.clock.sleep_until(z)
            now = self.clock.now()
            for account in list(self.unsettled):
                trace = self.latest.get(account)
                if trace is not None and trace.acked_at <= z and not self.board.keeps(account, z):
                    self._write(trace, not trace.held, now, done_id=None)
            z += every

    # ------------------------------------------------------------------ faults with a moment of their own

    def _fault_added(self, active: ActiveFault) -> None:
        if self._started:
            active.rule.placed(self.api, active)

    def _at(self, t: float, act: Callable[[float], None]) -> None:
        """Call ``act(t)`` at scenario instant ``t`` (:meth:`Timeline.at`)."""
        self.timeline.at(t, act)

    # ------------------------------------------------------------------ observation

    async def _sample_backlog(self) -> None:
        from repaychaos.core.collector import SERIES_BINS

        step = self.scenario.duration / SERIES_BINS / 2
        t = max(0.0, self.clock.now())
        while True:
            await self.clock.sleep_until(t)
            if len(self.backlog) < 200_000:
                self.backlog.append((self.clock.now(), self.in_sync))
            t += step

    def stale_counts(self) -> tuple[int, int]:
        """Accounts whose view shows unusable while truth is usable, and the reverse."""
        stale = sum(1 for a in self.unsettled if self.truth(a))
        return stale, len(self.unsettled) - stale


#: an account none of whose repayments moved to SQLite
_NONE_MOVED = (0, -math.inf)


def _cache_key(account: str, repayment: str) -> str:
    """The app's cache of what one user saw of a shared account (semantics 9, 14)."""
    return f"{account}\n{repayment}"
