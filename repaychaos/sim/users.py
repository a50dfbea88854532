"""The reads a repayment's user makes (SEMANTICS 9, 10), from its view history.

Reads are not simulated as events: once a repayment's own view write is known (or
known never to happen), its whole view history follows from the reconcile sweep times
(:func:`repaychaos.semantics.view_history`, re-exported here), and the reads follow from
the check policy and the view cache.
"""

from __future__ import annotations

from typing import Callable

from repaychaos.core.records import Read
from repaychaos.semantics import cache_serves, view_history

__all__ = ["view_history", "reads_simple", "reads_general"]


def reads_simple(ack: float, usable_at: float, first: float, every: float, max_checks: int) -> list[Read]:
    """Reads with no cache and a view that turns usable once, at ``usable_at``."""
    t0 = ack + first
    out = []
    for k in range(max_checks):
        t = t0 + k * every
        if t >= usable_at:
            out.append(Read(t, True, t))
            break
        out.append(Read(t, False, t))
    return out


def reads_general(ack: float, view: Callable[[float], bool], first: float, every: float,
                  max_checks: int, cache_ttl: float) -> list[Read]:
    """Reads through the app's status cache, filled at the ack and on every miss."""
    fill_at = ack
    cached = view(ack)
    t0 = ack + first
    out = []
    for k in range(max_checks):
        t = t0 + k * every
        if cache_serves(t, fill_at, cache_ttl):
            shown, as_of = cached, fill_at
        else:
            shown = cached = view(t)
            fill_at = as_of = t
        out.append(Read(t, shown, as_of))
        if shown:
            break
    return out
