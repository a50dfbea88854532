"""repaychaos: how often, and for how long, users see a stale "unusable" account after repaying.

The package's layers (checked by import-linter, see ``pyproject.toml``), bottom up:
:mod:`repaychaos.core` (the error tree, metric names, the records both sources report, the
collectors, the interval estimators, the result record with its SLO verdicts),
:mod:`repaychaos.scenarios` (the scenario format), the engines :mod:`repaychaos.sim` (the
SimPy model) and :mod:`repaychaos.service` (the reference service) and :mod:`repaychaos.load` (Locust),
:mod:`repaychaos.reports`, and on top :mod:`repaychaos.cli` and
:mod:`repaychaos.pytest_plugin` beside the thin bridges of :mod:`repaychaos.integrations`.
Importing this package imports none of them.
"""

from typing import Any

__all__ = ["__version__", "discover"]
__version__ = "0.1.0"


def discover(discover_system: bool = True) -> dict[str, Any]:
    """Chaos Toolkit's entry point (``chaos discover repaychaos --no-install``): the activities
    of :mod:`repaychaos.integrations.chaostoolkit` (needs the ``chaos`` extra)."""
    # Chaos Toolkit looks for ``discover`` in the distribution's top-level package; imported
    # by name so the package root depends on no layer (sim imports it for the version)
    import importlib

    found: dict[str, Any] = importlib.import_module("repaychaos.integrations.chaostoolkit").discover(discover_system)
    return found
