"""A repayment's record in the service (:class:`Trace`) and its outbox message (:class:`Message`).

The trace is the truth the load test's metrics are computed from: ack time, risk hold,
every view change, every fault that touched the message and how much delay it added, in
scenario seconds (exported by ``GET /chaos/trace``).
"""

from __future__ import annotations

import math

from repaychaos.semantics import AccountRepayment, repaired_at, until_repair, view_at

__all__ = ["Trace", "Message"]


class Trace:
    """What happened to one repayment, in scenario seconds (see module docstring).

    ``touches`` are faults with a known added delay; ``pending`` are faults whose delay lasts
    until the view is repaired (``(cause, at)``, as the model's ``Msg.pending``), resolved
    from the view history when the trace is read (:meth:`resolved_touches`)."""

    __slots__ = ("id", "account", "acked_at", "held", "changes", "touches", "pending", "read_unusable_at",
                 "seq", "written_at", "wrong", "kept_until", "unguarded")

    def __init__(self, rep_id: str, account: str, acked_at: float, held: bool):
        self.id = rep_id
        self.account = account
        self.acked_at = acked_at
        self.held = held
        self.changes: list[tuple[float, bool]] = []
        self.touches: list[tuple[str, float, float]] = []
        self.pending: list[tuple[str, float]] = []
        #: the last instant a read of the account was answered "unusable" (Timeline.add_due)
        self.read_unusable_at = -math.inf
        #: with ``workload.accounts`` (docs/explanation/semantics.md, 14): the ledger's sequence
        #: on the account, the instant of its own view write (None: none yet), whether that write
        #: showed the opposite of the truth, until when a rule lag keeps the account, and the
        #: fault that removed the write's version check
        self.seq = 0
        self.written_at: float | None = None
        self.wrong = False
        self.kept_until: float | None = None
        self.unguarded: str | None = None

    def touch(self, cause: str, at: float, added: float) -> None:
        self.touches.append((cause, at, added))

    def touch_until_repair(self, cause: str, at: float) -> None:
        """A fault whose added delay is the wait until the view is finally right."""
        self.pending.append((cause, at))

    def resolved_touches(self) -> list[tuple[str, float, float]]:
        """The touches, then each pending one with its delay until the view was finally right
        (:func:`repaychaos.semantics.until_repair`; dropped if it already was)."""
        out = list(self.touches)
        if self.pending:
            repaired = repaired_at(not self.held, self.changes)
            for cause, at in self.pending:
                added = until_repair(at, repaired)
                if added is not None:
                    out.append((cause, at, added))
        return out

    def view_at(self, t: float) -> bool:
        return view_at(self.changes, t)

    def facts(self) -> AccountRepayment:
        """The repayment as its account's view needs it (docs/explanation/semantics.md, 14)."""
        return AccountRepayment(self.acked_at, self.held, self.written_at, self.wrong, self.kept_until,
                                self.unguarded)


class Message:
    """One outbox event travelling through the stages."""

    __slots__ = ("id", "account", "held", "bad", "lost", "enqueued", "trace", "in_sync")

    def __init__(self, trace: Trace, enqueued: float):
        self.id = trace.id
        self.account = trace.account
        self.held = trace.held
        #: carries the wrong state (an odd number of corruptions; the model's ``Msg.bad``)
        self.bad = False
        self.lost = False
        self.enqueued = enqueued
        self.trace = trace
        self.in_sync = False

    def touch(self, cause: str, at: float, added: float) -> None:
        self.trace.touch(cause, at, added)

    def touch_until_repair(self, cause: str, at: float) -> None:
        self.trace.touch_until_repair(cause, at)
