"""The view history of one repayment and the reads its user makes (SEMANTICS 7, 9, 10).

Reads are not simulated as events: once a repayment's own view write is known (or
known never to happen), its whole view history follows from the reconcile sweep times,
and the reads follow from the check policy and the view cache.
"""

from __future__ import annotations

import math
from typing import Callable

from repaychaos.core.records import Read

__all__ = ["view_history", "reads_simple", "reads_general"]

_INF = math.inf


def view_history(ack: float, held: bool, write: float | None, bad: bool,
                 next_sweep: Callable[[float], float]) -> tuple[float, list[tuple[float, bool]] | None, float]:
    """``(first usable instant, view changes or None, instant the view is finally right)``.

    The view is unusable before the ack. The repayment's own write at ``write`` (None:
    never written) shows usable unless held, the opposite when ``bad``; the sweep at
    ``z`` >= ack sets view := truth, and at equal instants the write comes first.
    """
    s1 = next_sweep(ack)
    if not held:
        if write is None:
            return s1, None, s1
        if not bad:
            first = write if write < s1 else s1
            return first, None, first
        if s1 < write:  # usable by the sweep, flipped back by the bad write, repaired later
            s2 = next_sweep(write)
            changes = [(s1, True), (write, False)]
            if s2 != _INF:
                changes.append((s2, True))
            return s1, changes, s2
        return s1, None, s1
    # held: the truth stays unusable; only a bad write shows usable, until the next sweep
    if write is None or not bad:
        return _INF, None, ack
    s = next_sweep(write)
    if s == write:
        return _INF, None, write
    changes = [(write, True)]
    if s != _INF:
        changes.append((s, False))
    return write, changes, s


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
        if t - fill_at < cache_ttl:
            shown, as_of = cached, fill_at
        else:
            shown = cached = view(t)
            fill_at = as_of = t
        out.append(Read(t, shown, as_of))
        if shown:
            break
    return out
