"""Capacity planning: ``repaychaos sweep`` runs the model over a grid of settings (or
bisects one key) and says, for each setting, whether every SLO holds.

Common random numbers: every point runs with the same seed and replication indices, and
the model draws each random quantity from its own parameter-independent stream, so two
points differ only by what was varied — identical settings give identical metrics, and
a frontier is not moved around by noise between neighbouring points.

Example::

    run_sweep(scenario, ["pipeline.sync.workers=4,8,16", "workload.arrivals.rate=10/s,20/s,40/s"],
              out_dir="reports/out/x-sweep")
    run_sweep(scenario, ["workload.arrivals.rate=10/s,20/s"], search="pipeline.sync.workers=1..64",
              out_dir="reports/out/x-sweep")
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from repaychaos.scenarios import Scenario
from repaychaos.core.errors import InvalidOption
from repaychaos.core.collector import finalize
from repaychaos.core.result import evaluate_slos
from repaychaos.sim.executor import DEFAULT_ENGINE, Backend, Task, engine_class, open_backend
from repaychaos.sim.sweep_frontier import Bisection, frontier_key as default_frontier_key, grid_frontier
from repaychaos.sim.sweep_grid import Point, Search, Vary, build_point, expand_grid, parse_search, parse_vary, setting_at
from repaychaos.sim.sweep_output import SWEEP_SCHEMA, write_sweep_csv, write_sweep_json

__all__ = ["run_sweep", "plan_sweep", "evaluate_points", "Plan", "SWEEP_SCHEMA"]


@dataclass(frozen=True)
class Plan:
    """A validated sweep: the base scenario, the parsed options and every grid point."""

    base: Scenario
    varies: tuple[Vary, ...]
    points: tuple[Point, ...]
    search: Search | None

    @property
    def keys(self) -> list[str]:
        return [v.key for v in self.varies] + ([self.search.key] if self.search else [])


def plan_sweep(scenario: Scenario, vary: Sequence[str], *, search: str | None = None,
               seed: int | None = None, replications: int | None = None) -> Plan:
    """Parse and validate everything a sweep will run, before anything runs.

    ``seed``/``replications`` override the scenario's for every point. Raises :class:`~repaychaos.core.errors.InvalidOption` naming
    the option and value at fault.
    """
    base = scenario
    fixed = {k: v for k, v in (("seed", seed), ("replications", replications)) if v is not None}
    if fixed:
        base = build_point(base, fixed, option="--" + "/--".join(fixed))
    varies = [parse_vary(spec) for spec in vary]
    if not varies and not search:
        raise InvalidOption("sweep needs at least one --vary KEY=V1,V2,... or a --search KEY=LOW..HIGH")
    points = expand_grid(base, varies)
    found = parse_search(search) if search else None
    if found is not None:
        if any(v.key == found.key for v in varies):
            raise InvalidOption(f"--search {found.key}: the same key is also in --vary; search it or vary it, not both")
        if not any(p.scenario.slo for p in points):
            raise InvalidOption(f"--search {found.key}: the scenario has no slo, so there is no frontier to find; add an slo: section")
        # Both bounds, and for a real-valued search a fractional midpoint: an integer key
        # searched with bounds like 1.5..8.5 is refused now, not in the middle of the search.
        probes: list[float] = [found.low, found.high]
        if not found.integer:
            probes.append((found.low + found.high) / 2 + 1e-3 * (found.high - found.low) / 3)
        for point in points:
            for n, value in enumerate(probes):
                try:
                    build_point(point.scenario, {found.key: value}, option="--search")
                except InvalidOption as exc:
                    if n < 2:
                        raise
                    raise InvalidOption(f"{exc} (the search tries values between the bounds; write both bounds "
                                        "as integers, such as 1..64, to search over integers)") from None
    return Plan(base=base, varies=tuple(varies), points=tuple(points), search=found)


def evaluate_points(backend: Backend, points: Sequence[tuple[str, Scenario]],
                    fail_on_inconclusive: bool = True) -> list[dict[str, Any]]:
    """Run every replication of every point on ``backend``; one evaluated entry per point, in order."""
    tasks: list[Task] = []
    spans = []
    for label, scenario in points:
        start = len(tasks)
        tasks.extend(Task(scenario, scenario.seed, i, f"sweep point {label}", backend.engine)
                     for i in range(scenario.replications))
        spans.append((start, len(tasks)))
    states = [r.state for r in backend.run(tasks)]
    out = []
    for (label, scenario), (start, end) in zip(points, spans):
        final = finalize(states[start:end])
        slo, passed, verdict = evaluate_slos(scenario.slo, final["metrics"], final["phases"], fail_on_inconclusive)
        out.append({"seed": scenario.seed, "replications": scenario.replications, "passed": passed,
                    "verdict": verdict, "slo": slo, "metrics": final["metrics"], "phases": final["phases"]})
    return out


def _row(index: int, values: dict[str, Any], scenario: Scenario, evaluated: dict[str, Any]) -> dict[str, Any]:
    return {"point": index, "values": dict(values),
            "settings": {k: setting_at(scenario, k) for k in values}, **evaluated}


def _run_grid(backend: Backend, points: list[Point], fail_on_inconclusive: bool) -> list[dict[str, Any]]:
    evaluated = evaluate_points(backend, [(p.label(), p.scenario) for p in points], fail_on_inconclusive)
    return [_row(p.index, p.values, p.scenario, e) for p, e in zip(points, evaluated)]


def _run_search(backend: Backend, points: list[Point], search: Search,
                fail_on_inconclusive: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Bisect ``search.key`` for every grid point in lockstep: each round is one batch."""
    bisections = [Bisection(search.low, search.high, search.integer, search.tolerance) for _ in points]
    done: dict[tuple[int, float], tuple[Scenario, dict[str, Any]]] = {}
    # Few searches and many workers: split each bracket more ways so no worker idles.
    tasks_per_value = max(p.scenario.replications for p in points)
    ways = max(1, backend.workers // (len(points) * tasks_per_value))
    while True:
        batch = []
        for i, (point, bis) in enumerate(zip(points, bisections)):
            for value in bis.next_values(ways):
                scenario = build_point(point.scenario, {search.key: value}, option="--search")
                batch.append((i, value, scenario))
        if not batch:
            break
        labels = [(f"{points[i].label()}, {search.key}={v}", sc) for i, v, sc in batch]
        for (i, value, scenario), evaluated in zip(batch, evaluate_points(backend, labels, fail_on_inconclusive)):
            bisections[i].record(value, evaluated["passed"])
            done[(i, value)] = (scenario, evaluated)
    rows: list[dict[str, Any]] = []
    for (i, value), (scenario, evaluated) in sorted(done.items(), key=lambda kv: kv[0]):
        values = {**points[i].values, search.key: value}
        rows.append(_row(len(rows), values, scenario, evaluated))
    goals = [b.goal for b in bisections if b.goal]
    goal = max(set(goals), key=goals.count) if goals else None
    entries = []
    for point, bis in zip(points, bisections):
        outcome = bis.outcome()
        if outcome["status"] == "all_pass" and goal is not None:
            # the frontier lies beyond the range: report the bound, marked as such
            outcome["value"] = bis.snap(search.high if goal == "max" else search.low)
        entries.append({"values": dict(point.values),
                        "settings": {k: setting_at(point.scenario, k) for k in point.values},
                        "value": outcome["value"], "setting": outcome["value"],
                        "status": outcome["status"], "bracket": outcome["bracket"]})
    frontier = {"key": search.key, "goal": goal, "over": list(points[0].values), "method": "bisection",
                "range": [search.low, search.high], "points": entries}
    return rows, frontier


def run_sweep(scenario: Scenario, vary: list[str], *, out_dir: str | os.PathLike[str],
              processes: int | None = None, search: str | None = None, scheduler: str | None = None,
              progress: bool | None = None, seed: int | None = None, replications: int | None = None,
              fail_on_inconclusive: bool = True, frontier_key: str | None = None,
              engine: str = DEFAULT_ENGINE) -> dict[str, Any]:
    """Run a sweep and write sweep.json and sweep.csv into ``out_dir``.

    The plots are the report layer's (:func:`repaychaos.reports.sweep_plots.write_sweep_plots`).

    ``vary``: ``KEY=V1,V2,...`` specs (several form a grid, first outermost). ``search``:
    ``KEY=LOW..HIGH`` bisects that key for every grid point to the SLO frontier.
    ``processes``: local worker processes (default one per core); ``scheduler``: the
    address of an existing Dask scheduler instead. An SLO whose interval straddles its
    threshold counts as failed unless ``fail_on_inconclusive`` is False.

    Returns ``{"paths": {name: Path}, "rows": [...], "frontier": {...} | None, "record": {...}}``.
    """
    plan = plan_sweep(scenario, vary, search=search, seed=seed, replications=replications)
    base, points, found, keys = plan.base, list(plan.points), plan.search, plan.keys
    if frontier_key is not None and frontier_key not in keys:
        raise InvalidOption(f"frontier key {frontier_key!r}: expected one of the varied keys {', '.join(keys)}")
    started = time.perf_counter()
    frontier: dict[str, Any] | None
    engine_class(base, engine)  # an unknown engine is bad input before anything runs
    with open_backend(processes, scheduler, progress, desc="sweep") as backend:
        backend.engine = engine
        if found is not None:
            rows, frontier = _run_search(backend, points, found, fail_on_inconclusive)
        else:
            rows = _run_grid(backend, points, fail_on_inconclusive)
            fkey = frontier_key or default_frontier_key(keys)
            has_slo = any(p.scenario.slo for p in points)
            frontier = grid_frontier(rows, keys, fkey) if fkey and has_slo else None
        backend_name, workers = backend.name, backend.workers
    wall = time.perf_counter() - started
    record: dict[str, Any] = {
        "schema": SWEEP_SCHEMA,
        "source": "sim",
        "scenario": base.normalised(),
        "seed": base.seed,
        "replications": base.replications,
        "keys": keys,
        "vary": [{"key": v.key, "values": list(v.values)} for v in plan.varies],
        "search": None if found is None else {"key": found.key, "low": found.low, "high": found.high,
                                              "integer": found.integer, "tolerance": found.tolerance},
        "headline": "stale_read_ratio",
        "frontier": frontier,
        "passed": all(r["passed"] for r in rows),
        "rows": rows,
        "run": {"backend": backend_name, "workers": workers, "points": len(rows),
                "tasks": sum(r["replications"] for r in rows), "wall_seconds": round(wall, 3),
                "points_per_minute": round(60 * len(rows) / wall, 3) if wall > 0 else None},
    }
    out = Path(out_dir)
    paths: dict[str, Path] = {"sweep.json": write_sweep_json(record, out), "sweep.csv": write_sweep_csv(record, out)}
    return {"paths": paths, "rows": rows, "frontier": frontier, "record": record}
