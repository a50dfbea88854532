"""The pipeline of docs/explanation/semantics.md as a SimPy model: one replication.

Where work contends (the sync worker pool) the model is event-driven: a finite FIFO
pool of workers, each completion a SimPy timeout whose callback pulls the next message.
Where nothing contends (channel, credit, view write, reconcile, user reads) it is
arithmetic on the message's own times, so a repayment costs about two events: its ack
and its sync completion. Faults reach the stages only through the injectors' hook
:class:`~repaychaos.sim.schedule.Schedules`, which are skipped entirely where no fault applies.

Each repayment's reads are computed and handed to the collector as soon as its view
history is known, so memory is bounded by the messages in flight, not the run length;
with ``workload.accounts`` an account's repayments are kept until the account is at rest
and observed together then (:mod:`repaychaos.sim.accounts`).
"""

from __future__ import annotations

import math
from collections import deque
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any, Callable, Sequence

import simpy
from simpy.events import Timeout

from repaychaos.core.collector import MetricsCollector
from repaychaos.core.records import Read
from repaychaos.semantics import arrival_times, pay_again_at
from repaychaos.sim.injectors import REJECT_RETRY, build_injectors
from repaychaos.sim.message import N_UNIFORMS, U_HOLD, Msg
from repaychaos.sim.schedule import Schedules
from repaychaos.core.streams import streams
from repaychaos.sim.stages import Observer, cross, downstream, past, start_service
from repaychaos.sim.pay_again import second_msg, second_payment, stale_reads_before
from repaychaos.sim.accounts import AccountBook

if TYPE_CHECKING:
    from repaychaos.scenarios import Scenario

__all__ = ["Model", "InjectorAPI", "arrival_times", "BACKLOG_SAMPLES_PER_BIN"]

#: Backlog samples per series bin of the collector.
BACKLOG_SAMPLES_PER_BIN = 4

_INF = math.inf


class InjectorAPI:
    """All a fault injector may do to the model: no SimPy, no queue object, no pool counters.

    Injectors act on messages passing their hooks (:class:`~repaychaos.scenarios.faults.hooks.ModelInjector`)
    and, for faults with a moment of their own, through these few verbs.
    """

    __slots__ = ("_model", "horizon", "rng", "risk_hold_ratio", "next_sweep", "cache_ttl", "_claimed")

    def __init__(self, model: "Model"):
        self._model = model
        #: the run's horizon (scenario seconds) for placing windows
        self.horizon = model.horizon
        #: the fault-only random stream
        self.rng = model.faults_rng
        #: the scenario's risk hold ratio (a repayment is held when its hold uniform is below it)
        self.risk_hold_ratio = model.scenario.pipeline.credit.risk_hold_ratio
        #: the reconcile schedule (the first sweep at or after an instant) and the app's cache
        self.next_sweep: Callable[[float], float] = model.scenario.pipeline.reconcile.next_sweep
        self.cache_ttl = model.scenario.pipeline.view.cache_ttl
        self._claimed: set[str] = set()

    def at(self, t: float, fn: Callable[[Any], None], arg: Any) -> None:
        """Call ``fn(arg)`` at instant ``t``."""
        self._model.at(t, fn, arg)

    def defer(self, msg: Msg, retry_at: float) -> None:
        """A rejected sync message comes back to the queue at ``retry_at``; its worker is free."""
        self._model.defer(msg, retry_at)

    def waiting(self) -> tuple[Msg, ...]:
        """The sync messages waiting for a worker now, in FIFO order."""
        return tuple(self._model.queue)

    def lose_waiting(self, lost: Callable[[Msg], bool], at: float) -> None:
        """Take every waiting message for which ``lost(msg)`` out of the queue; it is never written."""
        model = self._model
        kept = []
        for msg in model.queue:
            if lost(msg):
                for hook in model.on_leave_queue:
                    hook(msg, at)
                model.finish(msg, None)
            else:
                kept.append(msg)
        model.queue.clear()
        model.queue.extend(kept)

    def on_leave_queue(self, hook: Callable[[Msg, float], None]) -> None:
        """Call ``hook(msg, t)`` when a message leaves the queue without being served."""
        self._model.on_leave_queue.append(hook)

    def blame_backlog(self, cause: str) -> None:
        """The messages queued now wait behind a backlog this fault left (SEMANTICS 3a)."""
        if self._model.queue:
            self._model.degraded = cause

    def slows_pool(self, cause: str) -> None:
        """This fault slowed a worker: the queue that builds behind it is blamed on it (SEMANTICS 3a)."""
        self._model.degraded = cause

    def claim_link_draw(self, link: str) -> bool:
        """True for the first claimant of the pre-drawn uniform ``link`` (the first interface
        bug on a link, the first rule lag): it may use the repayment's uniform; every later
        one must draw its own from :attr:`rng`."""
        first = link not in self._claimed
        self._claimed.add(link)
        return first

    def observe_holder(self, written_at: float, repaired_at: float, reads: Sequence[Read], cause: str) -> None:
        """An account a fault wrote on with no repayment of its own, and its holder's looks."""
        self._model.collector.observe_holder(written_at, repaired_at, reads, cause)


