"""What one acked repayment looked like, in the form both sources report it.

The model and the load test each describe a repayment as a :class:`Repayment` (when it
was acked, whether a risk hold keeps its truth unusable, when the view first showed
usable, which faults touched its path) plus the :class:`Read` s its user made, and hand
them to :class:`~repaychaos.core.collector.MetricsCollector`.

Attribution of a stale read (docs/reference/metrics.md), :func:`cause_of`: ``cache`` when the view itself
was already usable at the read but a cached older status was served; otherwise, among
the faults that touched the repayment's path at or before the read, the one that added
the most delay; with none, ``queueing``. Ties go to the cause earlier in report order
(:func:`~repaychaos.core.catalog.causes`), given to :func:`cause_of` as ``rank``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, NamedTuple, Sequence

from repaychaos.core.catalog import CACHE, QUEUEING

__all__ = ["Touch", "Read", "Repayment", "cause_of", "cause_rank"]


class Touch(NamedTuple):
    """A fault on a repayment's path: its cause, when it touched it, how much delay it added."""

    cause: str
    at: float
    added: float


class Read(NamedTuple):
    """One status read: when, whether it showed ``usable``, and the age-of-data instant.

    ``as_of`` is when the status shown was taken from the view (``t`` unless a cached
    status was served).
    """

    t: float
    shown_usable: bool
    as_of: float


@dataclass(slots=True)
class Repayment:
    """What happened to one acked repayment, as either source observed it.

    ``view_usable_at`` is the first instant the (uncached) view showed ``usable``
    (``math.inf`` if it never did). ``view_changes`` is only needed when the view can
    flip back (a corrupt write after a reconcile); when given it is the full list of
    ``(t, usable)`` changes after the ack, the view being unusable before the first.
    """

    acked_at: float
    held: bool = False
    view_usable_at: float = math.inf
    touches: Sequence[Touch] = ()
    view_changes: Sequence[tuple[float, bool]] | None = None
    in_ledger: bool = True

    def view_usable(self, t: float) -> bool:
        """Did the uncached view show usable at instant ``t``?"""
        if self.view_changes is None:
            return t >= self.view_usable_at
        state = False
        for at, usable in self.view_changes:
            if at > t:
                break
            state = usable
        return state


def cause_rank(causes: Sequence[str]) -> dict[str, int]:
    """Each cause's place in report order, the tie-break of :func:`cause_of`."""
    return {c: i for i, c in enumerate(causes)}


def cause_of(rep: Repayment, read: Read, rank: Mapping[str, int]) -> str:
    """The one cause a stale read is attributed to (see the module docstring); ``rank``
    is :func:`cause_rank` of every cause."""
    if rep.view_usable(read.t):
        return CACHE
    best = None
    for touch in rep.touches:
        if touch.at <= read.t and (
            best is None
            or touch.added > best.added
            or (touch.added == best.added and rank[touch.cause] < rank[best.cause])
        ):
            best = touch
    return QUEUEING if best is None else best.cause
