"""Fault type ``phantom_record``: an external interface writes debts nobody owes (docs/explanation/semantics.md, rule 10b).

While it is in force, an external interface — a retried batch from a payment partner, a
collection system creating repayment tasks — writes ``rate`` phantom repayment records per
second, each onto the account of a holder who made no repayment. The account's truth is
usable, but its view shows a debt, "unusable", from the write until the first reconcile
sweep at or after it sets the view to the truth; with reconcile off, for the rest of the
run. Stopping the interface writes no more, but what it wrote stays until a sweep. The app
tells the holder of the new debt, and the holder looks at the account ``holder_looks``
after the write, stopping at the first look that shows usable: every look before the sweep
is a stale read blamed on this fault.

The writes are at a steady rate, in the middle of each ``1 / rate`` slot of the window
(:func:`repaychaos.semantics.phantom_writes`): they draw nothing, so the repayments' own
draws are what they are without the fault, and both engines compute the same holders. The
reference service writes the ``k``-th record on the account :func:`account` names, and the
load side, naming the same accounts at the same instants from the scenario alone, plays
their holders (:meth:`PhantomRecordRule.holders`).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Iterable, Iterator, Literal, Sequence

from pydantic import BeforeValidator, Field, field_validator

from repaychaos.core.records import Read
from repaychaos.scenarios.distributions import Duration
from repaychaos.scenarios.faults.base import MAX_DELAY, FaultBase
from repaychaos.scenarios.faults.hooks import Hook, LiveAPI, LiveFault, LiveRule, ModelAPI, ModelInjector
from repaychaos.scenarios.units import parse_rate
from repaychaos.semantics import holder_reads, phantom_writes

__all__ = ["PhantomRecord", "SPEC", "LABEL", "COLOUR", "ORDER", "MODEL", "LIVE", "EXAMPLE", "EXAMPLE_DESCRIPTION",
           "MEANINGS", "MAX_RATE", "MAX_LOOKS", "account"]

ORDER = 6
LABEL = "phantom record"
COLOUR = "#b8004f"

#: Fastest phantom write rate a fault may state, per second: every write is one holder
#: whose looks the model computes, so the rate bounds the work of a run.
MAX_RATE = 100.0
#: Most looks a holder may take after a write.
MAX_LOOKS = 20

#: What the type's own keys mean (the scenario reference).
MEANINGS = {
    "rate": ("Phantom repayment records the external interface writes per second while in force, each on the"
             " account of a holder who did not repay, at a steady rate (one in the middle of every `1 / rate`"
             " slot of the window). The account shows unusable from the write until the first reconcile sweep"
             " at or after it."),
    "holder_looks": ("When the account's holder, told of the new debt, looks at the account: delays after the"
                     " write, ascending. The holder stops at the first look that shows usable; every look before"
                     " the repairing sweep is a stale read blamed on `phantom_record`."),
}

#: The reference's runnable example (its ``faults`` and ``slo``; tests run it through the model).
EXAMPLE_DESCRIPTION = ("A partner's retried batch writes a phantom debt every 10 s for 15 minutes; the holders"
                       " look 1, 5 and 15 minutes after the notice.")
EXAMPLE = """faults:
  - type: phantom_record
    name: partner-retries
    at: 5m
    for: 15m
    rate: 6/min
    holder_looks: [1m, 5m, 15m]
slo:
  stale_reads_by_cause.phantom_record: "== 0"
"""


class PhantomRecord(FaultBase):
    """An external interface writes phantom repayment records onto accounts whose holders did not repay."""

    type: Literal["phantom_record"]
    rate: Annotated[float, BeforeValidator(parse_rate)] = Field(gt=0, le=MAX_RATE)
    holder_looks: tuple[Duration, ...] = Field(min_length=1, max_length=MAX_LOOKS)

    @field_validator("holder_looks")
    @classmethod
    def _ascending(cls, looks: tuple[float, ...]) -> tuple[float, ...]:
        if any(later < earlier for earlier, later in zip(looks, looks[1:])):
            raise ValueError("delays after the write in ascending order, e.g. [1m, 5m, 15m]")
        if max(looks) > MAX_DELAY:
            raise ValueError(f"delays of at most {MAX_DELAY:g}s (1d), found {max(looks):g}s")
        return looks


SPEC = PhantomRecord


class PhantomRecordInjector(ModelInjector):
    """The model: no repayment passes it. Before the run it hands the model every holder its
    writes make — the write, the sweep that repairs it and the holder's looks — which are
    known from the scenario alone (arithmetic on the write instants and the sweep times)."""

    fault: PhantomRecord

    def hooks(self) -> list[tuple[Hook, float, float]]:
        return []

    def placed(self) -> None:
        model: ModelAPI = self.model
        looks = self.fault.holder_looks
        for start, end in self.windows:
            for written in phantom_writes(start, end, self.fault.rate, model.horizon):
                repaired = model.next_sweep(written)
                reads = [Read(*look) for look in holder_reads(written, repaired, looks, model.cache_ttl)]
                model.observe_holder(written, repaired, reads, "phantom_record")

    @classmethod
    def fast_engine_refuses(cls, faults: Sequence[Any]) -> str | None:
        # It acts on no repayment and draws nothing: both engines observe the same holders first.
        return None


def account(label: str, k: int) -> str:
    """The account the ``k``-th phantom record of the fault labelled ``label`` is written on:
    the service and the load side name it alike, from the scenario alone. A label's ``#``
    (``type#index``) becomes ``.``: an account is a path segment of the status URL."""
    return f"phantom-{label.replace('#', '.')}-{k}"


class PhantomRecordRule(LiveRule):
    """The service: each write at its instant, through the pipeline's one verb for it; a
    fault ended live writes no more. The load side: each holder's looks (:meth:`holders`)."""

    target_refuses = ("target mode cannot make a service under test write phantom records on accounts the"
                      " holders know; run it through the model or against the reference service")

    def placed(self, api: LiveAPI, active: LiveFault) -> None:
        rate = active.fault.rate
        for start, end in active.iter_windows(since=api.now()):
            writes = enumerate(phantom_writes(start, end, rate, math.inf))
            self._next(api, active, writes)

    def _next(self, api: LiveAPI, active: LiveFault, writes: Iterator[tuple[int, float]]) -> None:
        """Schedule the next write of ``writes`` (one at a time: an endless window is a chain)."""
        nxt = next(writes, None)
        if nxt is None:
            return
        k, t = nxt

        def act(now: float) -> None:
            if active.window_at(t) is None:  # ended live: the interface writes no more
                return
            api.write_phantom(account(active.label, k), t)
            self._next(api, active, writes)

        api.at(t, act)

    def holders(self, fault: Any, label: str, until: float) -> Iterable[tuple[str, float, tuple[float, ...]]]:
        for start, end in fault.windows(until):
            for k, t in enumerate(phantom_writes(start, end, fault.rate, until)):
                yield account(label, k), t, fault.holder_looks


MODEL = PhantomRecordInjector
LIVE = PhantomRecordRule()
