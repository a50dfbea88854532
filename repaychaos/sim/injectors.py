"""The model's fault injectors: one per scenario fault, of the class its type registers.

Each fault type's module (:mod:`repaychaos.scenarios.faults`) holds its model behaviour
as a :class:`~repaychaos.scenarios.faults.hooks.ModelInjector` subclass (``MODEL``); this
module only builds one per fault of a scenario. An injector says at which hooks
(:data:`~repaychaos.scenarios.faults.hooks.HOOKS`) and in which windows it is in force;
the stage at a hook calls the injector's method of that name for a message passing while
the window is open (:mod:`repaychaos.sim.stages`). It reaches the model only through its
:class:`~repaychaos.scenarios.faults.hooks.ModelAPI`. See docs/explanation/semantics.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from repaychaos.scenarios.faults import REGISTRY
from repaychaos.scenarios.faults.hooks import ModelInjector
from repaychaos.semantics import REJECT_RETRY

if TYPE_CHECKING:  # pragma: no cover
    from repaychaos.scenarios import Scenario
    from repaychaos.scenarios.faults.hooks import ModelAPI

__all__ = ["REJECT_RETRY", "build_injectors"]


def build_injectors(scenario: Scenario, model: ModelAPI) -> list[ModelInjector]:
    """One injector per fault of the scenario, in scenario order."""
    out = []
    for index, fault in enumerate(scenario.faults):
        registered = REGISTRY.get(fault.type)
        if registered is None:  # the scenario model only admits known types; guard the registry anyway
            raise NotImplementedError(f"no injector for fault type {fault.type!r}")
        out.append(registered.model(fault, scenario.fault_label(index), model))
    return out
