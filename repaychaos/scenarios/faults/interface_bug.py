"""Fault type ``interface_bug``: a link that loses or corrupts messages (docs/explanation/semantics.md, rule 6).

Every bug in force on a link judges each passing message with its own uniform draw
(:func:`repaychaos.semantics.judge_bug`); a corrupting link flips the state the message
carries (:func:`repaychaos.semantics.flip`). The damage lasts until the view is repaired.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import model_validator

from repaychaos.scenarios.faults.base import FaultBase, Ratio
from repaychaos.scenarios.faults.hooks import (LINK, U_LINK, Hook, LiveAPI, LiveFault, LiveMessage, LiveRule, ModelAPI,
                                               ModelInjector)
from repaychaos.semantics import CORRUPT, DROP, flip, judge_bug

__all__ = ["InterfaceBug", "SPEC", "LABEL", "COLOUR", "ORDER", "MODEL", "LIVE", "EXAMPLE", "EXAMPLE_DESCRIPTION", "MEANINGS", "judge_bug", "flip"]

ORDER = 3
LABEL = "interface bug"
COLOUR = "#6a4c93"

#: What the type's own keys mean (the scenario reference).
MEANINGS = {
    "link": "Which link between stages misbehaves.",
    "drop_ratio": "Share of messages on the link that are dropped (only reconcile repairs them).",
    "corrupt_ratio": "Share of messages on the link that carry the wrong state.",
}

#: The reference's runnable example (its ``faults`` and ``slo``; tests run it through the model).
EXAMPLE_DESCRIPTION = "A client drops 5% of messages."
EXAMPLE = """faults:
  - type: interface_bug
    link: sync->credit
    at: 5m
    for: 15m
    drop_ratio: 5%
slo:
  time_to_usable.p99: "< 15m"
"""

class InterfaceBug(FaultBase):
    """A share of messages on one link are dropped or carry the wrong state."""

    type: Literal["interface_bug"]
    link: Literal["ledger->sync", "sync->credit", "credit->view"]
    drop_ratio: Ratio = 0.0
    corrupt_ratio: Ratio = 0.0

    @model_validator(mode="after")
    def _shares(self) -> "InterfaceBug":
        if self.drop_ratio + self.corrupt_ratio > 1.0:
            raise ValueError("drop_ratio + corrupt_ratio <= 1")
        return self


SPEC = InterfaceBug


class InterfaceBugInjector(ModelInjector):
    """The model: each bug judges a message with its own uniform. The first bug on a link
    uses the repayment's pre-drawn link uniform (common random numbers); any further bug on
    the same link draws its own from the fault stream."""

    fault: InterfaceBug

    def __init__(self, fault: InterfaceBug, label: str, model: ModelAPI):
        super().__init__(fault, label, model)
        self._slot = U_LINK[fault.link]
        self._drop = fault.drop_ratio
        self._corrupt = fault.corrupt_ratio
        self._own_draw = not model.claim_link_draw(fault.link)
        self._draw = model.rng.random

    def hooks(self) -> list[tuple[Hook, float, float]]:
        return [(LINK[self.fault.link], s, e) for s, e in self.windows]

    def link(self, link: str, msg: Any, t: float) -> None:
        if msg.dropped:
            return
        u = self._draw() if self._own_draw else msg.u[self._slot]
        outcome = judge_bug(u, self._drop, self._corrupt)
        if outcome is DROP:
            msg.dropped = True
            msg.touch_until_repair("interface_bug", t)
        elif outcome is CORRUPT:
            msg.bad = flip(msg.bad)
            msg.touch_until_repair("interface_bug", t)


class InterfaceBugRule(LiveRule):
    """The service: the same judgement with a draw of the decision stream."""

    def link(self, api: LiveAPI, active: LiveFault, msg: LiveMessage, link: str, t: float) -> bool:
        fault = active.fault
        if fault.link != link:
            return False
        outcome = judge_bug(api.rng.random(), fault.drop_ratio, fault.corrupt_ratio)
        if outcome is None:
            return False
        msg.touch_until_repair("interface_bug", t)
        if outcome is CORRUPT:
            msg.bad = flip(msg.bad)
        return outcome is DROP


MODEL = InterfaceBugInjector
LIVE = InterfaceBugRule()
