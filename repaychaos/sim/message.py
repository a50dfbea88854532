"""One repayment on its way through the pipeline, with everything that happened to it.

All of a repayment's random draws are made when it arrives, in a fixed order, so two
scenarios that differ only in capacity or fault ratios draw the same numbers for the
same repayment (common random numbers).
"""

from __future__ import annotations

from repaychaos.core.records import Touch
from repaychaos.scenarios.faults.hooks import N_UNIFORMS, U_CUT_LOSS, U_HOLD, U_LINK, U_UNMAPPED

__all__ = ["Msg", "U_HOLD", "U_LINK", "U_CUT_LOSS", "U_UNMAPPED", "N_UNIFORMS"]

# Positions in :attr:`Msg.u`, the repayment's decision uniforms, are laid out in
# :mod:`repaychaos.scenarios.faults.hooks` (the fault injectors read them).


class Msg:
    """A repayment and its outbox message; times are scenario seconds."""

    __slots__ = ("id", "ack", "svc", "csvc", "first", "u", "held", "enq", "extra",
                 "touches", "pending", "dropped", "bad", "lost", "kept_until",
                 "second", "finished", "write", "unguarded")

    def __init__(self, id: int, svc: float, csvc: float, first: float, u: tuple[float, ...], held: bool):
        self.id = id
        self.ack = 0.0
        self.svc = svc
        self.csvc = csvc
        self.first = first
        self.u = u
        self.held = held
        self.enq = 0.0
        self.extra = 0.0
        self.touches: list[Touch] | None = None
        self.pending: list[tuple[str, float]] | None = None
        self.dropped = False
        self.bad = False
        self.lost = False
        #: a credit rule holds the account until the first sweep at or after this instant (rule lag)
        self.kept_until: float | None = None
        #: a user's second payment (docs/explanation/semantics.md, 10a): it loads the pipeline, has no reads
        self.second = False
        #: the view history is known (the engine observed it); ``write`` is its view write then
        self.finished = False
        self.write: float | None = None
        #: the cause that removed the view's version guard at its write (None: versioned)
        self.unguarded: str | None = None

    def touch(self, cause: str, at: float, added: float) -> None:
        """Record a fault on this repayment's path that added ``added`` seconds at ``at``."""
        if added > 0:
            if self.touches is None:
                self.touches = []
            self.touches.append(Touch(cause, at, added))

    def touch_until_repair(self, cause: str, at: float) -> None:
        """Record a fault whose added delay is the wait for the repairing reconcile sweep.

        The repair time is only known once the view history is, so it is filled in then.
        """
        if self.pending is None:
            self.pending = []
        self.pending.append((cause, at))
