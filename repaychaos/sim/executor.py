"""Where model replications run: in this process, a local process pool, or a Dask cluster.

The one executor of the model: ``repaychaos sim`` (the replications of one scenario) and
``repaychaos sweep`` (the replications of every grid point) both hand it tasks. A task is
one replication, ``(scenario, seed, index)``; a backend runs a batch of tasks and returns
their :class:`Replication` outputs *in task order*, whatever order they finish in, so a
result does not depend on scheduling. Past one machine we use an existing engine (Dask's
``distributed.Client``), never cluster code of our own.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import sys
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Sequence

from repaychaos.core.errors import InvalidOption, RepaychaosError, RunFailed

if TYPE_CHECKING:
    from repaychaos.core.collector import CollectorState
    from repaychaos.scenarios import Scenario

__all__ = ["Task", "Replication", "Backend", "open_backend", "replicate", "show_progress", "CONNECT_TIMEOUT",
           "ENGINES", "DEFAULT_ENGINE", "engine_class"]

#: The model's engines (docs/explanation/semantics.md, "Two engines, one semantics"): ``fast``
#: computes stretches in bulk, ``events`` is the event-driven SimPy reference.
ENGINES: tuple[str, ...] = ("fast", "events")
DEFAULT_ENGINE = "fast"

#: The bar counts runs, fractions included; this shows them with one decimal.
_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total_fmt} runs [{elapsed}<{remaining}]"

#: How long to wait for a Dask scheduler before calling the address wrong.
CONNECT_TIMEOUT = "15s"


#: Progress updates per replication run in this process (keeps the bar cheap).
_PROGRESS_STEPS = 200


@dataclass(frozen=True)
class Task:
    """One replication of one scenario or sweep point (``label`` only names it in errors)."""

    scenario: Scenario
    seed: int
    index: int
    label: str
    engine: str = DEFAULT_ENGINE


class Replication(NamedTuple):
    """What one replication hands back: its bounded collector state and how many repayments it simulated."""

    state: CollectorState
    simulated: int


def engine_class(scenario: Scenario, engine: str = DEFAULT_ENGINE) -> Any:
    """The model class that runs ``scenario`` on ``engine``: the fast engine where it computes
    the scenario exactly (:func:`repaychaos.sim.fast_engine.unsupported`), else the event engine."""
    if engine not in ENGINES:
        raise InvalidOption(f"--engine: expected one of {', '.join(ENGINES)}, found {engine!r}")
    if engine == "fast":
        from repaychaos.sim.fast_engine import FastModel, unsupported

        if unsupported(scenario) is None:
            return FastModel
    from repaychaos.sim.event_engine import Model

    return Model


def replicate(scenario: Scenario, seed: int, index: int,
              report: Callable[[float], None] | None = None, engine: str = DEFAULT_ENGINE) -> Replication:
    """Run one replication; module-level so process pools and Dask can pickle it.

    ``report(fraction)`` (in this process only) hears how far the replication has got.
    """
    from repaychaos.core.collector import MetricsCollector

    Model = engine_class(scenario, engine)

    collector = MetricsCollector.for_scenario(scenario)
    progress = None
    if report is not None:
        step = scenario.duration / _PROGRESS_STEPS
        last = [-step]

        def progress(t: float) -> None:
            if t - last[0] >= step or t >= scenario.duration:
                last[0] = t
                report(min(1.0, t / scenario.duration) if scenario.duration > 0 else 1.0)

    model = Model(scenario, seed, index, collector, progress)
    model.run()
    return Replication(collector.state, model.simulated)


def show_progress(progress: bool | None) -> bool:
    """Progress bars only where a person is watching (stderr is a terminal) unless told."""
    if progress is not None:
        return bool(progress)
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def _cost(task: Task) -> float:
    """Expected repayments of a task: submitting the biggest first balances the workers."""
    try:
        sc = task.scenario
        return float(sc.workload.arrivals.expected_count(0.0, sc.duration))
    except AttributeError:
        return 0.0


def _submission_order(tasks: Sequence[Task]) -> list[int]:
    return sorted(range(len(tasks)), key=lambda i: -_cost(tasks[i]))


def _failed(task: Task, exc: BaseException) -> RepaychaosError:
    if isinstance(exc, RepaychaosError):
        return exc
    hint = ""
    if type(exc).__name__ == "BrokenProcessPool":
        hint = (" (a worker process died; from a script, put the call under"
                " `if __name__ == \"__main__\":` or use one process)")
    return RunFailed(f"{task.label}, replication {task.index}: {type(exc).__name__}: {exc}{hint}")


class Backend:
    """Runs batches of tasks; a context manager so pools and clients are always released."""

    name = "inline"
    workers = 1
    #: the model engine the tasks of :func:`repaychaos.sim.sweep.evaluate_points` run on
    engine = DEFAULT_ENGINE

    def __init__(self, progress: bool | None = None, desc: str = "model"):
        from tqdm import tqdm

        self._bar = tqdm(total=0, desc=desc, unit="run", file=sys.stderr, bar_format=_BAR,
                         disable=not show_progress(progress), dynamic_ncols=True)

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._bar.close()

    def _grow(self, n: int) -> None:
        self._bar.total = (self._bar.total or 0) + n
        self._bar.refresh()

    def run(self, tasks: Sequence[Task]) -> list[Replication]:
        """The replications of ``tasks``, in the same order."""
        self._grow(len(tasks))
        out = []
        for task in tasks:
            base = self._bar.n
            report = None if self._bar.disable else (lambda f, base=base: self._advance(base + f))
            try:
                out.append(replicate(task.scenario, task.seed, task.index, report, task.engine))
            except Exception as exc:  # noqa: BLE001 - translated at the boundary
                raise _failed(task, exc) from exc
            self._advance(base + 1)
        return out

    def _advance(self, n: float) -> None:
        """Move the bar to ``n`` runs done (fractions too: one long replication still shows progress)."""
        self._bar.n = n
        self._bar.refresh()


def _pool_context() -> multiprocessing.context.BaseContext:
    """Workers forked from a clean server process that has the model imported once.

    Not plain ``fork``: the parent may hold threads (a progress-bar monitor, a Dask
    client) whose locks a forked child would inherit mid-use.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["repaychaos.sim.executor", "repaychaos.sim.event_engine", "repaychaos.sim.fast_engine"])
    return ctx


