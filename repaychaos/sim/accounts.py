"""Accounts in the model (docs/explanation/semantics.md, rule 14): which account a
repayment lands on, and the reads of an account's repayments once its view is known.

A repayment's account comes from a uniform of its own, keyed by its place in the arrival
order (:func:`repaychaos.core.streams.keyed_uniform`), so no other draw of the run
changes and the load side names the same account from the scenario alone.

With several repayments on one account, what a user reads depends on the writes of the
account's other repayments, which may come after the user's own write: the engine keeps
an account's finished repayments and observes them all once the run is over
(:meth:`AccountBook.observe`), with the view :func:`repaychaos.semantics.account_views`
computes. An account with one repayment is observed as a repayment of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repaychaos.core.records import Repayment, Touch
from repaychaos.core.streams import keyed_uniform
from repaychaos.semantics import AccountRepayment, account_of, account_views, repaired_at
from repaychaos.sim.users import reads_general

if TYPE_CHECKING:
    from repaychaos.sim.message import Msg
    from repaychaos.sim.stages import Observer

__all__ = ["account_for", "AccountBook"]


def account_for(seed: int, index: int, repayment: int, accounts: int) -> int:
    """The account of the ``repayment``-th arrival (0-based) of replication ``index`` of a
    run seeded ``seed``, among ``accounts`` accounts."""
    return account_of(keyed_uniform(seed, index, f"account/{repayment}"), accounts)


class AccountBook:
    """The finished repayments of every account, observed together at the end of the run."""

    def __init__(self, observer: Observer, seed: int, index: int, accounts: int):
        self._observer = observer
        self._seed, self._index, self._n = seed, index, accounts
        self._accounts: dict[int, list[Msg]] = {}

    def add(self, msg: Msg, write: float | None) -> None:
        """A repayment whose view write is ``write`` (None: never) is finished (a second
        payment, on an account of its own, is never added)."""
        msg.write = write
        account = account_for(self._seed, self._index, msg.id, self._n)
        self._accounts.setdefault(account, []).append(msg)

    def observe(self) -> None:
        """Observe every repayment, account by account in the order accounts were first
        finished on (both engines finish repayments in the same order)."""
        observer = self._observer
        for msgs in self._accounts.values():
            if len(msgs) == 1:
                observer.finish(msgs[0], msgs[0].write)
                continue
            msgs.sort(key=_ledger_order)
            views = account_views([AccountRepayment(m.ack, m.held, m.write, m.bad, m.kept_until, m.unguarded)
                                   for m in msgs], observer.next_sweep)
            for msg, view in zip(msgs, views):
                if view.regressed:
                    observer.collector.observe_regressions(msg.ack, view.regressed)
                if msg.held:
                    observer.finish(msg, msg.write)
                else:
                    self._observe(msg, view.changes, view.regressions)
        self._accounts.clear()

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


_INF = float("inf")


def _ledger_order(msg: Any) -> tuple[float, int]:
    return (msg.ack, msg.id)
