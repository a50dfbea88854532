"""Target mode against the reference service seen as someone else's system: only its public
API (and, where a fault is put in, its chaos API through a target file's actions)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from honest import resolved

from repaychaos.core.readlog import read_read_log
from repaychaos.core.stats import wilson
from repaychaos.load.blackbox import run_target
from repaychaos.load.launcher import ServiceProcess, free_port
from repaychaos.scenarios import load_scenario_data
from repaychaos.target import load_target

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "target-test-token"
K = 10.0  # every live run here is short: scenario seconds run ten times faster
# Real timing is not seeded: as in test_load_live, the checks use the 99.9 % Wilson
# interval (z = 3.29) so an honest run fails about one time in a thousand, not one in twenty.
Z999 = 3.2905


def _scenario(**over):
    data = {"version": 1, "name": "target-check", "duration": "40s", "seed": 3,
            "workload": {"arrivals": {"rate": "20/s"}, "check": {"first_after": "2s", "every": "1s", "max_checks": 8}},
            "pipeline": {"channel": {"latency": 0}, "sync": {"workers": "unlimited", "service": "10ms"},
                         "credit": {"service": 0}, "reconcile": "off"}}
    data.update(over)
    return load_scenario_data(data)


def _target(tmp_path: Path, url: str, faults: str = "", extra: str = "") -> Path:
    """The bundled example target file, pointed at ``url``, with these fault actions."""
    text = (ROOT / "loadtests" / "targets" / "reference-service.yaml").read_text(encoding="utf-8")
    text = text.replace("http://127.0.0.1:8000", url).split("\nfaults:")[0] + "\n" + extra
    if faults:
        text += "faults:\n" + faults
    path = tmp_path / "target.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def token_env(monkeypatch):
    monkeypatch.setenv("REPAYCHAOS_TOKEN", TOKEN)


def _honest_reading(result, p, n, truth):
    """A reading is either within the 99.9 % Wilson interval of the truth, or the run says its
    time resolution was not good enough for it (then never a pass). On a busy machine the
    reads land late and, at time scale K, K times later in scenario time: the staleness
    reads low, and the run must say so rather than hide it."""
    resolution = result["run"]["time_resolution"]
    assert set(resolution) >= {"ok", "why", "lateness_s", "shortest_check_delay_s", "ratio", "threshold"}
    if resolution["ok"]:
        low, high = wilson(round(p * n), n, z=Z999)
        assert low <= truth <= high, (p, truth, resolution)
    else:
        assert not result["run"]["validity"]["ok"] and result["verdict"] == "inconclusive"
        assert not result["passed"]
        assert any(w.startswith("time resolution") for w in result["run"]["validity"]["why"])


def test_exponential_sync_delay_gives_e_minus_one_at_the_mean(tmp_path):
    """Unlimited exp(mean 2 s) sync workers, every user's first read at ack + 2 s: the black-box
    staleness curve at t = 2 s is exp(-1) (or the run marks its time resolution not ok), and
    each user's time to usable is bracketed correctly."""
    mean = 2.0
    service_scenario = _scenario(pipeline={"channel": {"latency": 0}, "credit": {"service": 0}, "reconcile": "off",
                                           "sync": {"workers": "unlimited",
                                                    "service": {"dist": "exponential", "mean": f"{mean}s"}}})
    with ServiceProcess(service_scenario, tmp_path / "svc.db", time_scale=K, token=TOKEN) as svc:
        target = load_target(_target(tmp_path, svc.url))
        result = run_target(_scenario(), target, time_scale=K, read_log=tmp_path / "reads.jsonl.gz")
    m = result["metrics"]
    assert result["source"] == "target" and result["run"]["complete"]
    assert m["lost_repayments"] == 0 and result["run"]["lost_repayments_observable"]
    n = m["repayments"]
    assert n > 600  # 800 arrivals expected
    _honest_reading(result, m["visibility"]["p_stale"][m["visibility"]["t"].index(2.0)], n, math.exp(-1))
    # the censoring bounds bracket the truth: the median of exp(mean 2) is 2 ln 2 = 1.386 s
    cens = result["censoring"]
    assert cens["time_to_usable"] == "interval"
    assert cens["lower"]["p50"] <= 2 * math.log(2) <= cens["upper"]["p50"]
    header, lines = read_read_log(tmp_path / "reads.jsonl.gz")
    users = list(lines)
    assert header["source"] == "target" and len(users) == result["run"]["acked"]
    assert all(u["phase"] == "baseline" for u in users)


