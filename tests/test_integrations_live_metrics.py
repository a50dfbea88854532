"""The live staleness exporter: what it counts from the users' events, and the format it serves."""

from __future__ import annotations

import math
import random
import re
import shutil
import subprocess
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from staleness_events import SCENARIO, script

from repaychaos.integrations.live_metrics import TTU_BUCKETS, LiveStaleness, MetricsServer, exposition
from repaychaos.scenarios import resolve_scenario


def _feed(live: LiveStaleness, users: int, seed: int) -> None:
    """Fire a seeded script of users at ``live`` the way the repaying users fire the events."""
    for name, kwargs in script(users, seed):
        getattr(live, "on_" + name)(**kwargs)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _value(samples: dict, name: str, **labels: str) -> float:
    want = {"scenario": SCENARIO, "source": "load", **labels}
    return samples[(name, tuple(sorted(want.items())))]


def test_counts_follow_the_events() -> None:
    """Acks, reads by outcome, the stale share, affected users, support contacts and the
    time-to-usable histogram are exactly what the fired events say."""
    live = LiveStaleness("load", resolve_scenario(SCENARIO), clock=lambda: 10.0)
    live.on_repayment_acked(scenario=SCENARIO, ack_at=1.0)
    live.on_repayment_acked(scenario=SCENARIO, ack_at=2.0)
    live.on_repayment_acked(scenario=SCENARIO, ack_at=3.0)
    # user 1: stale, stale, usable at 65 s; user 2: usable at once (5 s); user 3: a held account
    for index, usable in enumerate([False, False, True]):
        live.on_read_seen(scenario=SCENARIO, usable=usable, hold=False, since_ack_s=5 + 30 * index, index=index)
    live.on_user_done(scenario=SCENARIO, support_contact=False, first_usable_s=65.0)
    live.on_read_seen(scenario=SCENARIO, usable=True, hold=False, since_ack_s=5.0, index=0)
    live.on_user_done(scenario=SCENARIO, support_contact=False, first_usable_s=5.0)
    live.on_read_seen(scenario=SCENARIO, usable=False, hold=True, since_ack_s=5.0, index=0)
    live.on_user_done(scenario=SCENARIO, support_contact=False, first_usable_s=None)
    s = _samples(exposition(live).decode())
    assert _value(s, "repaychaos_repayments_acked_total") == 3
    assert _value(s, "repaychaos_reads_total", outcome="stale") == 2
    assert _value(s, "repaychaos_reads_total", outcome="usable") == 2
    assert _value(s, "repaychaos_reads_total", outcome="hold") == 1
    assert _value(s, "repaychaos_stale_read_ratio") == pytest.approx(2 / 5)
    assert _value(s, "repaychaos_affected_users_total") == 1
    assert _value(s, "repaychaos_users_done_total") == 3
    assert _value(s, "repaychaos_never_usable_users_total") == 1
    assert _value(s, "repaychaos_support_contacts_total") == 0
    assert _value(s, "repaychaos_time_to_usable_seconds_count") == 2
    assert _value(s, "repaychaos_time_to_usable_seconds_sum") == 70
    assert _value(s, "repaychaos_time_to_usable_seconds_bucket", le="5.0") == 1
    assert _value(s, "repaychaos_time_to_usable_seconds_bucket", le="60.0") == 1
    assert _value(s, "repaychaos_time_to_usable_seconds_bucket", le="120.0") == 2
    assert _value(s, "repaychaos_time_to_usable_seconds_bucket", le="+Inf") == 2
    assert _value(s, "repaychaos_run_scenario_seconds") == 10.0


