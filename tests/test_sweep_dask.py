"""Past one machine: the same sweep on a Dask cluster (optional extra ``dask``)."""

from __future__ import annotations

import json

import pytest

distributed = pytest.importorskip("distributed")

from repaychaos.scenarios.loader import load_scenario_text  # noqa: E402
from repaychaos.core.errors import InvalidOption  # noqa: E402
from repaychaos.sim.sweep import run_sweep  # noqa: E402
from builders import scenario_yaml  # noqa: E402

TINY = scenario_yaml(
    {"workload.check": None, "pipeline.sync": {"workers": 1, "service": {"dist": "exponential", "mean": "300ms"}}},
    name="tiny-dask", duration="3m", warmup="10s", seed=4, slo={"stale_read_ratio": "< 5%"})


@pytest.fixture(scope="module")
def cluster():
    # processes=False: scheduler and worker live in this process (inproc://, no network port).
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as local:
        yield local


def test_dask_cluster_gives_the_same_rows_as_a_local_run(cluster, tmp_path):
    """Points sent to a Dask scheduler come back in grid order with identical metrics."""
    scenario = load_scenario_text(TINY, "tiny.yaml")
    vary = ["pipeline.sync.workers=1,2"]
    remote = run_sweep(scenario, vary, out_dir=tmp_path / "dask", scheduler=cluster.scheduler_address,
                       progress=False)
    local = run_sweep(scenario, vary, out_dir=tmp_path / "local", processes=1, progress=False)
    assert remote["record"]["run"]["backend"] == "dask"
    assert json.dumps(remote["rows"]) == json.dumps(local["rows"])


def test_an_unreachable_scheduler_is_a_user_error(tmp_path, monkeypatch):
    """A wrong --scheduler address is refused with the address named, not a traceback."""
    monkeypatch.setattr("repaychaos.sim.executor.CONNECT_TIMEOUT", "2s")
    scenario = load_scenario_text(TINY, "tiny.yaml")
    with pytest.raises(InvalidOption, match="127.0.0.1:1"):
        run_sweep(scenario, ["pipeline.sync.workers=1,2"], out_dir=tmp_path, scheduler="tcp://127.0.0.1:1",
                  progress=False)


def test_sim_replications_run_on_the_same_cluster_with_identical_metrics(cluster):
    """`repaychaos sim --scheduler` uses the one executor: the Dask run equals the local one byte for byte."""
    from repaychaos.sim.simulate import run_model

    scenario = load_scenario_text(TINY, "tiny.yaml")
    remote = run_model(scenario, scheduler=cluster.scheduler_address, progress=False)
    local = run_model(scenario, processes=1, progress=False)
    assert remote["run"]["backend"] == "dask" and local["run"]["backend"] == "inline"
    assert json.dumps(remote["metrics"], sort_keys=True) == json.dumps(local["metrics"], sort_keys=True)
