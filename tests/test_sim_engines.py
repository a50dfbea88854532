"""`repaychaos sim --engine`: both engines from the command line, the same result.json metrics."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np


SCENARIO = """\
version: 1
name: engines-cli
duration: 15m
warmup: 1m
seed: 5
replications: 2
workload:
  arrivals: {rate: 4/s}
  check: {first_after: {dist: lognormal, median: 3s, p95: 30s}, every: 10s, max_checks: 3}
pipeline:
  channel: {latency: 50ms}
  sync: {workers: 2, service: {dist: exponential, mean: 300ms}}
  credit: {service: 10ms, risk_hold_ratio: 0.02}
  reconcile: {every: 5m}
faults:
  - {type: maintenance, component: sync, at: 5m, for: 1m}
  - {type: sync_delay, at: 8m, for: 2m, extra: 1s}
slo:
  lost_repayments: "== 0"
"""


def sim(path: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "repaychaos", "sim", str(path), "--out", str(out),
                           "--processes", "1", *extra], capture_output=True, text=True, timeout=600)


def test_both_engines_write_the_same_metrics_and_say_which_ran(write_scenario, tmp_path):
    """--engine fast (the default) and --engine events: byte-identical metrics; run.engine names the engine."""
    path = write_scenario(SCENARIO)
    results = {}
    for engine in ("default", "fast", "events"):
        extra = () if engine == "default" else ("--engine", engine)
        done = sim(path, tmp_path / engine, *extra)
        assert done.returncode == 0, done.stderr
        results[engine] = json.loads((tmp_path / engine / "result.json").read_text())
    assert results["default"]["run"]["engine"] == "fast"
    assert results["events"]["run"]["engine"] == "events"
    assert results["fast"]["metrics"]["repayments"] > 2000
    for engine in ("default", "fast"):
        assert json.dumps(results[engine]["metrics"]) == json.dumps(results["events"]["metrics"])


def test_unknown_engine_is_bad_input(write_scenario, tmp_path):
    """An engine that does not exist: exit 2 and a one-line error naming the choices."""
    done = sim(write_scenario(SCENARIO), tmp_path / "x", "--engine", "turbo")
    assert done.returncode == 2
    assert "fast" in done.stderr and "events" in done.stderr and "Traceback" not in done.stderr


def test_bulk_draws_are_the_streams_draws():
    """Every distribution the scenario format has, drawn in bulk: bit-identical to the per-draw sampler."""
    import random

    from pydantic import TypeAdapter

    from repaychaos.scenarios.distributions import Distribution
    from repaychaos.sim.draws import BulkSampler, BulkStream, draw_rows

    dists = [TypeAdapter(Distribution).validate_python(d) for d in (
        {"dist": "lognormal", "median": "150ms", "p95": "600ms"}, {"dist": "exponential", "mean": "100ms"}, "20ms",
        {"dist": "pareto", "scale": "2s", "shape": 1.5}, {"dist": "uniform", "low": "2s", "high": "2m"},
        {"dist": "empirical", "samples": ["1s", "2s", "5s"]})]
    assert {type(d).__name__.lower() for d in dists} >= {"lognormal", "exponential", "constant", "pareto",
                                                         "uniform", "empirical"}
    for combo in ([0, 1, 2], [0], [1, 2], [3], [4], [5, 0, 3], [1, 0, 2], [0, 0, 1]):
        rng = random.Random(7)
        samplers = [dists[i].sampler(rng) for i in combo]
        expected = [[s() for s in samplers] for _ in range(3000)]
        stream, bulk = BulkStream(random.Random(7)), [BulkSampler(dists[i]) for i in combo]
        got = np.vstack([np.column_stack(draw_rows(stream, bulk, n)) for n in (1000, 1500, 500)])
        assert np.array_equal(np.array(expected), got), combo
