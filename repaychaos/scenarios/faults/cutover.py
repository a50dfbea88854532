"""Fault type ``cutover``: traffic moves to a new system (docs/explanation/semantics.md, rule 8).

At ``at`` every message in flight (acked before ``at``, not yet written) is lost with
``inflight_loss_ratio``; a view write inside the window is mis-mapped with
``unmapped_ratio`` and shows the opposite of the truth
(:func:`repaychaos.semantics.written_state`). Both last until the view is repaired.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Literal

from repaychaos.scenarios.faults.base import FaultBase, Ratio
from repaychaos.scenarios.faults.hooks import (SETTLE, U_CUT_LOSS, U_UNMAPPED, WRITE, Hook, LiveAPI, LiveFault,
                                               LiveMessage, LiveRule, ModelInjector)
from repaychaos.semantics import written_state

__all__ = ["Cutover", "SPEC", "LABEL", "COLOUR", "ORDER", "MODEL", "LIVE", "EXAMPLE", "EXAMPLE_DESCRIPTION", "MEANINGS", "written_state"]

_INF = math.inf

ORDER = 4
LABEL = "cutover"
COLOUR = "#00798c"

#: What the type's own keys mean (the scenario reference).
MEANINGS = {
    "inflight_loss_ratio": "Share of messages in flight at the switch that are lost.",
    "unmapped_ratio": "Share of accounts the new system mis-maps (stale until reconcile).",
}

#: The reference's runnable example (its ``faults`` and ``slo``; tests run it through the model).
EXAMPLE_DESCRIPTION = "Traffic moves to a new credit platform."
EXAMPLE = """faults:
  - type: cutover
    at: 15m
    inflight_loss_ratio: 50%
    unmapped_ratio: 0.2%
slo:
  lost_repayments: "== 0"
"""

class Cutover(FaultBase):
    """Traffic moves to a new system: in-flight messages may be lost, accounts mis-mapped."""

    type: Literal["cutover"]
    inflight_loss_ratio: Ratio = 0.0
    unmapped_ratio: Ratio = 0.0


SPEC = Cutover


class CutoverInjector(ModelInjector):
    """The model: writes in the window may be mis-mapped; at the switch, messages in flight
    (queued ones at once, the rest when they would be written) may be lost."""

    fault: Cutover

    def hooks(self) -> list[tuple[Hook, float, float]]:
        out: list[tuple[Hook, float, float]] = []
        for s, e in self.windows:
            out.append((WRITE, s, e))
            out.append((SETTLE, s, _INF))
        return out

    def write(self, msg: Any, t: float) -> None:
        if msg.u[U_UNMAPPED] < self.fault.unmapped_ratio:
            msg.bad = True
            msg.touch_until_repair("cutover", t)

    def settle(self, msg: Any, t: float) -> None:
        # Written after the switch: was it in flight there?
        at = self.fault.at
        if msg.ack < at and not msg.lost and msg.u[U_CUT_LOSS] < self.fault.inflight_loss_ratio:
            msg.lost = True
            msg.touch_until_repair("cutover", at)

    def placed(self) -> None:
        for s, _ in self.windows:
            self.model.at(s, self._switch, s)

    def _switch(self, at: float) -> None:
        # Queued messages lost at the switch never reach a worker of the new system.
        ratio = self.fault.inflight_loss_ratio
        if not ratio:
            return

        def lost(msg: Any) -> bool:
            if msg.ack < at and msg.u[U_CUT_LOSS] < ratio:
                msg.lost = True
                msg.touch_until_repair("cutover", at)
                return True
            return False

        self.model.lose_waiting(lost, at)


class CutoverRule(LiveRule):
    """The service: the same two draws, from the decision stream; the switch happens at its
    instant (:meth:`LiveAPI.at`: writes due before it are applied first)."""

    def write(self, api: LiveAPI, active: LiveFault, msg: LiveMessage, t: float) -> bool:
        if api.rng.random() < active.fault.unmapped_ratio:
            msg.touch_until_repair("cutover", t)
            return True
        return False

    def placed(self, api: LiveAPI, active: LiveFault) -> None:
        for start, _end in active.windows:
            api.at(start, functools.partial(self._switch, api, active))

    @staticmethod
    def _switch(api: LiveAPI, active: LiveFault, start: float) -> None:
        if not any(s == start for s, _ in active.windows):
            return  # ended before the switch
        ratio = active.fault.inflight_loss_ratio
        for msg in api.inflight():
            if not msg.lost and msg.trace.acked_at < start and api.rng.random() < ratio:
                msg.lost = True
                msg.touch_until_repair("cutover", start)


MODEL = CutoverInjector
LIVE = CutoverRule()