def test_a_maintenance_pause_put_in_by_a_start_action_shows_in_its_phase(tmp_path, token_env):
    """A sync pause put in through POST /chaos/faults at the window's start and deleted at its end:
    stale reads, attributed to that fault's phase, and both actions recorded."""
    scenario = _scenario(faults=[{"name": "pause-sync", "type": "maintenance", "component": "sync",
                                  "at": "15s", "for": "10s"}],
                         workload={"arrivals": {"rate": "20/s"},
                                   "check": {"first_after": "1s", "every": "1s", "max_checks": 3}})
    faults = (ROOT / "loadtests" / "targets" / "reference-service.yaml").read_text().split("\nfaults:\n")[1]
    with ServiceProcess(_scenario(), tmp_path / "svc.db", time_scale=K, token=TOKEN) as svc:
        target = load_target(_target(tmp_path, svc.url, faults))
        result = run_target(scenario, target, time_scale=K)
    actions = result["run"]["actions"]
    assert [(a["action"], a["ok"], a["reason"]) for a in actions] == [("start", True, "window"), ("stop", True, "window")]
    # on its instant, give or take a wake-up on a busy machine (1 s of scenario time is 100 ms wall)
    assert actions[0]["status"] == 201 and 15.0 <= actions[0]["at"] < 16.0
    by_phase = result["attribution"]["stale_reads_by_phase"]
    pause = result["phases"]["pause-sync"]
    # acked in [15, 25) and read 1 s later, still inside the pause unless acked in its last second
    assert by_phase["pause-sync"] == pause["stale_reads"] > 100
    assert result["metrics"]["stale_reads_by_cause"]["maintenance"] == by_phase["pause-sync"]
    assert pause["stale_read_ratio"]["value"] > 0.5
    assert by_phase["baseline"] <= 0.02 * result["metrics"]["reads"]


def test_a_failing_start_action_exits_3_and_the_stop_action_still_runs(tmp_path):
    """exit 3, the stop action ran as a rollback, and the partial result.json lists both actions."""
    marker = tmp_path / "stopped"
    start = json.dumps({"command": [sys.executable, "-c", "import sys; sys.exit(4)"]})
    stop = json.dumps({"command": [sys.executable, "-c", f"open({str(marker)!r}, 'w').write('x')"]})
    faults = f"  - fault: broken\n    start: {start}\n    stop: {stop}\n"
    target = _target(tmp_path, f"http://127.0.0.1:{free_port()}", faults)  # nobody listens: it does not matter
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(json.dumps(_scenario(faults=[{"name": "broken", "type": "maintenance", "component": "sync",
                                                      "at": "1s", "for": "10s"}]).normalised()))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "repaychaos", "load", str(scenario), "--target", str(target),
                           "--time-scale", str(K), "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert "start action of fault 'broken' failed" in proc.stderr
    assert marker.read_text() == "x"
    actions = json.loads((out / "result.json").read_text())["run"]["actions"]
    assert [(a["action"], a["ok"], a["reason"], a["status"]) for a in actions] == [
        ("start", False, "window", 4), ("stop", True, "rollback", 0)]


def test_retry_after_is_honoured_with_the_same_key(tmp_path, token_env):
    """During a ledger reject window the service answers 503 + Retry-After: each retry waits at
    least that long, uses the same key, and every repayment ends up in the ledger exactly once."""
    scenario = _scenario(faults=[{"name": "reject-ledger", "type": "maintenance", "component": "ledger",
                                  "mode": "reject", "at": "10s", "for": "10s"}], duration="30s")
    faults = ("  - fault: reject-ledger\n    start:\n      method: POST\n      path: /chaos/faults\n"
              "      headers: {Authorization: 'Bearer {env.REPAYCHAOS_TOKEN}'}\n"
              "      json: {type: maintenance, component: ledger, mode: reject, at: 0s, for: '{fault.for}'}\n")
    with ServiceProcess(_scenario(), tmp_path / "svc.db", time_scale=K, token=TOKEN) as svc:
        target = load_target(_target(tmp_path, svc.url, faults))
        result = run_target(scenario, target, time_scale=K, read_log=tmp_path / "reads.jsonl.gz")
        trace = requests.get(svc.url + "/chaos/trace", headers=svc.auth(), timeout=30).json()
    _, lines = read_read_log(tmp_path / "reads.jsonl.gz")
    retried = [u for u in lines if "tries" in u]
    assert len(retried) > 50  # ~10 s of arrivals at 20/s meet the reject window
    for user in retried:
        for (t, status, wait), (t_next, _, _) in zip(user["tries"], user["tries"][1:]):
            assert status == 503 and wait >= 1
            assert t_next - t >= wait * K  # scenario seconds: Retry-After is in wall seconds
    assert result["metrics"]["lost_repayments"] == 0 and result["run"]["unacked"] == 0
    keys = [r["key"] for r in trace["repayments"]]
    assert trace["duplicates"] == 0 and len(keys) == len(set(keys)) == result["run"]["acked"]


