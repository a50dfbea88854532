"""The model's fault injectors: one per scenario fault, of the class its type registers.

Each fault type's module (:mod:`repaychaos.scenarios.faults`) holds its model behaviour
as a :class:`~repaychaos.scenarios.faults.hooks.ModelInjector` subclass (``MODEL``); this
module only builds one per fault of a scenario. An injector says at which pipeline
points (:data:`POINTS`) and in which windows it is in force; the stage at that point
calls its ``apply`` for a message passing while the window is open. It reaches the model
only through :class:`~repaychaos.sim.event_engine.InjectorAPI`. See docs/explanation/semantics.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from repaychaos.scenarios.faults import REGISTRY
from repaychaos.scenarios.faults.hooks import POINTS, ModelInjector
from repaychaos.semantics import REJECT_RETRY

if TYPE_CHECKING:  # pragma: no cover
    from repaychaos.scenarios import Scenario
    from repaychaos.scenarios.faults.hooks import ModelAPI

__all__ = ["REJECT_RETRY", "build_injectors", "POINTS"]


def build_injectors(scenario: Scenario, model: ModelAPI) -> list[ModelInjector]:
    """One injector per fault of the scenario, in scenario order."""
    out = []
    for index, fault in enumerate(scenario.faults):
        registered = REGISTRY.get(fault.type)
        if registered is None:  # the scenario model only admits known types; guard the registry anyway
            raise NotImplementedError(f"no injector for fault type {fault.type!r}")
        out.append(registered.model(fault, scenario.fault_label(index), model))
    return out
