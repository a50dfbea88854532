"""The Chaos Toolkit extension: discovery, probes, actions, and ``chaos run`` of the example experiment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from chaoslib.exceptions import ActivityFailed
from staleness_events import script

import repaychaos
from repaychaos.integrations.chaostoolkit import actions, probes
from repaychaos.integrations.live_metrics import LiveStaleness, MetricsServer
from repaychaos.load.launcher import ServiceProcess
from repaychaos.scenarios import load_scenario, resolve_scenario

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENT = ROOT / "experiments" / "stale-share-sync-pause.json"
STEADY = ROOT / "experiments" / "steady-service.yaml"
CHAOS = str(Path(sys.executable).with_name("chaos"))


def test_discover_lists_every_activity_with_typed_arguments() -> None:
    """``discover`` (where ``chaos discover repaychaos`` looks) reports each public probe and action,
    with the portable types of their arguments."""
    found = repaychaos.discover(discover_system=False)
    kinds = {a["name"]: a["type"] for a in found["activities"]}
    assert kinds == {**dict.fromkeys(probes.__all__, "probe"), **dict.fromkeys(actions.__all__, "action")}
    args = {a["name"]: {x["name"]: x.get("type") for x in a["arguments"]} for a in found["activities"]}
    assert args["stale_read_ratio"] == {"metrics_url": "string", "window": "number", "scenario": "string",
                                        "allow_remote": "boolean", "timeout": "number"}
    assert args["canary_unusable_ratio"]["repayments"] == "integer"
    assert found["extension"] == {"name": "repaychaos", "version": repaychaos.__version__}


def test_histogram_quantile_reads_buckets_as_promql_does() -> None:
    """Linear within the bucket holding the rank; the largest finite bound when the rank is in +Inf."""
    buckets = {1.0: 10.0, 2.0: 30.0, 5.0: 40.0, float("inf"): 40.0}
    assert probes._histogram_quantile(0.5, buckets, "x") == pytest.approx(1.5)
    assert probes._histogram_quantile(0.99, buckets, "x") == pytest.approx(2 + 3 * 9.6 / 10)
    assert probes._histogram_quantile(0.9, {1.0: 10.0, float("inf"): 20.0}, "x") == 1.0
    with pytest.raises(ActivityFailed, match="no time-to-usable observations"):
        probes._histogram_quantile(0.5, {float("inf"): 0.0}, "x")


def test_probes_read_a_running_measurement() -> None:
    """Against a live exporter: the stale share and a time-to-usable quantile are those of the
    events it counted; a window is the difference of two scrapes."""
    live = LiveStaleness("load", resolve_scenario("nightly-maintenance"), clock=lambda: 0.0)
    for name, kwargs in script(400, 9):
        getattr(live, "on_" + name)(**kwargs)
    tally = live.tally("nightly-maintenance")
    server = MetricsServer(live, 0)
    try:
        assert probes.stale_read_ratio(server.url) == pytest.approx(tally.stale / tally.reads)
        with pytest.raises(ActivityFailed, match="no reads"):
            probes.stale_read_ratio(server.url, scenario="other-scenario")
        # ttu values are 5, 35, 65 s: the median's rank falls in the (2, 5] bucket
        cumulative = dict((float(le), n) for le, n in tally.cumulative_buckets())
        rank = 0.5 * cumulative[float("inf")]
        assert probes.time_to_usable_quantile(server.url, 0.5) == pytest.approx(
            2 + 3 * rank / cumulative[5.0])
        # a window: nothing new between the two scrapes
        with pytest.raises(ActivityFailed, match="no reads at .* in 0.2 s"):
            probes.stale_read_ratio(server.url, window=0.2)
    finally:
        server.close()


def test_model_slo_verdicts_are_those_of_a_model_run() -> None:
    """The probe returns the SLO verdicts of ``run_model`` on the same scenario and seed."""
    from repaychaos.sim.simulate import run_model

    verdicts = probes.model_slo_verdicts(str(STEADY), seed=5)
    expected = run_model(load_scenario(STEADY), seed=5, replications=1, processes=1, progress=False,
                         fail_on_inconclusive=False)["slo"]
    assert verdicts == [dict(v) for v in expected]
    assert [v["metric"] for v in verdicts] == ["stale_read_ratio"]
    assert probes.model_slos_met(str(STEADY), seed=5) is all(v["passed"] is True for v in verdicts)
    with pytest.raises(ActivityFailed, match="model run of no-such-scenario"):
        probes.model_slo_verdicts("no-such-scenario")


def test_actions_refuse_what_they_cannot_do() -> None:
    """No token, an id and a name at once, or a non-loopback service: a clear ActivityFailed, no request."""
    with pytest.raises(ActivityFailed, match="chaos token is needed"):
        actions.start_fault("http://127.0.0.1:9", {"type": "maintenance"}, secrets=None)
    with pytest.raises(ActivityFailed, match="either fault_id or name"):
        actions.end_fault("http://127.0.0.1:9", fault_id="f1", name="x", secrets={"token": "t"})
    with pytest.raises(ActivityFailed, match="allow_remote"):
        actions.start_fault("http://example.com", {"type": "maintenance"}, secrets={"token": "t"})


@pytest.mark.live
def test_target_file_fault_action_starts_and_stops_a_pause(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example target file's ``pause-sync`` actions, run one by one: the start puts a sync pause
    in force on the service, the stop (given the start's answer) ends it."""
    monkeypatch.setenv("REPAYCHAOS_TOKEN", "tgt-token")
    target = str(ROOT / "loadtests" / "targets" / "reference-service.yaml")
    with ServiceProcess(load_scenario(STEADY), tmp_path / "s.db", time_scale=60.0, token="tgt-token") as service:
        started = actions.run_target_fault_action(target, "pause-sync", "start", fault_for="1h", base_url=service.url)
        assert started["ok"] and started["status"] == 201
        listing = requests.get(service.url + "/chaos/faults", headers=service.auth(), timeout=10).json()
        assert [(f["id"], f["type"], f["active"]) for f in listing["faults"]] == [
            (started["answer"]["id"], "maintenance", True)]
        stopped = actions.run_target_fault_action(target, "pause-sync", "stop", base_url=service.url,
                                                  start_answer=started["answer"])
        assert stopped["ok"] and stopped["status"] == 200
        listing = requests.get(service.url + "/chaos/faults", headers=service.auth(), timeout=10).json()
        assert listing["faults"] == []
        with pytest.raises(ActivityFailed, match="no fault actions for 'nope'"):
            actions.run_target_fault_action(target, "nope", base_url=service.url)


