"""Fault type ``cutover``: traffic moves to a new system (SEMANTICS 8).

At ``at`` every message in flight (acked before ``at``, not yet written) is lost with
``inflight_loss_ratio``; a view write inside the window is mis-mapped with
``unmapped_ratio`` and shows the opposite of the truth
(:func:`repaychaos.semantics.written_state`). Both last until the view is repaired.
"""

from __future__ import annotations

from typing import Literal

from repaychaos.scenarios.faults.base import FaultBase, Ratio
from repaychaos.semantics import written_state

__all__ = ["Cutover", "SPEC", "LABEL", "COLOUR", "ORDER", "written_state"]

ORDER = 4
LABEL = "cutover"
COLOUR = "#00798c"


class Cutover(FaultBase):
    """Traffic moves to a new system: in-flight messages may be lost, accounts mis-mapped."""

    type: Literal["cutover"]
    inflight_loss_ratio: Ratio = 0.0
    unmapped_ratio: Ratio = 0.0


SPEC = Cutover
