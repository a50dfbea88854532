"""The model's fast engine: the same pipeline as :mod:`repaychaos.sim.event_engine`, in bulk.

Most of a run is stretches where nothing happens but arrivals, a FIFO pool of sync
workers, fixed-delay stages and reads. This engine takes the repayments a chunk at a
time and computes those stretches with arrays; only the pool, the one truly sequential
part, is a plain loop:

1. **Draws.** Each random stream is drawn in blocks with numpy, bit for bit what the
   event engine's per-repayment draws give (:mod:`repaychaos.sim.draws`), so both
   engines see the same arrivals, service times, users and decision uniforms.
2. **Acks.** Arrival + channel latency; the few repayments that meet a ledger window go
   through the ledger's gate one by one. Repayments are then taken in ack order
   (ties by arrival), as the event engine's calendar takes them.
3. **The pool.** A loop over the repayments in ack order keeps the workers' free times
   in a heap (the Kiefer–Wolfowitz recursion: a repayment is taken at
   ``max(ack, earliest free time)`` and holds that worker for its service). Outside the
   instants that matter it does nothing else. A repayment whose take meets a sync fault
   window, a maintenance window's end while it waits, a cutover's switch, or a pool
   degraded by a fault (docs/explanation/semantics.md, 3a) is passed through the same
   fault injectors, one by one, with the same rules.
4. **Credit, view, reads, metrics.** For repayments no fault touched, the view write, the
   first reconcile sweep, the reads and every collector update are array operations
   (:mod:`repaychaos.sim.bulk_observe`); the rest go through the same per-message code
   as the event engine (:mod:`repaychaos.sim.stages`). Repayments are observed in the
   order the event engine observes them (by sync completion), so even the order of
   float additions is the same and the result is byte-identical.

Memory is bounded by the chunk and the repayments in flight. A scenario using a fault
behaviour this engine does not compute (:func:`unsupported`) runs on the event engine.

**Users who pay again** (docs/explanation/semantics.md, 10a) feed back: a second payment
joins the sync queue at an instant its user chose after reading stale views, which the
queue itself made stale. This engine takes them as known arrivals and solves for them:
a pass with no second payments gives the users' choices; a pass with those second
payments gives new choices; and so on until a pass's choices are the ones it was given.
That fixed point is the event engine's history: a choice depends only on what happened
before it, so each pass gets at least every choice up to the first one the previous pass
got wrong, and a later one too. Every pass but the last feeds a scratch collector and
keeps its users' choices, made batch by batch: memory grows with the second payments
(1,241 per 10k repayments in the bundled impatient-payers), not with every repayment.
"""

from __future__ import annotations

import math
from heapq import heapreplace
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import numpy as np

from repaychaos.scenarios.faults import CAUSES, REGISTRY
from repaychaos.core.records import Read, Repayment, Touch
from repaychaos.scenarios.faults.hooks import GATE, HOOKS, LINK, SETTLE, SYNC_START, U_CUT_LOSS, U_HOLD, U_LINK, WRITE
from repaychaos.sim.accounts import AccountBook
from repaychaos.sim.bulk_observe import observe_plain
from repaychaos.sim.draws import BulkSampler, BulkStream, draw_rows
from repaychaos.sim.injectors import build_injectors
from repaychaos.sim.message import N_UNIFORMS, Msg
from repaychaos.sim.pay_again import SecondPayment, second_msg, second_payment, stale_reads_before
from repaychaos.sim.schedule import Schedules
from repaychaos.sim.stages import Observer, cross, downstream, past, start_service
from repaychaos.sim.users import reads_simple
from repaychaos.core.streams import streams
from repaychaos.semantics import arrival_times

from repaychaos.core.collector import MetricsCollector

if TYPE_CHECKING:
    from repaychaos.scenarios import Scenario

__all__ = ["FastModel", "unsupported", "CHUNK", "MAX_PASSES"]

#: Passes after which a run with users who pay again gives up looking for its fixed point
#: (each pass settles at least one more choice; a run needing more is refused, loudly).
MAX_PASSES = 1000

#: Repayments drawn and computed per chunk (bounds memory; large enough to amortise numpy).
CHUNK = 1 << 14

#: Backlog samples per series bin (as the event engine).
BACKLOG_SAMPLES_PER_BIN = 4

_INF = math.inf
_CAUSE_INDEX = {c: i for i, c in enumerate(CAUSES)}
#: Runs of plain repayments shorter than this are observed one by one (array set-up costs more).
_SCALAR_RUN = 48
_END_PARKED = 1 << 50  # end-of-run order: still queued first, then held by a worker for good


