"""Fault type ``rule_lag``: a credit rule that should not apply holds repaid accounts (docs/explanation/semantics.md, rule 2a).

A rule change deployed at ``at`` and rolled back at ``at + for`` holds a share
``hold_ratio`` of the repayments the credit rules would release: their view write inside
the window shows unusable although the ledger says usable. The account stays held — a
reconcile sweep leaves it as the credit system decided — until the first sweep at or after
the rollback sets its view to the truth. Every read in between is stale, and blamed on
this fault (until repaired). A legitimate risk hold (``credit.risk_hold_ratio``) is not
this: its truth is unusable, so its reads are never stale.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Sequence

from repaychaos.scenarios.faults.base import FaultBase, Ratio
from repaychaos.scenarios.faults.hooks import (U_HOLD, WRITE, Hook, LiveAPI, LiveFault, LiveMessage, LiveRule, ModelAPI,
                                               ModelInjector)

__all__ = ["RuleLag", "SPEC", "LABEL", "COLOUR", "ORDER", "MODEL", "LIVE", "EXAMPLE", "EXAMPLE_DESCRIPTION", "MEANINGS",
           "caught"]

ORDER = 5
LABEL = "rule lag"
COLOUR = "#8a5a00"

#: What the type's own keys mean (the scenario reference).
MEANINGS = {
    "hold_ratio": ("Share of the repayments the credit rules would release that the wrong rule holds when their"
                   " status is written in the window (stale until the first reconcile sweep at or after the"
                   " rollback at `at + for`)."),
}

#: The reference's runnable example (its ``faults`` and ``slo``; tests run it through the model).
EXAMPLE_DESCRIPTION = "A stricter credit rule holds 5% of repaid accounts for half an hour before it is rolled back."
EXAMPLE = """faults:
  - type: rule_lag
    name: strict-rule
    at: 10m
    for: 30m
    hold_ratio: 5%
slo:
  stale_reads_by_cause.rule_lag: "== 0"
"""

#: The name under which the first rule lag claims the repayment's hold uniform.
_DRAW = "credit rule"


class RuleLag(FaultBase):
    """A credit rule that should not apply holds a share of repaid accounts until it is rolled back."""

    type: Literal["rule_lag"]
    hold_ratio: Ratio


SPEC = RuleLag


def caught(u: float, risk_hold_ratio: float, hold_ratio: float) -> bool:
    """Does the rule hold a repayment whose hold uniform is ``u``? The risk hold takes
    ``u < risk_hold_ratio``; the rule takes the next ``hold_ratio`` share of the rest, so it
    holds exactly that share of the repayments the credit rules release."""
    return risk_hold_ratio <= u < risk_hold_ratio + hold_ratio * (1.0 - risk_hold_ratio)


class RuleLagInjector(ModelInjector):
    """The model: at the view write, a repayment the rule catches is kept unusable until
    the first sweep at or after the rollback (the window's end). The first rule lag of a
    scenario decides with the repayment's hold uniform (common random numbers with the risk
    hold); any further one draws its own from the fault stream."""

    fault: RuleLag

    def __init__(self, fault: RuleLag, label: str, model: ModelAPI):
        super().__init__(fault, label, model)
        self._own_draw = not model.claim_link_draw(_DRAW)
        self._draw = model.rng.random
        self._risk = model.risk_hold_ratio

    def hooks(self) -> list[tuple[Hook, float, float]]:
        return [(WRITE, s, e) for s, e in self.windows]

    def write(self, msg: Any, t: float) -> None:
        if msg.held:
            return
        if self._own_draw:
            hit = self._draw() < self.fault.hold_ratio
        else:
            hit = caught(msg.u[U_HOLD], self._risk, self.fault.hold_ratio)
        if hit:
            _start, end = self.window_at(t)
            msg.kept_until = end if msg.kept_until is None else max(msg.kept_until, end)
            msg.touch_until_repair("rule_lag", t)

    @classmethod
    def fast_engine_refuses(cls, faults: Sequence[Any]) -> str | None:
        # One rule lag decides with the pre-drawn hold uniform; a second draws from the fault
        # stream in the order writes happen, which the fast engine does not reproduce.
        return "two rule lags (the second draws from the fault stream)" if len(faults) > 1 else None


class RuleLagRule(LiveRule):
    """The service: the same decision with a draw of the decision stream at the write; a
    sweep inside the window leaves the accounts it caught held."""

    def __init__(self) -> None:
        #: per placed fault (by identity): account -> (write instant, message) of what it caught
        self._caught: dict[int, tuple[LiveFault, dict[str, tuple[float, LiveMessage]]]] = {}

    def write(self, api: LiveAPI, active: LiveFault, msg: LiveMessage, t: float) -> bool:
        if msg.held or not api.rng.random() < active.fault.hold_ratio:
            return False
        msg.touch_until_repair("rule_lag", t)
        self._caught.setdefault(id(active), (active, {}))[1][msg.account] = (t, msg)
        window = active.window_at(t)
        if window is not None:  # an account's view keeps it until the rollback (semantics 14)
            kept = msg.trace.kept_until
            msg.trace.kept_until = window[1] if kept is None else max(kept, window[1])
        return True  # the write shows the opposite of the truth: unusable

    def keeps(self, active: LiveFault, account: str, t: float) -> bool:
        entry = self._caught.get(id(active))
        if entry is None:
            return False
        caught_here = entry[1]
        if active.window_at(t) is None:
            if t >= max((e for _, e in active.iter_windows()), default=-math.inf):
                del self._caught[id(active)]  # rolled back: nothing is held any more
            return False
        found = caught_here.get(account)
        return found is not None and found[0] <= t and not found[1].lost


MODEL = RuleLagInjector
LIVE = RuleLagRule()
