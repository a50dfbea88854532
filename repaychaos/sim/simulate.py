"""Run a scenario through the model: its replications on the one executor, one result record.

Each replication is independent (its own random streams from ``(seed, index)``) and
returns a bounded :class:`~repaychaos.core.collector.CollectorState`; states are merged in
replication order, so the ``metrics`` of the result are byte-identical for the same
scenario and seed whatever the number of processes or where they run
(:mod:`repaychaos.sim.executor`: this process, a local pool, or a Dask cluster).
"""

from __future__ import annotations

import os
import platform
import time

from repaychaos.core.errors import InvalidOption, RepaychaosError, RunFailed
from repaychaos.core.collector import CollectorState, finalize
from repaychaos.core.result import build_result
from repaychaos.core.types import ResultRecord
from repaychaos.scenarios import Scenario
from repaychaos.sim.executor import DEFAULT_ENGINE, Task, engine_class, open_backend, replicate

__all__ = ["run_replication", "run_model"]


def run_replication(scenario: Scenario, seed: int, index: int) -> CollectorState:
    """Replication ``index`` of ``scenario`` with base ``seed``: its collector state."""
    return replicate(scenario, seed, index).state


def _versions() -> dict[str, str]:
    import simpy

    import repaychaos

    return {"python": platform.python_version(), "simpy": simpy.__version__, "repaychaos": repaychaos.__version__}


def run_model(scenario: Scenario, *, seed: int | None = None, replications: int | None = None,
              processes: int | None = None, scheduler: str | None = None, progress: bool | None = None,
              fail_on_inconclusive: bool = True, engine: str = DEFAULT_ENGINE) -> ResultRecord:
    """Run ``scenario``'s replications (defaults from the scenario) and build the result record.

    Replications run in a process pool of ``processes`` workers (default
    ``min(replications, os.cpu_count())``; with one they run in this process), or on the
    Dask cluster at ``scheduler``. ``engine`` is ``fast`` (the default) or ``events``
    (:data:`repaychaos.sim.executor.ENGINES`); both give the same metrics.
    """
    engine_class(scenario, engine)  # an unknown engine is bad input before anything runs
    seed = scenario.seed if seed is None else int(seed)
    replications = scenario.replications if replications is None else int(replications)
    if replications < 1:
        raise InvalidOption(f"--replications must be at least 1, got {replications}")
    if processes is None:
        processes = min(replications, os.cpu_count() or 1)
    if processes < 1:
        raise InvalidOption(f"processes must be at least 1, got {processes}")
    processes = min(processes, replications)
    tasks = [Task(scenario, seed, i, f"model run of {scenario.name}", engine) for i in range(replications)]
    started = time.perf_counter()
    try:
        with open_backend(processes, scheduler, progress, desc=f"sim {scenario.name}") as backend:
            outputs = backend.run(tasks)
            where = {"backend": backend.name, "workers": backend.workers}
    except (KeyboardInterrupt, RepaychaosError):
        raise
    except Exception as exc:  # a crashed replication is a failed run, not a traceback
        raise RunFailed(f"model run of {scenario.name} failed: {type(exc).__name__}: {exc}") from exc
    wall = time.perf_counter() - started
    simulated = sum(r.simulated for r in outputs)
    run = {
        "wall_seconds": round(wall, 3),
        "repayments_simulated": simulated,
        "repayments_per_second": round(simulated / wall, 1) if wall > 0 else None,
        "processes": processes if scheduler is None else None,
        "engine": engine_class(scenario, engine).ENGINE,
        **where,
        "versions": _versions(),
    }
    return build_result(scenario, "sim", seed, finalize([r.state for r in outputs]), replications=replications,
                        run=run, fail_on_inconclusive=fail_on_inconclusive)