def test_a_holders_looks_count_as_reads_not_as_users() -> None:
    """The holder of an account a fault wrote a debt on (semantics 10b): its looks count in
    reads and stale reads, as result.json counts them, but it is no repaying user, so a stale
    first look makes no affected user and its last look no finished user."""
    live = LiveStaleness("load", resolve_scenario(SCENARIO), clock=lambda: 10.0)
    for index, usable in enumerate([False, False, True]):
        live.on_read_seen(scenario=SCENARIO, usable=usable, hold=False, since_ack_s=60.0 * index, index=index,
                          holder=True)
    s = _samples(exposition(live).decode())
    assert _value(s, "repaychaos_reads_total", outcome="stale") == 2
    assert _value(s, "repaychaos_reads_total", outcome="usable") == 1
    assert _value(s, "repaychaos_stale_read_ratio") == pytest.approx(2 / 3)
    assert _value(s, "repaychaos_affected_users_total") == 0
    assert _value(s, "repaychaos_users_done_total") == 0


def test_faults_in_force_follow_the_scenario_clock() -> None:
    """The fault gauge is 1 exactly while the run's scenario clock is inside the fault's window
    (nightly-maintenance: sync paused over [1h, 1h20m)); before any read the share is NaN."""
    now = [0.0]
    live = LiveStaleness("load", resolve_scenario(SCENARIO), clock=lambda: now[0])
    for t, expected in [(3599.9, 0.0), (3600.0, 1.0), (4000.0, 1.0), (4799.9, 1.0), (4800.0, 0.0)]:
        now[0] = t
        s = _samples(exposition(live).decode())
        assert _value(s, "repaychaos_run_fault_active", fault="nightly-deploy", type="maintenance") == expected, t
    assert math.isnan(_value(s, "repaychaos_stale_read_ratio"))  # no reads yet: no share, not a 0 % one


def test_workers_reports_merge_to_the_same_counts() -> None:
    """Two workers' reports added on the master give exactly the counts of one process that saw
    every event (Locust master/worker mode adds, nothing is lost or counted twice)."""
    scenario = resolve_scenario(SCENARIO)
    single = LiveStaleness("load", scenario, clock=lambda: 0.0)
    master = LiveStaleness("load", scenario, clock=lambda: 0.0)
    for seed in (1, 2):
        worker = LiveStaleness("load", scenario)
        _feed(worker, 300, seed)
        _feed(single, 300, seed)
        half = worker.take_wire()  # one report
        master.add_wire(half)
        _feed(worker, 100, seed + 10)  # and a later one
        _feed(single, 100, seed + 10)
        master.add_wire(worker.take_wire())
        assert worker.take_wire() == {}  # a report carries what is new since the last one
    assert exposition(master) == exposition(single)


def test_quantiles_are_within_a_bin_of_the_exact_ones() -> None:
    """The time-to-usable quantiles the web UI shows are within 1 % (one log bin) of the exact order
    statistic of the same values (the estimator of result.json)."""
    live = LiveStaleness("load")
    rng = random.Random(3)
    values = [rng.lognormvariate(3, 1) for _ in range(5000)]
    for v in values:
        live.on_user_done(scenario="x", support_contact=False, first_usable_s=v)
    values.sort()
    for q in (0.5, 0.95, 0.99):
        exact = values[int(q * len(values)) - 1]
        assert live.tally("x").quantile(q) == pytest.approx(exact, rel=0.011)


_NAME = re.compile(r"^repaychaos_[a-z][a-z0-9_]*$")


