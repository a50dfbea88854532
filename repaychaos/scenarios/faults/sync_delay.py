"""Fault type ``sync_delay``: slow consumers (docs/explanation/semantics.md, rules 3, 3a).

Each sync message whose service *starts* inside the window takes ``extra`` longer (one
draw of ``extra`` per message); the queue that builds behind slowed workers is blamed on
this fault too. Both engines draw ``extra`` with :meth:`SyncDelay.extra` ``.sampler``.
"""

from __future__ import annotations

from typing import Any, Literal

from repaychaos.scenarios.distributions import Distribution
from pydantic import field_validator

from repaychaos.scenarios.faults.base import FaultBase, bounded_delay
from repaychaos.scenarios.faults.hooks import (SYNC_START, Hook, LiveAPI, LiveFault, LiveMessage, LiveRule, ModelAPI,
                                               ModelInjector)

__all__ = ["SyncDelay", "SPEC", "LABEL", "COLOUR", "ORDER", "MODEL", "LIVE", "EXAMPLE", "EXAMPLE_DESCRIPTION", "MEANINGS"]

ORDER = 1
LABEL = "sync delay"
COLOUR = "#e6a100"

#: What the type's own keys mean (the scenario reference).
MEANINGS = {
    "extra": "Extra time added to each sync message whose service starts in the window.",
}

#: The reference's runnable example (its ``faults`` and ``slo``; tests run it through the model).
EXAMPLE_DESCRIPTION = "A slow consumer for ten minutes."
EXAMPLE = """faults:
  - type: sync_delay
    at: 10m
    for: 10m
    extra: {dist: pareto, scale: 2s, shape: 1.5}
slo:
  stale_read_ratio@sync_delay: "< 5%"
"""

class SyncDelay(FaultBase):
    """Each sync message whose service starts in the window takes ``extra`` longer."""

    type: Literal["sync_delay"]
    extra: Distribution

    @field_validator("extra")
    @classmethod
    def _bounded(cls, extra: Any) -> Any:
        return bounded_delay(extra)


SPEC = SyncDelay


class SyncDelayInjector(ModelInjector):
    """The model: the message's service gets ``extra`` (from the fault stream)."""

    fault: SyncDelay

    def __init__(self, fault: SyncDelay, label: str, model: ModelAPI):
        super().__init__(fault, label, model)
        self._extra = fault.extra.sampler(model.rng)

    def hooks(self) -> list[tuple[Hook, float, float]]:
        return [(SYNC_START, s, e) for s, e in self.windows]

    def sync_start(self, msg: Any, t: float) -> float:
        extra: float = self._extra()
        msg.touch("sync_delay", t, extra)
        if extra:
            self.model.slows_pool("sync_delay")
        return extra


class SyncDelayRule(LiveRule):
    """The service: the worker holds the message ``extra`` longer."""

    def sync_start(self, api: LiveAPI, active: LiveFault, msg: LiveMessage, t: float) -> float:
        extra: float = active.fault.extra.sampler(api.faults_rng)()
        msg.trace.touch("sync_delay", t, extra)
        if extra > 0:
            api.slows_pool("sync_delay")
        return extra


MODEL = SyncDelayInjector
LIVE = SyncDelayRule()
