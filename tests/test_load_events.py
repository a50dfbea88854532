"""The live event hooks (repaychaos.load.events) fire once per ack, per read and per finished
user, with what the user's own record says."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time

import pytest

from repaychaos.load.launcher import ServiceProcess
from repaychaos.load.measure import read_records
from repaychaos.scenarios import load_scenario_data

pytestmark = pytest.mark.live

LISTENER = textwrap.dedent('''\
    import json, os
    from locust import events
    from repaychaos.load import events as live
    from repaychaos.load.locustfile import Repayer  # noqa: F401 - the users

    seen = {"acked": 0, "reads": 0, "stale": 0, "done": 0, "contacts": 0, "first_usable": [], "index0": 0,
            "holder_reads": 0, "holder_stale": 0}

    @live.repayment_acked.add_listener
    def _acked(scenario, ack_at, **kw):
        seen["acked"] += 1

    @live.read_seen.add_listener
    def _read(scenario, usable, hold, since_ack_s, index, holder=False, **kw):
        if holder:
            seen["holder_reads"] += 1
            seen["holder_stale"] += not usable
            return
        seen["reads"] += 1
        seen["stale"] += (not usable and not hold)
        seen["index0"] += index == 0

    @live.user_done.add_listener
    def _done(scenario, support_contact, first_usable_s, **kw):
        seen["done"] += 1
        seen["contacts"] += bool(support_contact)
        if first_usable_s is not None:
            seen["first_usable"].append(first_usable_s)

    @events.quitting.add_listener
    def _write(**kw):
        with open(os.environ["EVENTS_OUT"], "w") as fh:
            json.dump(seen, fh)
    ''')


def _run_listener(tmp_path, scenario):
    """The users of ``scenario`` under Locust with LISTENER against a reference service at time
    scale 1: what the hooks counted, and the users' own records."""
    (tmp_path / "sc.json").write_text(json.dumps(scenario.normalised()))
    (tmp_path / "listen.py").write_text(LISTENER)
    records = tmp_path / "records"
    records.mkdir()
    t0 = time.time() + 5  # one scenario clock for the service (its faults) and the users
    with ServiceProcess(scenario, tmp_path / "svc.db", time_scale=1.0, t0=t0) as svc:
        env = dict(os.environ, REPAYCHAOS_SCENARIO=str(tmp_path / "sc.json"), REPAYCHAOS_TIME_SCALE="1",
                   REPAYCHAOS_T0=repr(t0), REPAYCHAOS_RECORD=str(records), REPAYCHAOS_QUIT_WHEN_DONE="1",
                   EVENTS_OUT=str(tmp_path / "events.json"))
        proc = subprocess.run([sys.executable, "-m", "locust", "-f", str(tmp_path / "listen.py"), "--headless",
                               "-u", "1", "-r", "1", "-t", "60s", "--host", svc.url, "--only-summary"],
                              capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads((tmp_path / "events.json").read_text()), read_records(records).users


def test_hooks_fire_once_per_ack_read_and_finished_user(tmp_path):
    """Constant 300 ms sync, first look at 100 ms then every 400 ms: the hooks count as many acks,
    reads and stale reads as the users' own records hold, every user's first look has index
    0, nobody runs out of checks, and every first usable read comes about 500 ms after the ack."""
    scenario = load_scenario_data({
        "version": 1, "name": "events", "duration": "6s", "seed": 5,
        "workload": {"arrivals": {"rate": "10/s"}, "check": {"first_after": "100ms", "every": "400ms", "max_checks": 3}},
        "pipeline": {"channel": {"latency": 0}, "sync": {"workers": "unlimited", "service": "300ms"},
                     "credit": {"service": 0}, "reconcile": "off"},
    })
    seen, users = _run_listener(tmp_path, scenario)
    acked = [u for u in users if u.get("id")]
    assert len(acked) == len(users) > 30  # 60 arrivals expected
    assert seen["acked"] == len(acked) and seen["done"] == len(acked)
    assert seen["reads"] == sum(len(u["reads"]) for u in acked)
    assert seen["stale"] == sum(1 for u in acked for r in u["reads"] if not r[1])
    assert seen["index0"] == len(acked) and seen["contacts"] == 0
    # the first usable read's instant is the service's, 500 ms after its ack (plus event-loop lateness)
    assert all(0.3 < s < 0.7 for s in seen["first_usable"]), seen["first_usable"]


def test_holders_looks_fire_the_read_hook_marked_as_holders(tmp_path):
    """Phantom records (semantics 10b) at 2/s over [1 s, 4 s) with sweeps every 2 s, holders
    looking 500 ms and 3 s after each write: the hook sees each holder's look once, marked
    ``holder`` (so the exporter counts it as a read, not a user), as many as the holders' own
    records hold, and the repaying users' counts are as without them."""
    scenario = load_scenario_data({
        "version": 1, "name": "events-holders", "duration": "6s", "seed": 5,
        "workload": {"arrivals": {"rate": "5/s"}, "check": {"first_after": "100ms", "every": "400ms", "max_checks": 3}},
        "pipeline": {"channel": {"latency": 0}, "sync": {"workers": "unlimited", "service": "300ms"},
                     "credit": {"service": 0}, "reconcile": {"every": "2s"}},
        "faults": [{"type": "phantom_record", "at": "1s", "for": "3s", "rate": 2, "holder_looks": ["500ms", "3s"]}],
    })
    seen, records = _run_listener(tmp_path, scenario)
    holders = [r for r in records if "holder" in r]
    users = [r for r in records if "holder" not in r and r.get("id")]
    assert len(holders) == 6  # writes at 1.25, 1.75, ..., 3.75 s
    assert seen["holder_reads"] == sum(len(h["reads"]) for h in holders) >= len(holders)
    assert seen["holder_stale"] == sum(1 for h in holders for r in h["reads"] if not r[1]) > 0
    assert seen["reads"] == sum(len(u["reads"]) for u in users)
    assert seen["done"] == seen["acked"] == len(users)
