"""The SimPy model of the repayment pipeline (docs/SEMANTICS.md).

:func:`repaychaos.sim.runner.run_model` runs a scenario's replications and returns the result
record; :func:`repaychaos.sim.runner.run_replication` runs one and returns its collector state.
Stages live in :mod:`repaychaos.sim.pipeline`, fault injectors in :mod:`repaychaos.sim.faults`, the user's
reads in :mod:`repaychaos.sim.users`.
"""

from __future__ import annotations

__all__ = ["run_model", "run_replication"]


def __getattr__(name: str):  # lazy: importing ``sim`` stays cheap for the CLI
    if name in __all__:
        from repaychaos.sim import runner

        return getattr(runner, name)
    raise AttributeError(name)