class Model:
    """One replication of a scenario; :meth:`run` feeds ``collector``."""

    #: the engine's name (``repaychaos sim --engine``)
    ENGINE = "events"

    def __init__(self, scenario: Scenario, seed: int, index: int, collector: MetricsCollector,
                 progress: Callable[[float], None] | None = None):
        self.scenario = scenario
        self.env = simpy.Environment()
        self.collector = collector
        self.progress = progress
        self._observer = Observer(scenario, collector)
        self.horizon = scenario.duration
        self.duration = scenario.duration
        self.warmup = scenario.warmup
        rng = streams(seed, index)
        self.faults_rng = rng["faults"]
        pipe = scenario.pipeline
        self._lat = pipe.channel.latency.sampler(rng["service"])
        self._svc = pipe.sync.service.sampler(rng["service"])
        self._csvc = pipe.credit.service.sampler(rng["service"])
        self._first = scenario.workload.check.first_after.sampler(rng["users"])
        self._u = rng["decisions"].random
        self._exp1 = rng["arrivals"].expovariate
        self._hold = pipe.credit.risk_hold_ratio
        self.next_sweep = pipe.reconcile.next_sweep
        check = scenario.workload.check
        self._every = check.every
        self._max_checks = check.max_checks
        self._ttl = pipe.view.cache_ttl
        self.workers = _INF if pipe.sync.workers is None else pipe.sync.workers

        # sync pool state
        self.queue: deque[Msg] = deque()
        self.busy = 0          # workers holding a message (in service or paused)
        self.deferred = 0      # rejected messages waiting for their retry
        self.parked: list[Msg] = []  # held by a worker in a window that never ends
        #: the sync fault whose backlog queued messages are waiting behind (SEMANTICS 3a);
        #: set by a slowed message starting or a pause ending, cleared when the queue empties
        self.degraded: str | None = None
        #: called as ``hook(msg, t)`` when a message leaves the queue without being served
        self.on_leave_queue: list[Callable[[Msg, float], None]] = []

        # faults
        self.injectors = build_injectors(scenario, InjectorAPI(self))
        self._h = h = Schedules(self.injectors)
        self._h_ledger = h.gate_ledger
        self._h_ls = h.link_ledger_sync
        #: a sync gate or start acts somewhere in the run
        self._taking = h.gate_sync is not None or h.sync_start is not None

        # users who pay again (SEMANTICS 10a): each user's choice and second payment draw
        # from a stream of that user's own (repaychaos.sim.pay_again)
        self._pay = check.pay_again
        self._seed, self._index = seed, index
        # accounts (SEMANTICS 14): an account's repayments are observed together once at rest
        accounts = scenario.workload.accounts
        self.book = (None if accounts is None
                     else AccountBook(self._observer, seed, index, accounts, scenario.workload.account_skew))
        #: with accounts, the (ack, id) of every repayment created and not yet finished (a
        #: finished one is dropped when it reaches the top, ids in ``_closed``)
        self._open: list[tuple[float, int]] = []
        self._closed: set[int] = set()

        self.simulated = 0
        self._heap: list[tuple[float, int, Msg]] = []
        self._arrivals = arrival_times(scenario.workload.arrivals.steps, self.duration, lambda: self._exp1(1.0))
        self._next_arr = next(self._arrivals, _INF)

    # ------------------------------------------------------------------ helpers

    def at(self, t: float, fn: Callable[[Any], None], arg: Any) -> None:
        """Call ``fn(arg)`` at instant ``t`` (for injectors, through :class:`InjectorAPI`)."""
        ev = Timeout(self.env, max(0.0, t - self.env.now), arg)
        ev.callbacks.append(lambda e: fn(e.value))

    _past = staticmethod(past)

    # ------------------------------------------------------------------ arrivals and acks

    def _new(self, arr: float) -> Msg | None:
        """A repayment arriving at ``arr``: its draws, then channel and ledger -> ack time."""
        t0 = arr + self._lat()
        u = self._u
        us = (u(), u(), u(), u(), u(), u())
        msg = Msg(self.simulated, self._svc(), self._csvc(), self._first(), us, us[U_HOLD] < self._hold)
        self.simulated += 1
        if self._h_ledger is not None:
            t0 = self._past(self._h_ledger, "ledger", msg, t0)
            if t0 == _INF:
                return None  # never committed, never acked: not a repayment the user was told of
        msg.ack = t0
        if self.book is not None:
            heappush(self._open, (t0, msg.id))
        if self._pay is not None:
            at = pay_again_at(t0 + msg.first, self._every, self._pay.after_stale_reads)
            self.at(at, self._decide, msg)
        return msg

    def _refill(self) -> None:
        # Future arrivals ack no earlier than they arrive, so once the next arrival is
        # later than the earliest pending ack, that ack is safe to process.
        heap = self._heap
        na = self._next_arr
        while na != _INF and (not heap or na <= heap[0][0]):
            msg = self._new(na)
            if msg is not None:
                heappush(heap, (msg.ack, msg.id, msg))
            na = next(self._arrivals, _INF)
        self._next_arr = na

    def _tick(self, _ev: Any = None) -> None:
        heap = self._heap
        now = self.env.now
        while heap and heap[0][0] <= now:
            self._ack(heappop(heap)[2])
            self._refill()
        if heap:
            Timeout(self.env, heap[0][0] - now).callbacks.append(self._tick)

    def _ack(self, msg: Msg) -> None:
        if self._h_ls is not None:
            cross(self._h_ls, "ledger->sync", msg, msg.ack)
            if msg.dropped:
                self.finish(msg, None)
                return
        msg.enq = self.env.now
        if self.busy < self.workers:
            self._start(msg)
        else:
            self.queue.append(msg)

    # ------------------------------------------------------------------ users who pay again

    def _decide(self, msg: Msg) -> None:
        """At the read after which the user may pay again (SEMANTICS 10a): were the reads so
        far all stale? If so, with the scenario's probability, the user pays a second time.

        Until its view write a repayment's view is what the sweeps make it, so the history
        with no write is the true one up to now (the write comes later)."""
        assert self._pay is not None
        write = msg.write if msg.finished else None
        stale = stale_reads_before(msg.ack, msg.held, write, msg.bad if msg.finished else False, msg.first,
                                   self._every, self._pay.after_stale_reads, self._ttl, self.next_sweep)
        draws = second_payment(self.scenario, self._seed, self._index, msg.id, msg.ack, msg.first, stale)
        if draws is None:
            return
        second = second_msg(msg.id, draws, self._hold)
        t0 = draws.arrival + draws.latency
        if self._h_ledger is not None:
            t0 = self._past(self._h_ledger, "ledger", second, t0)
            if t0 == _INF:
                return  # never committed: the money was not taken twice
        second.ack = t0
        self.collector.observe_double(msg.ack)
        self.at(t0, self._ack, second)

    # ------------------------------------------------------------------ sync pool

    def _start(self, msg: Msg) -> None:
        now = self.env.now
        t = now
        if self.degraded is not None and now > msg.enq:
            msg.touch(self.degraded, msg.enq, now - msg.enq)
        if self._taking:
            passed = start_service(self._h, msg, t)
            if passed is None:
                return  # deferred by a rejecting window; the worker stays free
            t = passed
        done = t + msg.svc + msg.extra
        self.busy += 1
        if done == _INF:
            self.parked.append(msg)
            return
        ev = Timeout(self.env, done - now, msg)
        ev.callbacks.append(self._done)

    def _done(self, ev: Timeout) -> None:
        msg = ev._value
        self.busy -= 1
        queue = self.queue
        while queue and self.busy < self.workers:
            self._start(queue.popleft())
        if not queue:
            self.degraded = None
        self._downstream(msg, self.env.now)

    def defer(self, msg: Msg, retry_at: float) -> None:
        """A rejected message comes back to the queue at ``retry_at`` (SEMANTICS 3)."""
        self.deferred += 1  # an endless window keeps it counted in the backlog for good
        if retry_at == _INF:
            self.parked.append(msg)
            return
        ev = Timeout(self.env, retry_at - self.env.now, msg)
        ev.callbacks.append(self._retry)

    def _retry(self, ev: Timeout) -> None:
        self.deferred -= 1
        msg = ev._value
        msg.enq = self.env.now
        if self.busy < self.workers and not self.queue:
            self._start(msg)
        else:
            self.queue.append(msg)

    # ------------------------------------------------------------------ credit, view

    def _downstream(self, msg: Msg, t: float) -> None:
        self.finish(msg, downstream(self._h, msg, t))

    # ------------------------------------------------------------------ the user

    def finish(self, msg: Msg, write: float | None) -> None:
        """The repayment's view history is known: compute its reads and observe it.

        A second payment has no reads of its own (SEMANTICS 10a): it is not observed."""
        if self._pay is not None:
            msg.finished = True
            msg.write = write
        if self.book is not None and not msg.second:
            self.book.add(msg, write)
            self._closed.add(msg.id)
            open_, closed = self._open, self._closed
            while open_ and open_[0][1] in closed:
                closed.discard(heappop(open_)[1])
            # a repayment not created yet is acked no earlier than the next arrival
            self.book.settle(min(open_[0][0] if open_ else _INF, self._next_arr))
            return
        self._observer.finish(msg, write)

    # ------------------------------------------------------------------ run

    def _sampler(self):
        """Backlog samples (waiting or held by a worker) a few times per series bin."""
        env = self.env
        step = self.collector.state.bin_width / BACKLOG_SAMPLES_PER_BIN
        observe = self.collector.observe_backlog
        progress = self.progress
        k = 0
        while True:
            t = k * step
            if t >= self.duration:
                break
            if t > env.now:
                yield env.timeout(t - env.now)
            observe(t, len(self.queue) + self.busy + self.deferred)
            if progress is not None:
                progress(t)
            k += 1

    def run(self) -> None:
        """Simulate until every repayment has been written, lost or parked for good."""
        for inj in self.injectors:
            inj.placed()
        self.env.process(self._sampler())
        self._refill()
        if self._heap:
            Timeout(self.env, self._heap[0][0]).callbacks.append(self._tick)
        self.env.run()
        # Never written: still queued behind workers parked in an endless window.
        for msg in list(self.queue) + self.parked:
            self.finish(msg, None)
        self.queue.clear()
        self.parked.clear()
        if self.book is not None:
            self.book.observe()
        if self.progress is not None:
            self.progress(self.duration)
