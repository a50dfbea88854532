"""Run a scenario through the model: replications in parallel, one result record.

Each replication is independent (its own random streams from ``(seed, index)``) and
returns a bounded :class:`~repaychaos.core.collector.CollectorState`; states are merged in
replication order, so the ``metrics`` of the result are byte-identical for the same
scenario and seed whatever the number of processes.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import platform
import queue as queue_mod
import sys
import time
from typing import Any

from repaychaos.core.errors import InvalidOption, RepaychaosError, RunFailed
from repaychaos.core.collector import CollectorState, MetricsCollector, finalize
from repaychaos.core.result import build_result
from repaychaos.sim.pipeline import Model

__all__ = ["run_replication", "run_model"]

#: Progress updates per replication sent to the parent (keeps IPC negligible).
_PROGRESS_STEPS = 200


def _run_one(scenario: Any, seed: int, index: int, report: Any = None) -> tuple[CollectorState, int]:
    collector = MetricsCollector.for_scenario(scenario)
    progress = None
    if report is not None:
        step = scenario.duration / _PROGRESS_STEPS
        last = [-step]

        def progress(t: float) -> None:
            if t - last[0] >= step or t >= scenario.duration:
                last[0] = t
                report(index, t)

    model = Model(scenario, seed, index, collector, progress)
    model.run()
    return collector.state, model.simulated


def run_replication(scenario: Any, seed: int, index: int) -> CollectorState:
    """Replication ``index`` of ``scenario`` with base ``seed``: its collector state."""
    return _run_one(scenario, seed, index)[0]


def _worker(args: tuple[Any, int, int, Any]) -> tuple[CollectorState, int]:
    scenario, seed, index, q = args
    report = None if q is None else (lambda i, t: q.put((i, t)))
    return _run_one(scenario, seed, index, report)


def _want_progress(progress: bool | None) -> bool:
    if progress is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return bool(progress)


def _versions() -> dict[str, str]:
    import simpy

    import repaychaos

    return {"python": platform.python_version(), "simpy": simpy.__version__, "repaychaos": repaychaos.__version__}


def run_model(scenario: Any, *, seed: int | None = None, replications: int | None = None,
              processes: int | None = None, progress: bool | None = None,
              fail_on_inconclusive: bool = True) -> dict[str, Any]:
    """Run ``scenario``'s replications (defaults from the scenario) and build the result record.

    Replications run in a spawn-safe process pool of ``processes`` workers (default
    ``min(replications, os.cpu_count())``); with one process they run in this one.
    """
    seed = scenario.seed if seed is None else int(seed)
    replications = scenario.replications if replications is None else int(replications)
    if replications < 1:
        raise InvalidOption(f"--replications must be at least 1, got {replications}")
    if processes is None:
        processes = min(replications, os.cpu_count() or 1)
    if processes < 1:
        raise InvalidOption(f"processes must be at least 1, got {processes}")
    processes = min(processes, replications)
    show = _want_progress(progress)
    bar = None
    if show:
        from tqdm import tqdm

        bar = tqdm(total=round(replications * scenario.duration), unit="sim-s", desc=f"sim {scenario.name}",
                   file=sys.stderr, dynamic_ncols=True)
    started = time.perf_counter()
    try:
        if processes == 1:
            outputs = _run_serial(scenario, seed, replications, bar)
        else:
            outputs = _run_pool(scenario, seed, replications, processes, bar)
    except (KeyboardInterrupt, RepaychaosError):
        raise
    except Exception as exc:  # a crashed replication is a failed run, not a traceback
        hint = ""
        if type(exc).__name__ == "BrokenProcessPool":
            hint = (" (a worker process died; from a script, put the call under"
                    " `if __name__ == \"__main__\":` or pass processes=1)")
        raise RunFailed(f"model run of {scenario.name} failed: {type(exc).__name__}: {exc}{hint}") from exc
    finally:
        if bar is not None:
            bar.close()
    wall = time.perf_counter() - started
    states = [s for s, _ in outputs]
    simulated = sum(n for _, n in outputs)
    run = {
        "wall_seconds": round(wall, 3),
        "repayments_simulated": simulated,
        "repayments_per_second": round(simulated / wall, 1) if wall > 0 else None,
        "processes": processes,
        "versions": _versions(),
    }
    return build_result(scenario, "sim", seed, finalize(states), replications=replications, run=run,
                        fail_on_inconclusive=fail_on_inconclusive)


def _run_serial(scenario: Any, seed: int, replications: int, bar: Any) -> list[tuple[CollectorState, int]]:
    outputs = []
    for index in range(replications):
        report = None
        if bar is not None:
            base = index * scenario.duration
            report = lambda i, t, base=base: bar.update(round(base + t) - bar.n)  # noqa: E731
        outputs.append(_run_one(scenario, seed, index, report))
    return outputs


def _run_pool(scenario: Any, seed: int, replications: int, processes: int,
              bar: Any) -> list[tuple[CollectorState, int]]:
    # concurrent.futures rather than multiprocessing.Pool: a worker that cannot start
    # (e.g. a script without an ``if __name__ == "__main__"`` guard under spawn) breaks
    # the pool with an error instead of being restarted forever.
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp.get_context("spawn")
    manager = ctx.Manager() if bar is not None else None
    q = manager.Queue() if manager is not None else None
    try:
        with ProcessPoolExecutor(processes, mp_context=ctx) as pool:
            futures = [pool.submit(_worker, (scenario, seed, i, q)) for i in range(replications)]
            if bar is not None:
                done_at = [0.0] * replications
                while not all(f.done() for f in futures):
                    try:
                        index, t = q.get(timeout=0.25)
                    except queue_mod.Empty:
                        continue
                    done_at[index] = max(done_at[index], t)
                    bar.update(round(sum(done_at)) - bar.n)
            return [f.result() for f in futures]  # in replication order
    finally:
        if manager is not None:
            manager.shutdown()
