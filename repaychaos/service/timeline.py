"""The service's virtual time: what keeps a live service on the scenario's instants.

The stages (:mod:`repaychaos.service.stages`) and the ledger (:mod:`repaychaos.service.domain`)
say *when* things happen in scenario seconds; an asyncio event loop only wakes tasks
*about* then, late by up to a millisecond or more, and the time scale multiplies that.
Everything that turns "about then" into "exactly then" lives here:

- the clock (:class:`~repaychaos.service.clock.ScenarioClock`: wall <-> scenario seconds,
  sleeping until an instant);
- **due writes**: a view write decided ahead of its instant is *due* at it; it enters the
  view's timeline at that instant exactly, applied by whichever comes first — a read as
  of that instant or later, or the write's own (late) task;
- **ordering**: a read that was answered "unusable" at ``s`` stays true of the timeline, so
  a write decided later for an instant at or before ``s`` enters just after ``s``;
- **fault acts at instants** (a cutover's switch): until one has run, a read does not apply
  a write due after its instant (the act may still lose that write's message);
- **the reject-retry grid** (:func:`repaychaos.semantics.retry_at`) for ledger retries: the
  instant a 503 names, how an early or a late retry is taken.

Invariants (tested in ``tests/test_service_timeline.py``): a due write is never visible
before its instant and always visible at it (barriers aside); due writes of an account are
applied in instant order, each at its own instant; no write enters the timeline at or
before an instant a read reported "unusable" for, once that read has happened.
"""

from __future__ import annotations

import asyncio
import math
from bisect import bisect_right
from typing import Any, Awaitable, Callable

from repaychaos.semantics import REJECT_RETRY, next_retry, release_time, retry_at
from repaychaos.service.clock import ScenarioClock

__all__ = ["Timeline", "RETRY_LATE_MAX_WALL"]

#: Most wall seconds a ledger retry may come after the instant its 503 named and still be taken
#: as of that instant: the client's and this service's lag in a burst of retries at a window's
#: end, which the time scale multiplies (0.5 s wall is 15 s of scenario at K = 30).
RETRY_LATE_MAX_WALL = 2.0

#: A due write: (instant, message, state shown).
Due = tuple[float, Any, bool]


