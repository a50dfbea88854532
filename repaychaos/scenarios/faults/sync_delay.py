"""Fault type ``sync_delay``: slow consumers (SEMANTICS 3, 3a).

Each sync message whose service *starts* inside the window takes ``extra`` longer (one
draw of ``extra`` per message); the queue that builds behind slowed workers is blamed on
this fault too. Both engines draw ``extra`` with :meth:`SyncDelay.extra` ``.sampler``.
"""

from __future__ import annotations

from typing import Literal

from repaychaos.scenarios.distributions import Distribution
from repaychaos.scenarios.faults.base import FaultBase

__all__ = ["SyncDelay", "SPEC", "LABEL", "COLOUR", "ORDER"]

ORDER = 1
LABEL = "sync delay"
COLOUR = "#e6a100"


class SyncDelay(FaultBase):
    """Each sync message whose service starts in the window takes ``extra`` longer."""

    type: Literal["sync_delay"]
    extra: Distribution


SPEC = SyncDelay
