"""The SimPy model of the repayment pipeline (docs/SEMANTICS.md).

:func:`sim.runner.run_model` runs a scenario's replications and returns the result
record; :func:`sim.runner.run_replication` runs one and returns its collector state.
Stages live in :mod:`sim.pipeline`, fault injectors in :mod:`sim.faults`, the user's
reads in :mod:`sim.users`.
"""

from __future__ import annotations

__all__ = ["run_model", "run_replication"]


def __getattr__(name: str):  # lazy: importing ``sim`` stays cheap for the CLI
    if name in __all__:
        from sim import runner

        return getattr(runner, name)
    raise AttributeError(name)