def test_black_box_stale_reads_agree_with_the_service_trace_of_the_same_run(tmp_path):
    """Each read judged by the service's own trace (view unusable at that instant) gives the same
    stale ratio as the black-box judgement, within the black-box interval."""
    service_scenario = _scenario(pipeline={"channel": {"latency": 0}, "credit": {"service": 0}, "reconcile": "off",
                                           "sync": {"workers": 4, "service": {"dist": "lognormal", "median": "150ms",
                                                                              "p95": "1s"}}})
    # 4 workers at a mean service time of 0.29 s and 6/s arrivals: utilisation 0.44, some queueing
    scenario = _scenario(duration="60s", workload={"arrivals": {"rate": "6/s"},
                                   "check": {"first_after": {"dist": "exponential", "mean": "500ms"}, "every": "300ms",
                                             "max_checks": 6}})
    with ServiceProcess(service_scenario, tmp_path / "svc.db", time_scale=K, token=TOKEN) as svc:
        target = load_target(_target(tmp_path, svc.url))
        result = run_target(scenario, target, time_scale=K, read_log=tmp_path / "reads.jsonl.gz")
        trace = requests.get(svc.url + "/chaos/trace", headers=svc.auth(), timeout=30).json()
    header, lines = read_read_log(tmp_path / "reads.jsonl.gz")
    by_key = {r["key"]: r for r in trace["repayments"]}
    t0, k = result["run"]["t0"], header["time_scale"]
    reads = stale = 0
    for user in lines:
        if not user["ack"] < result["scenario"]["duration"]:
            continue  # the metrics count repayments acked in [warmup, duration)
        rep = by_key[user["key"]]
        for t, _outcome in user["reads"]:
            s = (t0 + t / k - trace["t0"]) * trace["time_scale"]  # our scenario time -> the service's
            usable = False
            for at, u in rep["changes"]:
                if at <= s:
                    usable = bool(u)
            reads += 1
            stale += not usable and not rep["held"]
    m = result["metrics"]
    assert reads == m["reads"] > 400  # 360 repayments expected, most seen usable at the first read
    low, high = m["stale_read_ratio"]["ci95"]
    assert 0.02 < m["stale_read_ratio"]["value"]  # the check is not vacuous
    assert low <= stale / reads <= high


@pytest.mark.soak  # two one-minute scenarios; the users are one implementation in both modes now
def test_black_box_agrees_with_the_trace_based_load_run_of_the_same_scenario(tmp_path):
    """`repaychaos load` (trace-based, its own service) and a target run (black-box, a service
    started on the same scenario) measure stale_read_ratio within their combined 95 % intervals;
    the load run writes the same read log format."""
    from repaychaos.load.runner import run_load
    from repaychaos.reports.compare import interval_agreement

    scenario = _scenario(duration="60s", pipeline={
        "channel": {"latency": 0}, "credit": {"service": 0}, "reconcile": "off",
        "sync": {"workers": "unlimited", "service": {"dist": "exponential", "mean": "1s"}}},
        workload={"arrivals": {"rate": "8/s"}, "check": {"first_after": "500ms", "every": "700ms", "max_checks": 4}})
    load = run_load(scenario, time_scale=K, progress=False, read_log=tmp_path / "load" / "reads.jsonl.gz")
    with ServiceProcess(scenario, tmp_path / "svc.db", time_scale=K, token=TOKEN) as svc:
        target = run_target(scenario, load_target(_target(tmp_path, svc.url)), time_scale=K)
    a, b = load["metrics"]["stale_read_ratio"], target["metrics"]["stale_read_ratio"]
    if resolved(load) and resolved(target):  # else each said its reads landed too late to compare
        agree, tol = interval_agreement(a["value"], a["ci95"], b["value"], b["ci95"])
        assert agree, (a, b, tol)
    header, lines = read_read_log(tmp_path / "load" / "reads.jsonl.gz")
    users = list(lines)
    assert header["source"] == "load" and load["run"]["read_log"] == "reads.jsonl.gz"
    in_window = [u for u in users if u["ack"] < 60]
    assert len(in_window) == load["metrics"]["repayments"]
    assert sum(len(u["reads"]) for u in in_window) == load["metrics"]["reads"]
    assert sum(o == "s" for u in in_window for _, o in u["reads"]) == load["metrics"]["stale_reads"]


