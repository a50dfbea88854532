"""Bounded memory: what the pipeline no longer needs moves from process memory to SQLite.

A repayment's :class:`~repaychaos.service.trace.Trace` and its account's entries in
the pipeline's ``view`` and ``latest`` maps are needed only while something can still
change them: while its message is in flight, while the account's view is wrong (a
reconcile sweep will write it), or while another message for the account is in flight.
Once none of that holds the trace is final, so :class:`Spiller` writes it (changes and
resolved touches) to the ``trace`` table and drops it, and drops the account's entries
after the writer has committed them. Reads of a dropped account fall back to the
committed ``view`` row (:class:`ViewMap`). Memory then holds what is in flight, not
everything that ever happened.

With ``workload.accounts`` (docs/explanation/semantics.md, 14) what a user reads depends
on the account's other repayments, so a trace is final only once its account is **at
rest** (:func:`repaychaos.semantics.account_at_rest`, the rule the model's engines
observe by): at an instant E, every repayment of the account acked by E written (or lost)
by E, no rule lag keeping the account past E, and each shown usable for good from E on.
The spiller takes E a history span behind the scenario clock, so no read the service
still answers (one as of a past instant is at most that old) can look before E; it then
writes those repayments' traces as ``/chaos/trace`` shows them, with the regressions
their writes made, and drops them from the account's in-memory ledger, keeping how many
moved and E (:attr:`Pipeline.moved`). A later read of one of them is usable, through the
app's cache, and the account's later repayments are viewed as an account whose ledger
starts with them (relative sequences give the same comparisons).
"""

from __future__ import annotations

import asyncio
import heapq
import json
import math
from typing import Any

from repaychaos.semantics import account_at_rest
from repaychaos.service.clock import ScenarioClock
from repaychaos.service.store import Store

__all__ = ["Spiller", "ViewMap", "trace_json"]

#: Wall seconds between spill passes.
SPILL_EVERY = 0.5
#: Most traces looked at in one pass (bounds how long a pass holds the event loop).
SCAN_LIMIT = 20_000


class ViewMap(dict):
    """The pipeline's in-memory view (account -> (usable, as_of scenario s)); an account not in
    memory is read from the committed ``view`` table (it was dropped once settled)."""

    def __init__(self, store: Store, clock: ScenarioClock):
        super().__init__()
        self._store = store
        self._clock = clock

    def get(self, account: str, default: Any = None) -> Any:
        value = dict.get(self, account)
        if value is not None:
            return value
        row = self._store.view_row(account)
        if row is None:
            return default
        return row[0], self._clock.to_scenario(row[1])

    def __contains__(self, account: object) -> bool:
        return dict.__contains__(self, account) or (isinstance(account, str)
                                                    and self._store.view_row(account) is not None)


def _finite(x: float) -> float | None:
    return None if x == math.inf else x


def trace_json(trace: Any) -> tuple[list[list[Any]], list[list[Any]]]:
    """``(changes, touches)`` of a trace as /chaos/trace shows them."""
    return ([[t, u] for t, u in trace.changes],
            [[c, a, _finite(d)] for c, a, d in trace.resolved_touches()])


class Spiller:
    """Moves final traces and settled accounts of ``pipeline`` to ``store`` (see module docstring)."""

    def __init__(self, pipeline: Any, store: Store):
        self.pipeline = pipeline
        self.store = store
        self.spilling: dict[str, Any] = {}  # id -> trace, written but not yet committed
        self.spilled = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(SPILL_EVERY)
            await self.spill_once()

    async def spill_once(self) -> int:
        """One pass: spill every final trace (up to SCAN_LIMIT looked at); returns how many."""
        pipe = self.pipeline
        if pipe.accounts_on:
            return await self._spill_at_rest()
        busy = {msg.account for msg in pipe.inflight.values()}
        final = []
        for n, (rep_id, trace) in enumerate(pipe.traces.items()):
            if n >= SCAN_LIMIT:
                break
            if rep_id in pipe.inflight or trace.account in busy or trace.account in pipe.unsettled:
                continue
            final.append(trace)
        if not final:
            return 0
        rows = []
        views = []
        for trace in final:
            del pipe.traces[trace.id]
            self.spilling[trace.id] = trace
            changes, touches = trace_json(trace)
            rows.append((trace.id, json.dumps(changes), json.dumps(touches)))
            if pipe.latest.get(trace.account) is trace:
                views.append((trace.account, trace, dict.get(pipe.view, trace.account)))
        await self.store.spill(rows)
        # Committed (with every view write queued before): drop what has not changed meanwhile.
        busy = {msg.account for msg in pipe.inflight.values()}
        for account, trace, view in views:
            if (pipe.latest.get(account) is trace and account not in busy and account not in pipe.unsettled
                    and dict.get(pipe.view, account) is view):
                del pipe.latest[account]
                dict.pop(pipe.view, account, None)
        for trace in final:
            self.spilling.pop(trace.id, None)
        self.spilled += len(final)
        return len(final)

    async def _spill_at_rest(self) -> int:
        """With accounts: spill the repayments of every account at rest a history span ago
        (see module docstring); returns how many."""
        pipe = self.pipeline
        at = pipe.clock.now() - pipe.history_span
        due = pipe.rest_due
        looked: set[str] = set()
        later: list[tuple[float, str]] = []
        ready: list[tuple[str, int, list[Any]]] = []
        while due and due[0][0] <= at and len(looked) < SCAN_LIMIT:
            account = heapq.heappop(due)[2]
            if account in looked:
                continue
            looked.add(account)
            ledger = pipe.ledgers.get(account)
            if not ledger:
                continue
            n = 0
            while n < len(ledger) and ledger[n].acked_at <= at:
                n += 1
            group = ledger[:n]
            if (not group or any(tr.acked_at <= at for tr in ledger[n:]) or account in pipe.timeline.due
                    or any(tr.id in pipe.inflight for tr in group)):
                later.append((at, account))  # a write still to come: look again next pass
                continue
            views = pipe.views_of(account, group)
            after = account_at_rest([tr.facts() for tr in group], views, at, pipe.reconcile.next_sweep)
            if after is not None:
                if after != math.inf:
                    later.append((after, account))
                continue
            ready.append((account, n, [pipe.account_trace(tr, view) for tr, view in zip(group, views)]))
        for t, account in later:
            pipe.rest_due_at(t, account)
        if not ready:
            return 0
        rows = []
        regressed = []
        for account, n, shown in ready:
            for tr, (changes, touches, count) in zip(pipe.ledgers[account][:n], shown):
                rows.append((tr.id, json.dumps(changes), json.dumps(touches)))
                if count:
                    regressed.append((tr.id, count))
        await self.store.spill(rows, regressed)
        # committed: the in-memory ledgers only grew at their ends meanwhile
        moved = 0
        for account, n, _shown in ready:
            ledger = pipe.ledgers[account]
            for tr in ledger[:n]:
                pipe.traces.pop(tr.id, None)
            del ledger[:n]
            if not ledger:
                del pipe.ledgers[account]
            base = pipe.moved.get(account, (0, -math.inf))[0]
            pipe.moved[account] = (base + n, at)
            moved += n
        self.spilled += moved
        return moved
