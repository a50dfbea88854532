"""Synthetic result records, built through the real metric collectors.

It lives with the tests, not in the package: it is a third, simplified implementation of
the pipeline, and the package keeps exactly one per engine.

Why: reports, gates and the comparison need realistic ``result.json`` records to be
developed and tested against, independent of the SimPy model and the live service. This
is a deliberately small stand-in that gives every key its real shape and plausible
values — it is *not* the model. The rules it does apply (retry times, interface bugs each
with their own draw, corrupt flips, the view history) are the shared ones of
:mod:`repaychaos.semantics`; what it leaves out:

- the sync pool has unlimited workers (no queueing for a worker); no backlog blame;
- the view cache is ignored; a reject window at an internal stage is waited out in place.

Every record it makes says ``run.synthetic = true``.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from typing import TYPE_CHECKING, Any

from repaychaos.core.collector import MetricsCollector, finalize
from repaychaos.core.records import Read, Repayment, Touch
from repaychaos.core.result import build_result
from repaychaos.semantics import CORRUPT, DROP, flip, judge_bug, release_time, view_history
from repaychaos.core.types import ResultRecord

if TYPE_CHECKING:
    from repaychaos.scenarios import Scenario

__all__ = ["synthetic_result", "synthetic_replication"]

_BACKLOG_SAMPLES_PER_BIN = 4


def _arrivals(scenario: Scenario, rng: random.Random) -> list[float]:
    """Poisson arrival instants in ``[0, duration)`` from the piecewise-constant rate."""
    steps = scenario.workload.arrivals.steps
    out: list[float] = []
    for i, (at, rate) in enumerate(steps):
        end = steps[i + 1][0] if i + 1 < len(steps) else scenario.duration
        end = min(end, scenario.duration)
        if rate <= 0 or at >= end:
            continue
        t = at + rng.expovariate(rate)
        while t < end:
            out.append(t)
            t += rng.expovariate(rate)
    return out


def _in(t: float, windows: list[tuple[float, float]]) -> tuple[float, float] | None:
    for start, end in windows:
        if start <= t < end:
            return start, end
    return None


def synthetic_replication(scenario: Scenario, seed: int) -> Any:
    """One replication's :class:`~repaychaos.core.collector.CollectorState` (see the module caveats)."""
    rng = random.Random(seed)
    horizon = scenario.duration
    pipe = scenario.pipeline
    channel = pipe.channel.latency.sampler(rng)
    sync_service = pipe.sync.service.sampler(rng)
    credit_service = pipe.credit.service.sampler(rng)
    first_after = scenario.workload.check.first_after.sampler(rng)
    every = scenario.workload.check.every
    max_checks = scenario.workload.check.max_checks
    sweep = pipe.reconcile.next_sweep

    pauses: dict[str, list[tuple[float, float, str]]] = {}
    delays: list[tuple[list[tuple[float, float]], Any]] = []
    bugs: list[tuple[str, list[tuple[float, float]], float, float]] = []
    cutovers: list[tuple[float, float, float, float]] = []
    for fault in scenario.faults:
        ws = list(fault.windows(horizon))
        if fault.type == "maintenance":
            pauses.setdefault(fault.component, []).extend((s, e, fault.mode) for s, e in ws)
        elif fault.type == "sync_delay":
            delays.append((ws, fault.extra.sampler(rng)))
        elif fault.type == "interface_bug":
            bugs.append((fault.link, ws, fault.drop_ratio, fault.corrupt_ratio))
        elif fault.type == "cutover":
            for start, end in ws:
                cutovers.append((start, end, fault.inflight_loss_ratio, fault.unmapped_ratio))

    def wait_out(component: str, t: float, touches: list[Touch]) -> float:
        for start, end, mode in pauses.get(component, []):
            if start <= t < end:
                through = release_time(t, end, mode)
                touches.append(Touch("maintenance", t, through - t))
                return through
        return t

    def judge(link: str, t: float, state: list[bool]) -> None:
        """Every bug on ``link`` in force at ``t``, each with its own draw; state = [lost, corrupt]."""
        for bug_link, ws, drop, corrupt in bugs:
            if bug_link != link or state[0] or not _in(t, ws):
                continue
            outcome = judge_bug(rng.random(), drop, corrupt)
            if outcome is DROP:
                state[0] = True
            elif outcome is CORRUPT:
                state[1] = flip(state[1])
            if outcome is not None:
                touches.append(Touch("interface_bug", t, math.nan))

    collector = MetricsCollector.for_scenario(scenario)
    acks: list[float] = []
    syncs_done: list[float] = []
    for arrival in _arrivals(scenario, rng):
        touches: list[Touch] = []
        ack = wait_out("ledger", arrival + channel(), touches)
        held = rng.random() < pipe.credit.risk_hold_ratio
        state = [False, False]  # lost, corrupt
        judge("ledger->sync", ack, state)
        start = wait_out("sync", ack, touches)
        service = sync_service()
        for ws, extra in delays:
            if _in(start, ws):
                added = extra()
                service += added
                touches.append(Touch("sync_delay", start, added))
        synced = start + service
        acks.append(ack)
        syncs_done.append(synced)
        judge("sync->credit", synced, state)
        write = wait_out("credit", synced, touches) + credit_service()
        judge("credit->view", write, state)
        write = wait_out("view", write, touches)
        wrong = state[1]
        for start_c, end_c, loss, unmapped in cutovers:
            if not state[0] and ack < start_c <= write and rng.random() < loss:
                state[0] = True
                touches.append(Touch("cutover", start_c, math.nan))
            elif not state[0] and start_c <= write < end_c and rng.random() < unmapped:
                wrong = True
                touches.append(Touch("cutover", write, math.nan))
        usable_at, changes, repaired = view_history(ack, held, None if state[0] else write, wrong, sweep)
        touches = [t if t.added == t.added else Touch(t.cause, t.at, repaired - t.at) for t in touches]
        touches = [t for t in touches if t.added > 0]
        rep = Repayment(acked_at=ack, held=held, view_usable_at=usable_at, touches=tuple(touches),
                        view_changes=changes)
        reads = []
        t = ack + first_after()
        for _ in range(max_checks):
            usable = rep.view_usable(t)
            reads.append(Read(t, usable, t))
            if usable:
                break
            t += every
        collector.observe(rep, reads)

    acks.sort()
    syncs_done.sort()
    width = collector.state.bin_width
    for i in range(int(horizon / width) * _BACKLOG_SAMPLES_PER_BIN):
        t = (i + 0.5) * width / _BACKLOG_SAMPLES_PER_BIN
        collector.observe_backlog(t, bisect_right(acks, t) - bisect_right(syncs_done, t))
    return collector.state


def synthetic_result(scenario: Scenario, *, source: str = "sim", seed: int | None = None,
                     replications: int | None = None, fail_on_inconclusive: bool = True) -> ResultRecord:
    """A complete result record for ``scenario`` (``source`` "sim" or "load").

    A "load" record uses one replication (Wilson intervals), like a real load test.
    """
    seed = scenario.seed if seed is None else seed
    if replications is None:
        replications = 1 if source == "load" else scenario.replications
    states = [synthetic_replication(scenario, seed * 1_000_003 + i) for i in range(replications)]
    return build_result(scenario, source, seed, finalize(states), replications=replications,
                        run={"synthetic": True}, fail_on_inconclusive=fail_on_inconclusive)