def test_the_pytest_plugin_gates_on_a_target_run(tmp_path):
    """`pytest SCENARIO --repaychaos-target T`: each SLO judged on the black-box measurement."""
    scenario = _scenario(duration="20s", pipeline={
        "channel": {"latency": 0}, "credit": {"service": 0}, "reconcile": "off",
        "sync": {"workers": "unlimited", "service": {"dist": "exponential", "mean": "2s"}}},
        slo={"lost_repayments": "== 0", "stale_read_ratio": "< 0.1%"})  # every first read at 2 s: ~37 % stale
    path = tmp_path / "gate.chaos.yaml"
    path.write_text(json.dumps(scenario.normalised()), encoding="utf-8")
    with ServiceProcess(scenario, tmp_path / "svc.db", time_scale=K, token=TOKEN) as svc:
        target = _target(tmp_path, svc.url)
        proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", str(path),
                               "--repaychaos-target", str(target), "--repaychaos-time-scale", str(K)],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED gate.chaos.yaml::slo[stale_read_ratio]" in proc.stdout
    # a run whose reads landed too late is not a measurement: no SLO of it passes, and it says why
    assert ("PASSED gate.chaos.yaml::slo[lost_repayments]" in proc.stdout
            or "the run is not a measurement (time resolution" in proc.stdout), proc.stdout


@pytest.mark.parametrize("how", ["ctrl-c", "max-wall"])
def test_ctrl_c_and_the_wall_clock_limit_roll_back_started_faults(tmp_path, how):
    """A fault window still open when the run is interrupted (SIGINT: exit 130) or hits --max-wall
    gets its stop action on the way out."""
    import signal
    import time

    started, stopped = tmp_path / "started", tmp_path / "stopped"
    start = json.dumps({"command": [sys.executable, "-c", f"open({str(started)!r}, 'w').write('x')"]})
    stop = json.dumps({"command": [sys.executable, "-c", f"open({str(stopped)!r}, 'w').write('x')"]})
    target = _target(tmp_path, f"http://127.0.0.1:{free_port()}", f"  - fault: long\n    start: {start}\n    stop: {stop}\n")
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(json.dumps(_scenario(duration="10m", faults=[{"name": "long", "type": "maintenance",
                                                                       "component": "sync", "at": "0s"}]).normalised()))
    cmd = [sys.executable, "-m", "repaychaos", "load", str(scenario), "--target", str(target), "--out", str(tmp_path / "o")]
    if how == "max-wall":
        # the start action is due 4 s after launch (Locust's lead); the limit cuts the run 3 s later
        proc = subprocess.run(cmd + ["--max-wall", "7"], capture_output=True, text=True, timeout=120)
        # a run cut short is not a measurement: exit 3, and it still reports, verdict inconclusive
        assert proc.returncode == 3, proc.stderr
        assert "the run ended before every shard's users were done" in proc.stderr
        result = json.loads((tmp_path / "o" / "result.json").read_text())
        assert result["verdict"] == "inconclusive" and not result["passed"]
        actions = result["run"]["actions"]
        assert [(a["action"], a["reason"]) for a in actions] == [("start", "window"), ("stop", "rollback")]
    else:
        # The run gets SIGINT's default action, as in a terminal: a test runner started in the
        # background by a shell without job control ignores SIGINT, the run would inherit that,
        # and a program rightly keeps an ignored SIGINT ignored. PYTHONFAULTHANDLER: a run that
        # does not stop gets SIGABRT below and prints every thread's stack.
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, PYTHONFAULTHANDLER="1"),
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        end = time.time() + 120  # the start action is due 4 s after launch; generous for a busy machine
        while not started.exists() and time.time() < end and proc.poll() is None:
            time.sleep(0.1)
        assert started.exists(), f"the fault's start action never ran (exit {proc.poll()})"
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            _, err = proc.communicate(timeout=30)
            pytest.fail("SIGINT did not stop the run within 60 s; its threads:\n" + err[-6000:])
        assert proc.returncode == 130, err
    assert started.exists() and stopped.exists()


@pytest.mark.soak
def test_in_real_time_the_exponential_delay_reads_e_minus_one_at_its_mean(tmp_path):
    """Time scale 1 (a black-box run as against someone else's service): the staleness at the
    mean of an exponential delay is e^-1 within the 99.9 % interval, or the run says it is not."""
    mean = 2.0
    service_scenario = _scenario(pipeline={"channel": {"latency": 0}, "credit": {"service": 0}, "reconcile": "off",
                                           "sync": {"workers": "unlimited",
                                                    "service": {"dist": "exponential", "mean": f"{mean}s"}}})
    with ServiceProcess(service_scenario, tmp_path / "svc.db", time_scale=1.0, token=TOKEN) as svc:
        target = load_target(_target(tmp_path, svc.url))
        result = run_target(_scenario(), target, time_scale=1.0)
    m = result["metrics"]
    assert result["run"]["complete"] and m["repayments"] > 600
    _honest_reading(result, m["visibility"]["p_stale"][m["visibility"]["t"].index(2.0)], m["repayments"],
                    math.exp(-1))
