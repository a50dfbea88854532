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

    seen = {"acked": 0, "reads": 0, "stale": 0, "done": 0, "contacts": 0, "first_usable": [], "index0": 0}

    @live.repayment_acked.add_listener
    def _acked(scenario, ack_at, **kw):
        seen["acked"] += 1

    @live.read_seen.add_listener
    def _read(scenario, usable, hold, since_ack_s, index, **kw):
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
    (tmp_path / "sc.json").write_text(json.dumps(scenario.normalised()))
    (tmp_path / "listen.py").write_text(LISTENER)
    records = tmp_path / "records"
    records.mkdir()
    with ServiceProcess(scenario, tmp_path / "svc.db", time_scale=1.0) as svc:
        env = dict(os.environ, REPAYCHAOS_SCENARIO=str(tmp_path / "sc.json"), REPAYCHAOS_TIME_SCALE="1",
                   REPAYCHAOS_T0=repr(time.time() + 3), REPAYCHAOS_RECORD=str(records), REPAYCHAOS_QUIT_WHEN_DONE="1",
                   EVENTS_OUT=str(tmp_path / "events.json"))
        proc = subprocess.run([sys.executable, "-m", "locust", "-f", str(tmp_path / "listen.py"), "--headless",
                               "-u", "1", "-r", "1", "-t", "60s", "--host", svc.url, "--only-summary"],
                              capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads((tmp_path / "events.json").read_text())
    users = read_records(records).users
    acked = [u for u in users if u.get("id")]
    assert len(acked) == len(users) > 30  # 60 arrivals expected
    assert seen["acked"] == len(acked) and seen["done"] == len(acked)
    assert seen["reads"] == sum(len(u["reads"]) for u in acked)
    assert seen["stale"] == sum(1 for u in acked for r in u["reads"] if not r[1])
    assert seen["index0"] == len(acked) and seen["contacts"] == 0
    # the first usable read's instant is the service's, 500 ms after its ack (plus event-loop lateness)
    assert all(0.3 < s < 0.7 for s in seen["first_usable"]), seen["first_usable"]
