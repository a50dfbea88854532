"""The SimPy model of the repayment pipeline (docs/explanation/semantics.md).

:func:`repaychaos.sim.simulate.run_model` runs a scenario's replications and returns the result
record; :func:`repaychaos.sim.simulate.run_replication` runs one and returns its collector state.
Stages live in :mod:`repaychaos.sim.event_engine`, fault injectors in :mod:`repaychaos.sim.injectors`, the user's
reads in :mod:`repaychaos.sim.users`.
"""

from __future__ import annotations

__all__ = ["run_model", "run_replication"]


def __getattr__(name: str):  # lazy: importing ``sim`` stays cheap for the CLI
    if name in __all__:
        from repaychaos.sim import runner

        return getattr(runner, name)
    raise AttributeError(name)
