"""Fault type ``unversioned_writes``: status writes land without their version check, so an older one can put an account's view back (docs/explanation/semantics.md, rule 14a).

With several repayments of one account in flight, the sync pool may finish a newer one
before an older one. The view normally keeps the sequence of the last write it applied and
never applies an older one over it (writes are versioned). While this fault is in force —
a release that dropped the version check, a consumer that writes whatever it holds — every
view write is applied as it comes: an older write landing after a newer one moves the view
back, and the repayments the newer write had shown usable read "unusable" again until a
later write or a reconcile sweep puts it right. Those reads are stale, blamed on this fault
(until repaired), and each such write counts in ``view_regressions``.

It acts only where repayments share accounts (``workload.accounts``); with every repayment
on an account of its own no write is older than the one before it.
"""

from __future__ import annotations

from typing import Any, Literal, Sequence

from repaychaos.scenarios.faults.base import FaultBase
from repaychaos.scenarios.faults.hooks import WRITE, Hook, LiveAPI, LiveFault, LiveMessage, LiveRule, ModelInjector

__all__ = ["UnversionedWrites", "SPEC", "LABEL", "COLOUR", "ORDER", "MODEL", "LIVE", "EXAMPLE",
           "EXAMPLE_DESCRIPTION", "MEANINGS"]

ORDER = 7
LABEL = "unversioned writes"
COLOUR = "#2f6f8f"

#: The type has no keys of its own beyond its window.
MEANINGS: dict[str, str] = {}

#: The reference's runnable example (its ``faults`` and ``slo``; tests run it through the model).
EXAMPLE_DESCRIPTION = ("A consumer release drops the version check on status writes for 20 minutes, so an older"
                       " repayment's write can put its account's view back (with workload.accounts).")
EXAMPLE = """faults:
  - type: unversioned_writes
    name: no-version-check
    at: 10m
    for: 20m
slo:
  stale_reads_by_cause.unversioned_writes: "== 0"
"""


class UnversionedWrites(FaultBase):
    """Status writes are applied without their version check: an older one can move an account's view back."""

    type: Literal["unversioned_writes"]


SPEC = UnversionedWrites


class UnversionedWritesInjector(ModelInjector):
    """The model: a view write inside a window is marked unguarded; the account's view
    (:func:`repaychaos.semantics.account_views`) applies it whatever its sequence."""

    fault: UnversionedWrites

    def hooks(self) -> list[tuple[Hook, float, float]]:
        return [(WRITE, s, e) for s, e in self.windows]

    def write(self, msg: Any, t: float) -> None:
        if msg.unguarded is None:
            msg.unguarded = self.fault.type

    @classmethod
    def fast_engine_refuses(cls, faults: Sequence[Any]) -> str | None:
        # It acts at the write only, draws nothing and schedules nothing: the fast engine's
        # per-message code computes it as the event engine does.
        return None


class UnversionedWritesRule(LiveRule):
    """The service: a view write inside a window is marked unguarded; the service's account
    view (:func:`repaychaos.semantics.account_views`, as the model's) applies it whatever
    its sequence."""

    target_refuses = ("target mode cannot remove the version check of another service's status writes; "
                      "run it against the reference service")


    def write(self, api: LiveAPI, active: LiveFault, msg: LiveMessage, t: float) -> bool:
        if msg.trace.unguarded is None:
            msg.trace.unguarded = active.type
        return False


MODEL = UnversionedWritesInjector
LIVE = UnversionedWritesRule()