class _PoolBackend(Backend):
    """A local process pool, kept open across the rounds of a search."""

    name = "processes"

    def __init__(self, processes: int, progress: bool | None = None, desc: str = "model"):
        super().__init__(progress, desc)
        self.workers = processes
        self._pool = ProcessPoolExecutor(max_workers=processes, mp_context=_pool_context())

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        super().close()

    def run(self, tasks: Sequence[Task]) -> list[Replication]:
        self._grow(len(tasks))
        futures: dict[Future[Replication], int] = {}
        for i in _submission_order(tasks):
            t = tasks[i]
            futures[self._pool.submit(replicate, t.scenario, t.seed, t.index, None, t.engine)] = i
        out: list[Any] = [None] * len(tasks)
        try:
            for future in as_completed(futures):
                i = futures[future]
                exc = future.exception()
                if exc is not None:
                    raise _failed(tasks[i], exc) from exc
                out[i] = future.result()
                self._bar.update(1)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        return out


class _DaskBackend(Backend):
    """Tasks on an existing Dask cluster; the cluster is the user's, only our client is closed."""

    name = "dask"

    def __init__(self, address: str, progress: bool | None = None, desc: str = "model"):
        try:
            from distributed import Client
        except ImportError:
            raise InvalidOption(
                "--scheduler needs the optional Dask extra: pip install 'repaychaos[dask]'"
            ) from None
        super().__init__(progress, desc)
        try:
            self._client = Client(address, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError) as exc:
            self.close_bar()
            raise InvalidOption(f"--scheduler {address}: cannot connect to a Dask scheduler there ({exc})") from None
        self.workers = max(1, sum(w.get("nthreads", 1) for w in self._client.scheduler_info()["workers"].values()))

    def close_bar(self) -> None:
        super().close()

    def close(self) -> None:
        self._client.close()
        super().close()

    def run(self, tasks: Sequence[Task]) -> list[Replication]:
        from distributed import as_completed as dask_completed

        self._grow(len(tasks))
        order = _submission_order(tasks)
        futures = [self._client.submit(replicate, tasks[i].scenario, tasks[i].seed, tasks[i].index, None,
                                       tasks[i].engine, pure=False)
                   for i in order]
        index = {f.key: i for f, i in zip(futures, order)}
        out: list[Any] = [None] * len(tasks)
        try:
            for future in dask_completed(futures):
                i = index[future.key]
                if future.status == "error":
                    raise _failed(tasks[i], future.exception())
                out[i] = future.result()
                self._bar.update(1)
        except BaseException:
            self._client.cancel(futures)
            raise
        return out


def open_backend(processes: int | None = None, scheduler: str | None = None,
                 progress: bool | None = None, desc: str = "model") -> Backend:
    """The backend for these options: Dask if ``scheduler``, else a pool of ``processes``
    (default one per core), or inline for a single process (no pickling, easy to debug)."""
    if scheduler:
        return _DaskBackend(scheduler, progress, desc)
    n = processes if processes is not None else (os.cpu_count() or 1)
    if n < 1:
        raise InvalidOption(f"--processes: expected at least 1, found {n}")
    return Backend(progress, desc) if n == 1 else _PoolBackend(n, progress, desc)

