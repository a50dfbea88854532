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
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

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
            # a shared account's view is computed from all its repayments (semantics 14): kept
            return 0
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
