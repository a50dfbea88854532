"""The replication runner: determinism, common random numbers, defaults and the result record."""

from __future__ import annotations

import json

import pytest

from repaychaos.scenarios import load_scenario_data, with_overrides
from repaychaos.core.errors import InvalidOption
from repaychaos.sim.simulate import run_model, run_replication


def _scenario(**over):
    data = {
        "version": 1, "name": "runner", "duration": "600s", "warmup": "30s", "seed": 3, "replications": 2,
        "workload": {"arrivals": {"rate": 20},
                     "check": {"first_after": {"dist": "lognormal", "median": "2s", "p95": "30s"},
                               "every": "10s", "max_checks": 4}},
        "pipeline": {"channel": {"latency": {"dist": "exponential", "mean": "200ms"}},
                     "sync": {"workers": 2, "service": {"dist": "exponential", "mean": "80ms"}},
                     "credit": {"service": "20ms", "risk_hold_ratio": 0.02}, "reconcile": {"every": "120s"}},
        "faults": [
            {"type": "sync_delay", "at": "100s", "for": "60s", "extra": {"dist": "pareto", "scale": "1s", "shape": 1.5}},
            {"type": "maintenance", "component": "sync", "at": "200s", "for": "30s"},
            {"type": "interface_bug", "link": "ledger->sync", "at": "300s", "for": "60s", "drop_ratio": 0.1,
             "corrupt_ratio": 0.1},
            {"type": "cutover", "at": "400s", "for": "60s", "inflight_loss_ratio": 0.5, "unmapped_ratio": 0.1},
        ],
    }
    data.update(over)
    return load_scenario_data(data)


def _metrics_bytes(result: dict) -> bytes:
    return json.dumps(result["metrics"], sort_keys=True).encode()


def test_same_seed_gives_byte_identical_metrics():
    """Two runs of the same scenario and seed give the same metrics, byte for byte."""
    sc = _scenario()
    a = run_model(sc, processes=1, progress=False)
    b = run_model(sc, processes=1, progress=False)
    assert _metrics_bytes(a) == _metrics_bytes(b)


def test_process_pool_gives_the_same_metrics_as_one_process():
    """Replications merged in order: a 2-process pool matches the serial run exactly."""
    sc = _scenario()
    serial = run_model(sc, processes=1, progress=False)
    pooled = run_model(sc, processes=2, progress=False)
    assert pooled["run"]["processes"] == 2
    assert _metrics_bytes(serial) == _metrics_bytes(pooled)
    assert json.dumps(serial["series"], sort_keys=True) == json.dumps(pooled["series"], sort_keys=True)


def test_different_seed_gives_different_metrics():
    """Another seed draws other arrivals, so the counts differ."""
    sc = _scenario()
    a = run_model(sc, processes=1, progress=False)
    b = run_model(sc, seed=4, processes=1, progress=False)
    assert a["metrics"]["repayments"] != b["metrics"]["repayments"]


def test_capacity_change_keeps_arrivals_and_users_common():
    """Common random numbers: more workers changes waits, not the arrivals, holds or reads drawn."""
    sc = _scenario(faults=[])
    more = with_overrides(sc, {"pipeline.sync.workers": 8})
    a = run_replication(sc, 3, 0)
    b = run_replication(more, 3, 0)
    assert a.all.repayments == b.all.repayments
    assert a.all.risk_holds == b.all.risk_holds
    assert a.s_acks == b.s_acks
    assert a.ttu.total > b.ttu.total  # fewer workers, longer waits


def test_defaults_come_from_the_scenario():
    """Seed and replication count default to the scenario's; the record is a sim result."""
    result = run_model(_scenario(), processes=1, progress=False)
    assert result["source"] == "sim"
    assert result["seed"] == 3
    assert result["replications"] == 2
    assert result["series"]["replications"] == 2
    assert result["run"]["repayments_simulated"] >= result["metrics"]["repayments"]
    assert set(result["run"]["versions"]) == {"python", "simpy", "repaychaos"}


def test_every_fault_type_runs_and_attributes():
    """With all four fault types the run finishes and stale reads are split over their causes."""
    m = run_model(_scenario(), processes=1, progress=False)["metrics"]
    by_cause = m["stale_reads_by_cause"]
    assert sum(by_cause.values()) == m["stale_reads"]
    for cause in ("sync_delay", "maintenance", "interface_bug", "cutover"):
        assert by_cause[cause] > 0, cause
    assert m["lost_repayments"] == 0 and m["duplicate_repayments"] == 0


def test_zero_replications_is_a_user_error():
    """A replication count below one is refused as bad input, not a traceback."""
    with pytest.raises(InvalidOption):
        run_model(_scenario(), replications=0, progress=False)


def test_progress_bar_writes_to_stderr_when_asked(capsys):
    """progress=True shows a tqdm bar on stderr; the result is unchanged."""
    sc = _scenario(replications=1)
    quiet = run_model(sc, processes=1, progress=False)
    shown = run_model(sc, processes=1, progress=True)
    err = capsys.readouterr().err
    assert "sim " + sc.name in err and "1.0/1 runs" in err
    assert _metrics_bytes(quiet) == _metrics_bytes(shown)


@pytest.mark.slow
def test_every_bundled_scenario_runs_through_the_model():
    """Each bundled scenario runs (one replication): causes add up, only its own faults are blamed,
    nothing is lost, and the count of repayments is the Poisson expectation within 5 sd."""
    import math

    from repaychaos.scenarios import bundled_scenarios, resolve_scenario

    for name in bundled_scenarios():
        scenario = resolve_scenario(name)
        m = run_model(scenario, replications=1, processes=1, progress=False)["metrics"]
        by_cause = m["stale_reads_by_cause"]
        assert sum(by_cause.values()) == m["stale_reads"], name
        blamed = {cause for cause, n in by_cause.items() if n}
        assert blamed <= {"queueing", "cache"} | {f.type for f in scenario.faults}, (name, blamed)
        assert m["lost_repayments"] == 0, name
        expected = scenario.workload.arrivals.expected_count(scenario.warmup, scenario.duration)
        # ledger reject windows only shift acks by seconds; 5 sd of Poisson plus that slack
        assert abs(m["repayments"] - expected) <= 5 * math.sqrt(expected) + 0.001 * expected, name
