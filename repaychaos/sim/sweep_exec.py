"""Where a sweep's replications run: in this process, a local process pool, or a Dask cluster.

A task is one replication of one point, ``(scenario, seed, index)``; a backend runs a batch
of tasks and returns their collector states *in task order*, whatever order they finish
in, so a sweep's output does not depend on scheduling. Past one machine we use an existing
engine (Dask's ``distributed.Client``), never cluster code of our own.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import sys
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from typing import Any, NamedTuple, Sequence

from repaychaos.core.errors import InvalidOption, RepaychaosError, RunFailed

__all__ = ["Task", "Backend", "open_backend", "replicate", "show_progress", "CONNECT_TIMEOUT"]

#: How long to wait for a Dask scheduler before calling the address wrong.
CONNECT_TIMEOUT = "15s"


class Task(NamedTuple):
    """One replication of one point (``label`` only names it in errors)."""

    scenario: Any
    seed: int
    index: int
    label: str


def replicate(scenario: Any, seed: int, index: int) -> Any:
    """Run one replication; module-level so process pools and Dask can pickle it."""
    from repaychaos.sim.runner import run_replication

    return run_replication(scenario, seed, index)


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
    return RunFailed(f"sweep point {task.label}, replication {task.index}: {type(exc).__name__}: {exc}")


class Backend:
    """Runs batches of tasks; a context manager so pools and clients are always released."""

    name = "inline"
    workers = 1

    def __init__(self, progress: bool | None = None):
        from tqdm import tqdm

        self._bar = tqdm(total=0, desc="sweep", unit="run", file=sys.stderr,
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

    def run(self, tasks: Sequence[Task]) -> list[Any]:
        """Collector states of ``tasks``, in the same order."""
        self._grow(len(tasks))
        out = []
        for task in tasks:
            try:
                out.append(replicate(task.scenario, task.seed, task.index))
            except Exception as exc:  # noqa: BLE001 - translated at the boundary
                raise _failed(task, exc) from exc
            self._bar.update(1)
        return out


def _pool_context() -> multiprocessing.context.BaseContext:
    """Workers forked from a clean server process that has the model imported once.

    Not plain ``fork``: the parent may hold threads (a progress-bar monitor, a Dask
    client) whose locks a forked child would inherit mid-use.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["repaychaos.sim.sweep_exec", "repaychaos.sim.runner"])
    return ctx


class _PoolBackend(Backend):
    """A local process pool, kept open across the rounds of a search."""

    name = "processes"

    def __init__(self, processes: int, progress: bool | None = None):
        super().__init__(progress)
        self.workers = processes
        self._pool = ProcessPoolExecutor(max_workers=processes, mp_context=_pool_context())

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        super().close()

    def run(self, tasks: Sequence[Task]) -> list[Any]:
        self._grow(len(tasks))
        futures: dict[Future, int] = {}
        for i in _submission_order(tasks):
            t = tasks[i]
            futures[self._pool.submit(replicate, t.scenario, t.seed, t.index)] = i
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

    def __init__(self, address: str, progress: bool | None = None):
        try:
            from distributed import Client
        except ImportError:
            raise InvalidOption(
                "--scheduler needs the optional Dask extra: pip install 'repaychaos[dask]'"
            ) from None
        super().__init__(progress)
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

    def run(self, tasks: Sequence[Task]) -> list[Any]:
        from distributed import as_completed as dask_completed

        self._grow(len(tasks))
        order = _submission_order(tasks)
        futures = [self._client.submit(replicate, tasks[i].scenario, tasks[i].seed, tasks[i].index, pure=False)
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
                 progress: bool | None = None) -> Backend:
    """The backend for these options: Dask if ``scheduler``, else a pool of ``processes``
    (default one per core), or inline for a single process (no pickling, easy to debug)."""
    if scheduler:
        return _DaskBackend(scheduler, progress)
    n = processes if processes is not None else (os.cpu_count() or 1)
    if n < 1:
        raise InvalidOption(f"--processes: expected at least 1, found {n}")
    return Backend(progress) if n == 1 else _PoolBackend(n, progress)