def unsupported(scenario: Scenario) -> str | None:
    """Why the fast engine would not compute ``scenario`` exactly (None: it does)."""
    links: set[str] = set()
    others: dict[str, list[Any]] = {}
    for fault in scenario.faults:
        kind = fault.type
        if kind not in ("sync_delay", "maintenance", "interface_bug", "cutover"):
            others.setdefault(kind, []).append(fault)
            continue
        if kind == "maintenance" and fault.component == "sync" and fault.mode == "reject":
            return "a sync maintenance window in reject mode (retried messages re-enter the queue)"
        if kind == "interface_bug":
            if fault.link in links:
                return f"two interface bugs on {fault.link} (the second draws from the fault stream)"
            links.add(fault.link)
    for kind, faults in others.items():  # a type of its own says whether this engine computes it
        why = REGISTRY[kind].model.fast_engine_refuses(faults)
        if why is not None:
            return why
    return None


class _FastAPI:
    """:class:`~repaychaos.scenarios.faults.hooks.ModelAPI` for the fast engine.

    The instants injectors schedule for themselves (a sync window's end, a cutover's
    switch) are computed by the pool loop from the windows, so :meth:`at` records nothing.
    """

    def __init__(self, model: "FastModel"):
        self._model = model
        self.horizon = model.horizon
        self.rng = model.faults_rng
        self.risk_hold_ratio = model.scenario.pipeline.credit.risk_hold_ratio
        self.next_sweep: Callable[[float], float] = model.scenario.pipeline.reconcile.next_sweep
        self.cache_ttl = model.scenario.pipeline.view.cache_ttl
        self._claimed: set[str] = set()

    def at(self, t: float, fn: Callable[[Any], None], arg: Any) -> None:
        pass

    def defer(self, msg: Any, retry_at: float) -> None:  # pragma: no cover - refused by unsupported()
        raise RuntimeError("the fast engine does not defer sync messages")

    def waiting(self) -> tuple[Any, ...]:  # pragma: no cover - only from at() callbacks
        raise RuntimeError("the fast engine has no queue object")

    def lose_waiting(self, lost: Callable[[Any], bool], at: float) -> None:  # pragma: no cover
        raise RuntimeError("the fast engine has no queue object")

    def on_leave_queue(self, hook: Callable[[Any, float], None]) -> None:
        self._model._leave_hooks.append(hook)

    def blame_backlog(self, cause: str) -> None:  # pragma: no cover - only from at() callbacks
        raise RuntimeError("the fast engine blames backlogs in its pool loop")

    def slows_pool(self, cause: str) -> None:
        m = self._model
        m._deg, m._deg_at = cause, m._now

    def claim_link_draw(self, link: str) -> bool:
        first = link not in self._claimed
        self._claimed.add(link)
        return first

    def observe_holder(self, written_at: float, repaired_at: float, reads: Sequence[Read], cause: str) -> None:
        self._model.collector.observe_holder(written_at, repaired_at, reads, cause)


def _active(windows: list[tuple[float, float]], t: np.ndarray) -> np.ndarray:
    out = np.zeros(len(t), dtype=bool)
    for s, e in windows:
        out |= (t >= s) & (t < e)
    return out