class Timeline:
    """The virtual time of one service (see module docstring).

    ``apply`` is called with ``(instant, message, state)`` for each due write as it enters the
    view; ``spawn`` runs a coroutine as a tracked task.
    """

    def __init__(self, clock: ScenarioClock, apply: Callable[[float, Any, bool], None],
                 spawn: Callable[[Awaitable[None]], None]):
        self.clock = clock
        self._apply = apply
        self._spawn = spawn
        #: account -> its due writes, in instant order
        self.due: dict[str, list[Due]] = {}
        #: instants of fault acts not yet carried out
        self._barriers: list[float] = []

    # ------------------------------------------------------------------ the clock

    def now(self) -> float:
        return self.clock.now()

    def sleep_until(self, t: float) -> Awaitable[None]:
        return self.clock.sleep_until(t)

    def sleep_until_precise(self, t: float) -> Awaitable[None]:
        return self.clock.sleep_until_precise(t)

    # ------------------------------------------------------------------ due writes

    def add_due(self, account: str, t: float, msg: Any, state: bool, unusable_seen: float) -> float:
        """Make a write of ``account`` due at ``t`` — or just after ``unusable_seen``, the last
        instant a read was answered "unusable", if that is not before ``t``. Returns its instant."""
        if unusable_seen >= t:
            t = math.nextafter(unusable_seen, math.inf)
        queue = self.due.setdefault(account, [])
        if queue and queue[-1][0] > t:
            # an account shared by several repayments (docs/explanation/semantics.md, 14): their
            # writes may come due out of order; the queue stays in time order (ties: first added)
            queue.insert(bisect_right([d[0] for d in queue], t), (t, msg, state))
        else:
            queue.append((t, msg, state))
        return t

    def apply_due(self, account: str, upto: float, by_read: bool = True) -> None:
        """Apply ``account``'s due writes at or before ``upto``, each at its own instant. A read
        (``by_read``) stops before one due at or after a fault act not yet carried out."""
        queue = self.due.get(account)
        if not queue:
            return
        while queue and queue[0][0] <= upto:
            t, msg, state = queue[0]
            if by_read and self._barriers and min(self._barriers) <= t:
                return
            queue.pop(0)
            self._apply(t, msg, state)
        if not queue:
            del self.due[account]

    async def write_when_due(self, account: str, t: float) -> float:
        """The due write's own task: wake at ``t`` (never before it) and apply what is due;
        returns how late it woke (scenario seconds)."""
        clock = self.clock
        await clock.sleep_until(t)
        late = clock.now() - t
        if late < 0:  # woke early (the clock's learnt bias): a read before t must not see it yet
            await clock.sleep_until_precise(t)
        # The wall clock has reached t's wall instant, but scenario time read back from it may
        # still round to just below t (t0 is ~1.8e9 s: its last bit is ~2e-7 s), and a write
        # not applied here would wait for a read of its account to apply it. So apply at t at
        # least.
        self.apply_due(account, max(clock.now(), t), by_read=False)
        return late

    # ------------------------------------------------------------------ fault acts at instants

    def at(self, t: float, act: Callable[[float], None]) -> None:
        """Call ``act(t)`` at instant ``t``, after every write due by then; until it has run,
        reads do not apply writes due after ``t``."""
        self._barriers.append(t)
        self._spawn(self._act_at(t, act))

    async def _act_at(self, t: float, act: Callable[[float], None]) -> None:
        try:
            await self.clock.sleep_until(t)
            for account in list(self.due):  # written before t: no longer in flight then
                self.apply_due(account, t, by_read=False)
            act(t)
        finally:
            self._barriers.remove(t)

    async def acts_done_until(self, t: float, bound_wall: float = 1.0) -> None:
        """Wait (at most ``bound_wall``) until every fault act at or before ``t`` has run."""
        deadline = self.clock.now() + bound_wall * self.clock.time_scale
        while self._barriers and min(self._barriers) <= t and self.clock.now() < deadline:
            await asyncio.sleep(0.001)

    # ------------------------------------------------------------------ the ledger's reject-retry grid

    def named_retry(self, first: float, now: float, window_end: float) -> float:
        """The retry instant a ledger 503 names for work first tried at ``first``, refused at
        ``now`` by a reject window ending at ``window_end``: the first grid instant after
        ``now`` that the scheduled window lets through (every retry before it would be refused
        again; a window ended early through DELETE lets it in at that instant)."""
        retry = next_retry(first, now)
        if window_end != math.inf:
            retry = max(retry, release_time(first, window_end, "reject"))
        return retry

    def retry_after_wall(self, retry: float) -> int:
        """Whole wall seconds of ``Retry-After`` for a retry at scenario instant ``retry`` (>= 1)."""
        return max(1, math.ceil((retry - self.clock.now()) / self.clock.time_scale))

    async def take_retry(self, first: float, named: float, ledger_open: Callable[[float], bool]) -> float | None:
        """A ledger retry of work first tried at ``first`` arrives now for the ``named`` instant;
        returns the instant it is taken as of, or None for now (after waiting as below).

        Early: held, and tried at each grid instant up to ``named`` (a window ended live lets
        it in at the next one). Late by at most :data:`RETRY_LATE_MAX_WALL` (times K): as of
        ``named``, as every stage runs on intended instants, so a burst of retries at a
        window's end keeps the model's shape. Later: at the next grid instant."""
        clock = self.clock
        now = clock.now()
        late = now - named
        if late < 0:
            k = max(0, math.ceil((now - first) / REJECT_RETRY - 1e-12))  # release_time's grid index
            t = retry_at(first, k)
            while t < named:
                await clock.sleep_until(t)
                if ledger_open(t):
                    return None
                k += 1
                t = retry_at(first, k)
            await clock.sleep_until(named)
            return None
        if late <= RETRY_LATE_MAX_WALL * clock.time_scale:
            return named
        await clock.sleep_until(release_time(first, now, "reject"))
        return None