def test_exposition_follows_prometheus_conventions() -> None:
    """Every family has help text, the base labels and a snake_case name in the repaychaos_
    namespace; counters end in _total, the histogram is in seconds with cumulative le buckets
    ending at +Inf; gauges carry no counter or histogram suffix."""
    live = LiveStaleness("load", resolve_scenario(SCENARIO), clock=lambda: 1.0)
    _feed(live, 500, 5)
    fams = list(text_string_to_metric_families(exposition(live).decode()))
    assert {f.type for f in fams} == {"counter", "gauge", "histogram"}
    for fam in fams:
        assert _NAME.match(fam.name), fam.name
        assert fam.documentation, fam.name
        assert fam.samples, fam.name
        for s in fam.samples:
            assert {"scenario", "source"} <= set(s.labels), s
        if fam.type == "counter":
            assert {s.name for s in fam.samples} == {fam.name + "_total"}
        elif fam.type == "histogram":
            assert fam.name.endswith("_seconds")
            buckets = [s for s in fam.samples if s.name.endswith("_bucket")]
            les = [s.labels["le"] for s in buckets]
            assert les[-1] == "+Inf" and [float(x) for x in les[:-1]] == [float(b) for b in TTU_BUCKETS]
            counts = [s.value for s in buckets]
            assert counts == sorted(counts)
            count = next(s.value for s in fam.samples if s.name.endswith("_count"))
            assert counts[-1] == count
        else:
            assert not re.search(r"_(total|count|sum|bucket)$", fam.name), fam.name


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (apt: prometheus)")
def test_promtool_finds_nothing_to_lint() -> None:
    """``promtool check metrics`` (Prometheus's own linter) accepts the exposition without a finding."""
    live = LiveStaleness("load", resolve_scenario(SCENARIO), clock=lambda: 1.0)
    _feed(live, 200, 6)
    proc = subprocess.run(["promtool", "check", "metrics"], input=exposition(live), capture_output=True,
                          timeout=60)
    assert proc.returncode == 0 and not proc.stdout.strip() and not proc.stderr.strip(), (proc.stdout, proc.stderr)


def test_server_serves_the_exposition_on_loopback() -> None:
    """The endpoint answers GET /metrics on 127.0.0.1 with the text format and its content type."""
    live = LiveStaleness("target", resolve_scenario(SCENARIO), clock=lambda: 2.0)
    _feed(live, 50, 8)
    server = MetricsServer(live, 0)
    try:
        assert server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(server.url, timeout=10) as resp:
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            body = resp.read()
        assert body == exposition(live)
        assert b'source="target"' in body
    finally:
        server.close()


def test_a_source_other_than_load_or_target_is_refused() -> None:
    """The source label is one of the two result sources."""
    with pytest.raises(ValueError, match="expected 'load' or 'target'"):
        LiveStaleness("model")


def test_plugin_settings_read_the_locustfile_variables() -> None:
    """The plugin reads the scenario as the locustfile does (bundled name, path or JSON), the port,
    the source, and the run's clock from REPAYCHAOS_T0 and REPAYCHAOS_TIME_SCALE."""
    import json
    import time

    from repaychaos.integrations.live_metrics import settings_from_env

    scenario = resolve_scenario(SCENARIO)
    t0 = time.time() - 10.0
    found = settings_from_env({"REPAYCHAOS_SCENARIO": json.dumps(scenario.normalised()),
                               "REPAYCHAOS_METRICS_PORT": "0", "REPAYCHAOS_METRICS_SOURCE": "target",
                               "REPAYCHAOS_T0": repr(t0), "REPAYCHAOS_TIME_SCALE": "30"})
    assert (found["scenario"].name, found["port"], found["source"]) == (SCENARIO, 0, "target")
    assert 300.0 <= found["clock"]() < 300.0 + 30 * 60  # 10 s (plus this test's own time) at K = 30
    bare = settings_from_env({})
    assert (bare["scenario"].name, bare["port"], bare["source"], bare["clock"]) == (SCENARIO, None, "load", None)


@pytest.mark.parametrize("env, message", [
    ({"REPAYCHAOS_METRICS_PORT": "nine"}, "REPAYCHAOS_METRICS_PORT: expected a port number, found 'nine'"),
    ({"REPAYCHAOS_METRICS_PORT": "70000"}, "REPAYCHAOS_METRICS_PORT: expected 0..65535, found 70000"),
    ({"REPAYCHAOS_METRICS_SOURCE": "sim"}, "REPAYCHAOS_METRICS_SOURCE: expected 'load' or 'target', found 'sim'"),
])
def test_plugin_settings_refuse_malformed_values(env: dict[str, str], message: str) -> None:
    """A malformed setting is an InvalidInput naming the variable, the expectation and the value."""
    from repaychaos.core.errors import InvalidInput
    from repaychaos.integrations.live_metrics import settings_from_env

    with pytest.raises(InvalidInput) as info:
        settings_from_env(env)
    assert str(info.value) == message
