"""Accounts in the model (docs/explanation/semantics.md, rule 14): which account a
repayment lands on, and the reads of an account's repayments once its view is known.

A repayment's account comes from a uniform of its own, keyed by its place in the arrival
order (:func:`repaychaos.core.streams.keyed_uniform`), so no other draw of the run
changes and the load side names the same account from the scenario alone.

With several repayments on one account, what a user reads depends on the writes of the
account's other repayments, which may come after the user's own write, so the engine
keeps an account's finished repayments (:class:`AccountBook`) until they are **at rest**
and observes them then, with the view :func:`repaychaos.semantics.account_views` computes.

At rest, at an instant E (:func:`repaychaos.semantics.account_at_rest`): every repayment
of the account acked at or before E (the group) is finished, their view writes are at or
before E (an older write landing later may put back a repayment acked after E), no rule
lag that caught one of them keeps the account from the sweeps after E, and the group's
view alone shows every repayment of the group that is not held usable for good from an
instant at or before E. Nothing later changes what the group's users read:
a repayment acked after E has a higher sequence, its write shows at least its sequence
minus one, and a sweep after E shows the ledger, so the view never again shows less than
the group; and the view of the repayments after E is the one of an account whose ledger
starts with them (relative sequences give the same comparisons). The book
looks for rest on a fixed grid of instants (every :data:`REST_STEP` seconds), at each
instant only once every repayment acked at or before it is finished — both engines say
when that is — and observes the accounts at rest there in the order their group's first
repayment was finished. Which repayments are observed, and in what order, is therefore
the same in both engines, whenever each calls :meth:`AccountBook.settle`; memory holds the
repayments not yet at rest, not the run. An account that never comes to rest (its view
stays wrong with reconcile off, or its writes never catch up) is observed after the run.
"""

from __future__ import annotations

import math
from heapq import heappop, heappush
from typing import TYPE_CHECKING, Any

from repaychaos.core.records import Repayment, Touch
from repaychaos.core.streams import keyed_uniform
from repaychaos.semantics import (AccountRepayment, AccountView, account_at_rest, account_of, account_views,
                                  repaired_at)
from repaychaos.sim.users import reads_general

if TYPE_CHECKING:
    from repaychaos.sim.message import Msg
    from repaychaos.sim.stages import Observer

__all__ = ["account_for", "AccountBook", "REST_STEP"]

#: Scenario seconds between the instants at which the book looks for accounts at rest.
REST_STEP = 60.0

_INF = float("inf")


def account_for(seed: int, index: int, repayment: int, accounts: int, skew: float | None = None) -> int:
    """The account of the ``repayment``-th arrival (0-based) of replication ``index`` of a
    run seeded ``seed``, among ``accounts`` accounts spread with ``skew``."""
    return account_of(keyed_uniform(seed, index, f"account/{repayment}"), accounts, skew)