class FastModel:
    """One replication of a scenario, computed in bulk; :meth:`run` feeds ``collector``.

    Same constructor, attributes (``simulated``) and results as
    :class:`repaychaos.sim.event_engine.Model`.
    """

    #: the engine's name (``repaychaos sim --engine``)
    ENGINE = "fast"

    def __init__(self, scenario: Scenario, seed: int, index: int, collector: MetricsCollector,
                 progress: Callable[[float], None] | None = None, chunk: int = CHUNK, bulk: bool = True,
                 seconds: dict[int, tuple[float, SecondPayment]] | None = None):
        why = unsupported(scenario)
        if why is not None:
            raise ValueError(f"the fast engine does not compute {why}; use the event engine")
        self.scenario = scenario
        self.collector = collector
        self.progress = progress
        self.chunk = int(chunk)
        #: False: every repayment goes through the per-message code and ``collector.observe``
        #: (for the differential test, which compares what each engine observes)
        self.bulk = bulk
        #: the instant the repayment being observed is observed at (its sync completion, mostly)
        self.observing_at = 0.0
        self.horizon = self.duration = scenario.duration
        self.warmup = scenario.warmup
        self.seed, self.index = seed, index
        # users who pay again: the second payments this pass is given (first repayment id ->
        # (its ack, the second payment's draws)), and those its users chose, batch by batch
        self._pay = scenario.workload.check.pay_again
        self._given = seconds
        self._chosen: dict[int, tuple[float, SecondPayment]] = {}
        rng = streams(seed, index)
        self.faults_rng = rng["faults"]
        pipe = scenario.pipeline
        self._service = BulkStream(rng["service"])
        self._service_samplers = [BulkSampler(pipe.channel.latency), BulkSampler(pipe.sync.service),
                                  BulkSampler(pipe.credit.service)]
        self._users = BulkStream(rng["users"])
        self._first_sampler = [BulkSampler(scenario.workload.check.first_after)]
        self._decisions = BulkStream(rng["decisions"])
        self._arrivals = BulkStream(rng["arrivals"])
        self._hold = pipe.credit.risk_hold_ratio
        self._every = scenario.workload.check.every
        self._max_checks = scenario.workload.check.max_checks
        self._ttl = pipe.view.cache_ttl
        self._sweep_every = pipe.reconcile.every
        self.workers = pipe.sync.workers
        self._observer = Observer(scenario, collector)
        # accounts (semantics 14): every repayment through the per-message code, its account's
        # repayments observed together once at rest, as the event engine does
        accounts = scenario.workload.accounts
        self.book = (None if accounts is None
                     else AccountBook(self._observer, seed, index, accounts, scenario.workload.account_skew))

        self._leave_hooks: list[Callable[[Any, float], None]] = []
        self._deg: str | None = None
        self._deg_at = -_INF
        self._now = 0.0
        self.injectors = build_injectors(scenario, _FastAPI(self))
        self._h = h = Schedules(self.injectors)
        self._windows = {hook: h.windows(hook) for hook in HOOKS}
        # the cutover switches that lose queued messages, and the sync windows whose end a
        # waiting message sees (semantics 3, 3a, 8)
        self._switches = sorted((inj.fault.at, inj.fault.inflight_loss_ratio) for inj in self.injectors
                                if inj.fault.type == "cutover" and inj.fault.inflight_loss_ratio
                                and inj.fault.at < self.horizon)
        self._sync_ends = sorted({(e, s) for inj in self.injectors
                                  if inj.fault.type == "maintenance" and inj.fault.component == "sync"
                                  for s, e in inj.windows if e != _INF})
        edges = {x for hook in (GATE["sync"], SYNC_START) for s, e in self._windows[hook]
                 for x in (s, e) if x != _INF}
        edges |= {e for e, _ in self._sync_ends} | {s for s, _ in self._switches}
        self._edges = sorted(edges) + [_INF]
        self._fired: set[float] = set()
        final_injs = [inj for _, _, inj in h.entries[SETTLE]]
        self._final_only_before = (max(inj.fault.at for inj in final_injs)
                                   if final_injs and all(inj.fault.type == "cutover" for inj in final_injs)
                                   else _INF)

        # a link whose every window belongs to one bug: the share of messages it acts on
        self._link_share: dict[str, float] = {}
        for link in U_LINK:
            injs = {id(inj): inj for _, _, inj in h.entries[LINK[link]]}
            if len(injs) == 1:
                (inj,) = injs.values()
                if inj.fault.type == "interface_bug":
                    self._link_share[link] = inj.fault.drop_ratio + inj.fault.corrupt_ratio

        self.simulated = 0
        self._seq = 0
        self._heap: list[float] | None = None if self.workers is None else [-_INF] * int(self.workers)
        self._prev_take = -_INF
        self._prev_pulled = False
        self._ei = 0
        self._next_edge = -_INF
        self._seg_active = False
        # observations waiting for their turn, and the pool's occupants for backlog samples
        self._buf_bulk: dict[str, np.ndarray] = {}
        self._buf_msgs: list[tuple[float, int, Msg, float | None]] = []
        self._bl_enq = np.empty(0)
        self._bl_leave = np.empty(0)
        self._sample_k = 0
        self._step = collector.state.bin_width / BACKLOG_SAMPLES_PER_BIN

    # ------------------------------------------------------------------ arrivals and acks

    def _arrival_chunks(self) -> Iterator[np.ndarray]:
        steps = self.scenario.workload.arrivals.steps
        duration = self.duration
        exp1 = [BulkSampler(_UNIT_EXP)]
        n = self.chunk
        if len(steps) == 1 and steps[0][0] <= 0.0:
            rate = steps[0][1]
            if rate <= 0:
                return
            t = 0.0
            while True:
                gaps = draw_rows(self._arrivals, exp1, n)[0] / rate
                times = np.cumsum(np.concatenate(([t], gaps)))[1:]
                cut = int(np.searchsorted(times, duration, side="left"))
                if cut < n:
                    if cut:
                        yield times[:cut]
                    return
                t = float(times[-1])
                yield times

        def draws() -> Iterator[float]:
            while True:
                yield from draw_rows(self._arrivals, exp1, 4096)[0].tolist()

        gen = arrival_times(steps, duration, draws().__next__)
        while True:
            times = np.asarray([x for _, x in zip(range(n), gen)], dtype=np.float64)
            if len(times):
                yield times
            if len(times) < n:
                return

    def _new(self, arr: np.ndarray) -> dict[str, Any]:
        """A chunk of arrivals: their draws and ack instants (the ledger's fault point passed)."""
        n = len(arr)
        lat, svc, csvc = draw_rows(self._service, self._service_samplers, n)
        first = draw_rows(self._users, self._first_sampler, n)[0]
        us = self._decisions.take(N_UNIFORMS * n).reshape(n, N_UNIFORMS).copy()
        ids = np.arange(self.simulated, self.simulated + n, dtype=np.int64)
        self.simulated += n
        ack = arr + lat
        held = us[:, U_HOLD] < self._hold
        objs: dict[int, Msg] = {}
        ledger = self._h.gate_ledger
        if ledger is not None:
            for i in np.flatnonzero(_active(self._windows[GATE["ledger"]], ack)).tolist():
                msg = self._msg(int(ids[i]), svc[i], csvc[i], first[i], us[i], held[i])
                t = past(ledger, "ledger", msg, float(ack[i]))
                ack[i] = t
                msg.ack = t
                objs[int(ids[i])] = msg
            keep = ack != _INF  # never committed: not a repayment anyone was told of
            if not keep.all():
                ids, ack, svc, csvc, first, us, held = (a[keep] for a in (ids, ack, svc, csvc, first, us, held))
        return {"id": ids, "ack": ack, "svc": svc, "csvc": csvc, "first": first, "us": us, "held": held,
                "objs": objs}

    @staticmethod
    def _msg(id_: int, svc: float, csvc: float, first: float, us: np.ndarray, held: bool) -> Msg:
        return Msg(id_, float(svc), float(csvc), float(first), tuple(us.tolist()), bool(held))

    # ------------------------------------------------------------------ run

    def run(self) -> None:
        """Simulate until every repayment has been written, lost or parked for good."""
        if self._pay is None or self._given is not None:
            self._run_pass()
            return
        given: dict[int, tuple[float, SecondPayment]] = {}
        for _ in range(MAX_PASSES):
            trial = FastModel(self.scenario, self.seed, self.index, MetricsCollector.for_scenario(self.scenario),
                              chunk=self.chunk, bulk=self.bulk, seconds=given)
            trial._run_pass()
            chosen = trial.chosen()
            if chosen.keys() == given.keys():
                break
            given = chosen
        else:  # pragma: no cover - each pass settles at least one more choice
            raise RuntimeError(f"users who pay again: no fixed point after {MAX_PASSES} passes")
        self._given = given
        self._run_pass()
        for first_ack, _ in self._committed:
            self.collector.observe_double(first_ack)

    def chosen(self) -> dict[int, tuple[float, SecondPayment]]:
        """The second payments the users of this pass chose, from what their views did."""
        return self._chosen

    def _choose(self, ids: np.ndarray, ack: np.ndarray, held: np.ndarray, first: np.ndarray, write: np.ndarray,
                bad: np.ndarray) -> None:
        """The choices of one batch's users (SEMANTICS 10a), from each first repayment's view
        write (``write``, inf: none) and its wrongness: kept, not the views, so memory grows
        with the second payments, not the run."""
        pay = self._pay
        assert pay is not None
        every, after, ttl = self._every, pay.after_stale_reads, self._ttl
        next_sweep = self._observer.next_sweep
        # a repayment written by its user's decision read (and not wrongly) was usable there
        t_n = ack + first + (after - 1) * every
        open_ = ~held & (bad | (write > t_n) | (ttl > 0))
        for j in np.flatnonzero(open_).tolist():
            w = float(write[j])
            a, f = float(ack[j]), float(first[j])
            stale = stale_reads_before(a, False, None if w == _INF else w, bool(bad[j]), f, every, after,
                                       ttl, next_sweep)
            draws = second_payment(self.scenario, self.seed, self.index, int(ids[j]), a, f, stale)
            if draws is not None:
                self._chosen[int(ids[j])] = (a, draws)

    def _second_arrivals(self) -> list[tuple[float, int, Msg]]:
        """The given second payments the ledger commits, as ``(ack, id, msg)`` in ack order."""
        out = []
        self._committed: list[tuple[float, int]] = []
        ledger = self._h.gate_ledger
        for first_id, (first_ack, draws) in sorted((self._given or {}).items()):
            msg = second_msg(first_id, draws, self._hold)
            t = draws.arrival + draws.latency
            if ledger is not None:
                t = past(ledger, "ledger", msg, t)
                if t == _INF:
                    continue  # never committed: the money was not taken twice
            msg.ack = t
            self._committed.append((first_ack, first_id))
            out.append((t, msg.id, msg))
        out.sort(key=lambda x: (x[0], x[1]))
        return out

    def _run_pass(self) -> None:
        seconds = self._second_arrivals() if self._pay is not None else []
        si = 0
        for inj in self.injectors:
            inj.placed()
        keys = ("id", "ack", "svc", "csvc", "first", "us", "held")
        pending: dict[str, Any] | None = None
        chunks = self._arrival_chunks()
        nxt = next(chunks, None)
        while nxt is not None:
            cur, nxt = nxt, next(chunks, None)
            horizon = float(nxt[0]) if nxt is not None else _INF
            new = self._new(cur)
            if pending is not None and len(pending["id"]):
                objs = {**pending["objs"], **new["objs"]}
                new = {k: np.concatenate((pending[k], new[k])) for k in keys}
                new["objs"] = objs
            if si < len(seconds) and seconds[si][0] <= horizon:
                # users' second payments acked by the horizon join this batch (exact path)
                sj = si
                while sj < len(seconds) and seconds[sj][0] <= horizon:
                    sj += 1
                add = [msg for _, _, msg in seconds[si:sj]]
                si = sj
                extra = {"id": np.asarray([x.id for x in add], dtype=np.int64),
                         "ack": np.asarray([x.ack for x in add]), "svc": np.asarray([x.svc for x in add]),
                         "csvc": np.asarray([x.csvc for x in add]), "first": np.zeros(len(add)),
                         "us": np.asarray([x.u for x in add], dtype=np.float64).reshape(len(add), N_UNIFORMS),
                         "held": np.asarray([x.held for x in add], dtype=bool)}
                objs = {**new["objs"], **{x.id: x for x in add}}
                new = {k: np.concatenate((new[k], extra[k])) for k in keys}
                new["objs"] = objs
            order = np.lexsort((new["id"], new["ack"]))
            cut = int(np.searchsorted(new["ack"][order], horizon, side="right"))
            now, later = order[:cut], order[cut:]
            batch = {k: new[k][now] for k in keys}
            pending = {k: new[k][later] for k in keys}
            batch["objs"] = {}
            pending["objs"] = {}
            if new["objs"]:
                later_ids = set(pending["id"].tolist())
                for id_, msg in new["objs"].items():
                    (pending if id_ in later_ids else batch)["objs"][id_] = msg
            self._process(batch)
            self._flush(horizon)
        self._flush(_INF)
        if self.book is not None:
            self.observing_at = _INF  # after the run, as the event engine does
            self.book.observe()
        if self.progress is not None:
            self.progress(self.duration)

    # ------------------------------------------------------------------ one batch in ack order

    def _process(self, b: dict[str, Any]) -> None:
        m = len(b["id"])
        if m == 0:
            return
        acks: list[float] = b["ack"].tolist()
        svcs: list[float] = b["svc"].tolist()
        objs: dict[int, Msg] = {}
        if b["objs"]:  # keyed by position from here on
            for j, id_ in enumerate(b["id"].tolist()):
                if id_ in b["objs"]:
                    objs[j] = b["objs"][id_]
        seq0 = self._seq
        self._seq += m

        lists: list[list[Any]] = []
        waited: dict[int, tuple[str, float, float]] = {}  # (cause, since, added) of a degraded pool's wait

        def obj(j: int) -> Msg:
            msg = objs.get(j)
            if msg is None:
                if not lists:  # the per-message fields, as Python objects, once per batch that needs them
                    lists.extend((b["id"].tolist(), b["csvc"].tolist(), b["first"].tolist(), b["us"].tolist(),
                                  b["held"].tolist()))
                ids, csvc, first, us, held = lists
                msg = Msg(ids[j], svcs[j], csvc[j], first[j], tuple(us[j]), held[j])
                msg.ack = acks[j]
                wait = waited.get(j)
                if wait is not None:
                    msg.touch(*wait)
                objs[j] = msg
            return msg

        # the outbox publishes at the ack: link ledger->sync
        dropped: set[int] = set()
        ls = self._h.link_ledger_sync
        if ls is not None:
            for j in np.flatnonzero(_active(self._windows[LINK["ledger->sync"]], b["ack"])).tolist():
                msg = obj(j)
                cross(ls, "ledger->sync", msg, acks[j])
                if msg.dropped:
                    dropped.add(j)

        done, obs, leave, end_key = self._pool(acks, svcs, objs, obj, dropped, waited)

        # credit, view: bulk for the untouched, the shared per-message code for the rest
        done_a = np.asarray(done)
        write = done_a + b["csvc"]
        # a cached app view (semantics 9) reads through the per-message code
        slow = np.full(m, self._ttl > 0 or not self.bulk or self.book is not None)
        if objs:
            slow[list(objs)] = True
        h = self._h
        us = b["us"]
        for hook, at in ((LINK["sync->credit"], done_a), (GATE["credit"], done_a), (LINK["credit->view"], write),
                         (GATE["view"], write), (WRITE, write)):
            if h.get(hook) is not None:
                hit = _active(self._windows[hook], at)
                link = hook.where if hook.method == "link" else None
                if link is not None and link in self._link_share:
                    # a link's one bug only acts on the messages its uniform picks
                    hit &= us[:, U_LINK[link]] < self._link_share[link]
                slow |= hit
        if h.settle is not None:
            slow |= _active(self._windows[SETTLE], write) & (b["ack"] < self._final_only_before)
        finite = np.isfinite(done_a)
        seqs = np.arange(seq0, seq0 + m, dtype=np.int64)
        cause = np.zeros(m, dtype=np.int64)
        cause_at = np.full(m, _INF)
        plain = ~slow & finite
        for j, (c, since, _) in waited.items():
            if plain[j]:
                cause[j] = _CAUSE_INDEX[c]
                cause_at[j] = since
        msgs = self._buf_msgs
        ttl = self._ttl
        slow_view: dict[int, tuple[float, bool]] = {}  # the view write and its wrongness, for pay_again
        for j in np.flatnonzero(slow | ~finite).tolist():
            msg = obj(j)
            if j in obs:  # dropped at the ack, lost at a switch
                msgs.append((obs[j], seq0 + j, msg, None))
                slow_view[j] = (_INF, False)
                continue
            if done[j] == _INF:  # never served: observed at the end, in the event engine's order
                msgs.append((_INF, end_key[j], msg, None))
                slow_view[j] = (_INF, False)
                continue
            w = downstream(h, msg, done[j])
            slow_view[j] = (_INF if w is None else w, msg.bad)
            if (w is not None and self.bulk and ttl <= 0 and msg.pending is None and not msg.bad and not msg.second
                    and self.book is None):
                touches = msg.touches
                if not touches:
                    plain[j] = True
                    write[j] = w
                    continue
                first_cause = touches[0].cause
                if all(tc.cause == first_cause for tc in touches):
                    plain[j] = True
                    write[j] = w
                    cause[j] = _CAUSE_INDEX[first_cause]
                    cause_at[j] = min(tc.at for tc in touches)
                    continue
            msgs.append((done[j], seq0 + j, msg, w))
        if self._pay is not None and self._given is not None:
            hist_write = write.copy()
            hist_bad = np.zeros(m, dtype=bool)
            for j, (w, bad) in slow_view.items():
                hist_write[j] = w
                hist_bad[j] = bad
            users = b["id"] >= 0  # second payments have no user reads
            self._choose(*(a[users] for a in (b["id"], b["ack"], b["held"], b["first"], hist_write, hist_bad)))
        if plain.any():
            part = {"obs": done_a[plain], "seq": seqs[plain], "ack": b["ack"][plain], "held": b["held"][plain],
                    "write": write[plain], "first": b["first"][plain], "cause": cause[plain],
                    "cause_at": cause_at[plain]}
            buf = self._buf_bulk
            self._buf_bulk = part if not buf else {k: np.concatenate((buf[k], part[k])) for k in part}
        # pool occupants for backlog samples
        entered = np.ones(m, dtype=bool)
        if dropped:
            entered[list(dropped)] = False
        self._bl_enq = np.concatenate((self._bl_enq, b["ack"][entered]))
        leave_a = done_a.copy()
        for j, t in leave.items():
            leave_a[j] = t
        self._bl_leave = np.concatenate((self._bl_leave, leave_a[entered]))

    def _pool(self, acks: list[float], svcs: list[float], objs: dict[int, Msg], obj: Callable[[int], Msg],
              dropped: set[int], waited: dict[int, tuple[str, float, float]]
              ) -> tuple[list[float], dict[int, float], dict[int, float], dict[int, int]]:
        """The sync pool over one batch in ack order: per repayment its sync completion and,
        where they differ from it, the instant it is observed, the instant it leaves the pool,
        and its end-of-run order. A wait in a degraded pool of a message with no Msg yet goes
        into ``waited`` by position."""
        m = len(acks)
        done = [0.0] * m
        obs: dict[int, float] = {}  # where the observation instant is not the sync completion
        leave: dict[int, float] = {}  # where the pool is left at another instant
        end_key: dict[int, int] = {}
        heap = self._heap
        edges = self._edges
        ei = self._ei
        next_edge = self._next_edge
        seg_active = self._seg_active
        h = self._h
        syncs = [sched for sched in (h.gate_sync, h.sync_start) if sched is not None]  # a worker's take
        seq0 = self._seq - m
        specials = sorted(set(dropped) | set(objs)) + [m]
        si = 0
        j = 0
        while j < m:
            if heap is not None and self._deg is None and not seg_active:
                # the plain stretch: the Kiefer–Wolfowitz recursion and nothing else
                stop = specials[si]
                for j in range(j, stop):
                    enq = acks[j]
                    if enq > next_edge:
                        break
                    f = heap[0]
                    take = enq if f <= enq else f
                    if take >= next_edge:
                        break
                    d = take + svcs[j]
                    heapreplace(heap, d)
                    done[j] = d
                else:
                    j = stop
                if j >= m:
                    break
            if j == specials[si]:
                si += 1
            enq = acks[j]
            if j in dropped:
                obs[j] = leave[j] = enq
                j += 1
                continue
            if enq > next_edge:
                while edges[ei] < enq:
                    ei += 1
                next_edge = edges[ei]
                seg_active = any([bool(sched.at(enq)) for sched in syncs])
            if heap is None:
                take = enq
            else:
                f = heap[0]
                take = enq if f <= enq else f
            if self._deg is None and take < next_edge and not seg_active and j not in objs:
                d = take + svcs[j]
                if heap is not None:
                    heapreplace(heap, d)
                done[j] = d
                j += 1
                continue
            if heap is not None and take < next_edge and not seg_active and j not in objs:
                # a degraded pool between edges: the exact path's outcome without its Msg; the
                # wait is kept in ``waited`` and becomes the message's first touch (see obj())
                at = self._deg_at
                if ((self._prev_pulled and at <= self._prev_take < enq)
                        or (heap[0] < enq and any(at < x < enq for x in heap))):
                    self._deg = None
                if self._deg is not None and take > enq:
                    waited[j] = (self._deg, enq, take - enq)
                self._now = take
                d = take + svcs[j]
                heapreplace(heap, d)
                self._prev_pulled = take > enq
                self._prev_take = take
                done[j] = d
                j += 1
                continue
            # ---- the exact path: faults at the sync point, window ends, switches, a degraded pool
            msg = obj(j)
            msg.enq = enq
            if self._deg is not None and heap is not None:
                at = self._deg_at
                if ((self._prev_pulled and at <= self._prev_take < enq)
                        or (heap[0] < enq and any(at < x < enq for x in heap))):
                    self._deg = None  # a completion left the queue empty since the pool was degraded
            lost_at = None
            k = ei
            while edges[k] <= take and edges[k] != _INF:
                x = edges[k]
                k += 1
                for e, s in self._sync_ends:
                    if e == x and enq <= e < take:
                        since = max(enq, s)
                        msg.touch("maintenance", since, e - since)
                        if e not in self._fired:
                            self._fired.add(e)
                            self._deg, self._deg_at = "maintenance", e
                for s, ratio in self._switches:
                    if s == x and enq < s <= take and msg.ack < s and msg.u[U_CUT_LOSS] < ratio:
                        msg.lost = True
                        msg.touch_until_repair("cutover", s)
                        for hook in self._leave_hooks:
                            hook(msg, s)
                        lost_at = s
                        break
                if lost_at is not None:
                    break
            if lost_at is not None:
                done[j] = _INF
                obs[j] = leave[j] = lost_at
                j += 1
                continue
            if take == _INF:  # every worker held for good: queued to the end
                done[j] = _INF
                end_key[j] = seq0 + j
                j += 1
                continue
            if self._deg is not None and take > enq:
                msg.touch(self._deg, enq, take - enq)
            self._now = take
            t = take
            if syncs:
                passed = start_service(h, msg, t)
                assert passed is not None  # deferral is refused by unsupported()
                t = passed
            d = t + msg.svc + msg.extra
            if heap is not None:
                heapreplace(heap, d)
            self._prev_pulled = take > enq
            self._prev_take = take
            done[j] = d
            if d == _INF:
                end_key[j] = _END_PARKED + seq0 + j
            j += 1
        self._ei, self._next_edge, self._seg_active = ei, next_edge, seg_active
        return done, obs, leave, end_key

    # ------------------------------------------------------------------ observation, in order

    def _flush(self, horizon: float) -> None:
        """Observe every repayment whose observation instant is at or before ``horizon`` (no
        later repayment can come before it), and take the backlog samples before it."""
        self._samples(horizon)
        bulk = self._buf_bulk
        msgs = self._buf_msgs
        if bulk:
            ready = bulk["obs"] <= horizon
            now = {k: v[ready] for k, v in bulk.items()}
            self._buf_bulk = {k: v[~ready] for k, v in bulk.items()} if not ready.all() else {}
        else:
            now = {}
        due = [x for x in msgs if x[0] <= horizon]
        self._buf_msgs = [x for x in msgs if x[0] > horizon]
        n_bulk = len(now["obs"]) if now else 0
        if not n_bulk and not due:
            return
        due.sort(key=lambda x: (x[0], x[1]))
        if not n_bulk:
            for t, _, msg, write in due:
                self.observing_at = t
                self._finish(msg, write)
            self._settle(horizon)
            return
        order = np.lexsort((now["seq"], now["obs"]))
        now = {k: v[order] for k, v in now.items()}
        start = 0
        for t, seq, msg, write in due:
            # the plain repayments observed before this one
            cut = int(np.searchsorted(now["obs"], t, side="left"))
            while cut < n_bulk and now["obs"][cut] == t and now["seq"][cut] < seq:
                cut += 1
            if cut > start:
                self._observe_plain(now, start, cut)
                start = cut
            self.observing_at = t
            self._finish(msg, write)
        if start < n_bulk:
            self._observe_plain(now, start, n_bulk)
        self._settle(horizon)

    def _settle(self, horizon: float) -> None:
        """Accounts at rest (semantics 14): every repayment acked before ``horizon`` was
        processed, and all but the buffered ones are finished."""
        if self.book is None or horizon == _INF:
            return  # after the last batch the book settles and observes what is left
        acks = [x[2].ack for x in self._buf_msgs]
        if self._buf_bulk:
            acks.append(float(self._buf_bulk["ack"].min()))
        self.book.settle(min(min(acks, default=horizon), horizon))

    def _finish(self, msg: Msg, write: float | None) -> None:
        """A repayment's view write is known: observe it, or keep it for its account."""
        if self.book is not None and not msg.second:
            self.book.add(msg, write)
        else:
            self._observer.finish(msg, write)

    def _observe_plain(self, part: dict[str, np.ndarray], lo: int, hi: int) -> None:
        if hi - lo < _SCALAR_RUN:  # a short run between per-message ones: the scalar code is cheaper
            next_sweep = self._observer.next_sweep
            observe = self.collector.observe
            every, max_checks = self._every, self._max_checks
            cols = [part[k][lo:hi].tolist() for k in ("ack", "held", "write", "first", "cause", "cause_at")]
            for ack, held, write, first, cause, cause_at in zip(*cols):
                if held:
                    usable_at = _INF
                else:
                    s1 = next_sweep(ack)
                    usable_at = write if write < s1 else s1
                # one touch of the repayment's one cause at its earliest instant blames the same reads
                touches = (Touch(CAUSES[cause], cause_at, 1.0),) if cause else ()
                observe(Repayment(ack, held, usable_at, touches), reads_simple(ack, usable_at, first, every, max_checks))
            return
        observe_plain(self.collector, part["ack"][lo:hi], part["held"][lo:hi], part["write"][lo:hi],
                      part["first"][lo:hi], self._every, self._max_checks, self._sweep_every,
                      part["cause"][lo:hi], part["cause_at"][lo:hi])

    def _samples(self, horizon: float) -> None:
        """Backlog samples (waiting or held by a worker) at every sample instant before ``horizon``."""
        step = self._step
        duration = self.duration
        k0 = self._sample_k
        if step <= 0:
            return
        k_end = k0
        # sample instants k * step, as the event engine's sampler makes them
        while True:
            t = k_end * step
            if t >= duration or t >= horizon:
                break
            k_end += 1
        if k_end == k0:
            return
        ts = np.arange(k0, k_end, dtype=np.float64) * step
        enq = np.sort(self._bl_enq)
        lv = np.sort(self._bl_leave)
        counts = np.searchsorted(enq, ts, side="right") - np.searchsorted(lv, ts, side="right")
        observe = self.collector.observe_backlog
        for t, c in zip(ts.tolist(), counts.tolist()):
            observe(t, c)
        last = float(ts[-1])
        keep = self._bl_leave > last
        self._bl_enq = self._bl_enq[keep]
        self._bl_leave = self._bl_leave[keep]
        self._sample_k = k_end
        if self.progress is not None:
            self.progress(last)


def _unit_exp() -> Any:
    from repaychaos.scenarios.distributions import Exponential

    return Exponential(dist="exponential", mean=1.0)


_UNIT_EXP = _unit_exp()