@pytest.mark.live
def test_chaos_run_of_the_example_shows_the_deviation(tmp_path: Path) -> None:
    """``chaos run`` of experiments/stale-share-sync-pause.json against the reference service: the
    steady state (no fresh repayment unusable after 60 s) holds before the method; after the sync
    pause every canary repayment is still unusable, so the journal says deviated; the rollback
    ends the pause it started.

    Deterministic by construction: steady-service.yaml has fixed stage times (usable 0.22 scenario
    seconds after the ack) and no holds, sweeps or faults of its own; the canaries are read 60
    scenario seconds after their acks; a paused sync starts no message until the pause (1 h) ends.
    """
    with ServiceProcess(load_scenario(STEADY), tmp_path / "s.db", time_scale=60.0, token="exp-token") as service:
        env = dict(os.environ, REPAYCHAOS_URL=service.url, REPAYCHAOS_TOKEN="exp-token")
        journal_path = tmp_path / "journal.json"
        proc = subprocess.run([CHAOS, "--no-version-check", "--settings", str(tmp_path / "settings.yaml"),
                               "--log-file", str(tmp_path / "chaostoolkit.log"), "run", "--journal-path",
                               str(journal_path), str(EXPERIMENT)],
                              env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
        journal = json.loads(journal_path.read_text())
        listing = requests.get(service.url + "/chaos/faults", headers=service.auth(), timeout=10).json()
    assert proc.returncode == 1, proc.stdout + proc.stderr  # chaos exits 1 when the steady state deviated
    assert journal["status"] == "completed" and journal["deviated"] is True
    before, after = journal["steady_states"]["before"], journal["steady_states"]["after"]
    assert before["steady_state_met"] is True
    assert [p["output"] for p in before["probes"]] == [0.0, 0.0]
    assert after["steady_state_met"] is False
    assert after["probes"][0]["activity"]["name"] == "canary-unusable-share"
    assert after["probes"][0]["output"] == 1.0
    (started,) = journal["run"]
    assert started["status"] == "succeeded" and started["output"]["label"] == "chaos-pause-sync"
    (rollback,) = journal["rollbacks"]
    assert rollback["output"] == [started["output"]["id"]]
    assert listing["faults"] == []  # the pause is over: nothing in force or scheduled