class AccountBook:
    """Every account's finished repayments until they are at rest (see the module docstring)."""

    def __init__(self, observer: Observer, seed: int, index: int, accounts: int, skew: float | None = None):
        self._observer = observer
        self._seed, self._index, self._n, self._skew = seed, index, accounts, skew
        #: account -> its finished repayments not yet observed, as (place in finishing order, msg)
        self._accounts: dict[int, list[tuple[int, Msg]]] = {}
        self._finished = 0
        #: (instant before which the account cannot be at rest, push order, account)
        self._due: list[tuple[float, int, int]] = []
        self._pushes = 0
        #: the next grid instant to look at is ``self._grid * REST_STEP``
        self._grid = 0
        #: the grid instant whose accounts at rest are being observed (inf: after the run)
        self.observing_at = -_INF
        #: repayments kept now, and the most kept at once (what the book's memory grows with)
        self.waiting = 0
        self.most_waiting = 0

    def add(self, msg: Msg, write: float | None) -> None:
        """A repayment whose view write is ``write`` (None: never) is finished (a second
        payment, on an account of its own, is never added)."""
        msg.write = write
        account = account_for(self._seed, self._index, msg.id, self._n, self._skew)
        self._accounts.setdefault(account, []).append((self._finished, msg))
        self._finished += 1
        self.waiting += 1
        if self.waiting > self.most_waiting:
            self.most_waiting = self.waiting
        self._push(max(msg.ack, _written(msg)), account)

    def settle(self, complete_before: float) -> None:
        """Every repayment acked before ``complete_before`` is finished: observe the accounts
        at rest at the grid instants before it."""
        due = self._due
        while due and due[0][0] != _INF:
            k = max(self._grid, math.ceil(due[0][0] / REST_STEP))
            at = k * REST_STEP
            if not at < complete_before:
                return
            self._grid = k + 1  # the grid instants skipped had nothing due
            self._rest(at)

    def observe(self) -> None:
        """After the run: observe the accounts at rest at every grid instant left, then every
        repayment not yet observed, account by account in the order their first repayment
        was finished."""
        self.settle(_INF)
        self.observing_at = _INF
        for _, msgs in sorted(((entries[0][0], [m for _, m in entries]) for entries in self._accounts.values()),
                              key=lambda x: x[0]):
            msgs.sort(key=_ledger_order)
            if len(msgs) == 1:
                self._observer.finish(msgs[0], msgs[0].write)
            else:
                self._observe_group(msgs, self._views(msgs))
        self._accounts.clear()
        self._due.clear()
        self.waiting = 0

    # ------------------------------------------------------------------ rest

    def _push(self, at: float, account: int) -> None:
        heappush(self._due, (at, self._pushes, account))
        self._pushes += 1

    def _rest(self, at: float) -> None:
        """Observe the accounts at rest at ``at`` among those due by then."""
        self.observing_at = at
        due = self._due
        looked: set[int] = set()
        ready = []
        while due and due[0][0] <= at:
            account = heappop(due)[2]
            if account in looked:
                continue
            looked.add(account)
            entries = self._accounts.get(account)
            if entries is None:
                continue
            group = [(i, m) for i, m in entries if m.ack <= at]
            if not group:
                continue
            msgs = sorted((m for _, m in group), key=_ledger_order)
            facts = _facts(msgs)
            views = account_views(facts, self._observer.next_sweep)
            after = account_at_rest(facts, views, at, self._observer.next_sweep)
            if after is not None:
                if after != _INF:
                    self._push(after, account)
                continue
            ready.append((min(i for i, _ in group), account, msgs, views))
        ready.sort(key=lambda x: x[0])
        for _, account, msgs, views in ready:
            if len(msgs) == 1:
                self._observer.finish(msgs[0], msgs[0].write)
            else:
                self._observe_group(msgs, views)
            self.waiting -= len(msgs)
            left = [(i, m) for i, m in self._accounts[account] if m.ack > at]
            if left:
                self._accounts[account] = left
            else:
                del self._accounts[account]

    # ------------------------------------------------------------------ observation

    def _views(self, msgs: list[Msg]) -> list[AccountView]:
        return account_views(_facts(msgs), self._observer.next_sweep)

    def _observe_group(self, msgs: list[Msg], views: list[AccountView]) -> None:
        """Observe an account's repayments (in ledger order) with the views they saw."""
        observer = self._observer
        for msg, view in zip(msgs, views):
            if view.regressed:
                observer.collector.observe_regressions(msg.ack, view.regressed)
            if msg.held:
                observer.finish(msg, msg.write)
            else:
                self._observe(msg, view.changes, view.regressions)

    def _observe(self, msg: Msg, changes: list[tuple[float, bool]], regressions: list[tuple[str, float]]) -> None:
        observer = self._observer
        ack = msg.ack
        if msg.second or not (observer.warmup <= ack < observer.duration):
            return
        usable_at = next((t for t, usable in changes if usable), _INF)
        repaired = repaired_at(True, changes)
        touches = list(msg.touches or ())
        for cause, at in list(msg.pending or ()) + regressions:
            if repaired - at > 0:
                touches.append(Touch(cause, at, repaired - at))
        rep = Repayment(ack, False, usable_at, touches, changes)
        reads = reads_general(ack, rep.view_usable, msg.first, observer.every, observer.max_checks, observer.ttl)
        observer.collector.observe(rep, reads)


def _written(msg: Msg) -> float:
    """The instant of the repayment's view write (its ack when it has none)."""
    return msg.ack if msg.write is None or msg.write == _INF else msg.write


def _facts(msgs: list[Msg]) -> list[AccountRepayment]:
    return [AccountRepayment(m.ack, m.held, m.write, m.bad, m.kept_until, m.unguarded) for m in msgs]


def _ledger_order(msg: Any) -> tuple[float, int]:
    return (msg.ack, msg.id)
