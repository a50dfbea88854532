"""The model of the repayment pipeline (docs/explanation/semantics.md).

:func:`repaychaos.sim.simulate.run_model` runs a scenario's replications and returns the result
record; :func:`repaychaos.sim.simulate.run_replication` runs one and returns its collector state.
Two engines compute it to the same result: :mod:`repaychaos.sim.fast_engine` (the default:
bulk arrays between the instants that matter) and :mod:`repaychaos.sim.event_engine` (the
event-driven SimPy reference); fault injectors are in :mod:`repaychaos.sim.injectors`, the
per-message stages both share in :mod:`repaychaos.sim.stages`, the user's reads in
:mod:`repaychaos.sim.users`.
"""

from __future__ import annotations

__all__ = ["run_model", "run_replication"]


def __getattr__(name: str):  # lazy: importing ``sim`` stays cheap for the CLI
    if name in __all__:
        from repaychaos.sim import simulate

        return getattr(simulate, name)
    raise AttributeError(name)
