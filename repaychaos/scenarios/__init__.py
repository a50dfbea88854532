"""Scenario files: the library of bundled scenarios and the one loader that validates them.

Everything downstream receives a :class:`Scenario`, never a raw dict.
"""

from repaychaos.scenarios.loader import load_scenario, load_scenario_data, resolve_scenario, with_overrides
from repaychaos.scenarios.library import bundled_scenarios, bundled_path
from repaychaos.scenarios.spec import Scenario

__all__ = [
    "Scenario",
    "load_scenario",
    "load_scenario_data",
    "resolve_scenario",
    "with_overrides",
    "bundled_scenarios",
    "bundled_path",
]
