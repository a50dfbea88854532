"""repaychaos: how often, and for how long, users see a stale "unusable" account after repaying.

The package's layers (checked by import-linter, see ``pyproject.toml``), bottom up:
:mod:`repaychaos.core` (the error tree, metric names, the records both sources report, the
collectors, the interval estimators, the result record with its SLO verdicts),
:mod:`repaychaos.scenarios` (the scenario format), the engines :mod:`repaychaos.sim` (the
SimPy model) and :mod:`repaychaos.service` (the reference service) and :mod:`repaychaos.load` (Locust),
:mod:`repaychaos.reports`, and on top :mod:`repaychaos.cli` and
:mod:`repaychaos.pytest_plugin`. Importing this package imports none of them.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
