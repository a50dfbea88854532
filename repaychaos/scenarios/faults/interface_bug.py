"""Fault type ``interface_bug``: a link that loses or corrupts messages (SEMANTICS 6).

Every bug in force on a link judges each passing message with its own uniform draw
(:func:`repaychaos.semantics.judge_bug`); a corrupting link flips the state the message
carries (:func:`repaychaos.semantics.flip`). The damage lasts until the view is repaired.
"""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from repaychaos.scenarios.faults.base import FaultBase, Ratio
from repaychaos.semantics import flip, judge_bug

__all__ = ["InterfaceBug", "SPEC", "LABEL", "COLOUR", "ORDER", "judge_bug", "flip"]

ORDER = 3
LABEL = "interface bug"
COLOUR = "#6a4c93"


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
