"""A tiny Locust user that fires the repaying users' events on a made-up, deterministic timeline.

It talks to no service: each arrival is acked at once, and its reads are stale while the
scenario's fault windows (plus a 30 s drain) hold the view back, usable 0.5 s after the
ack otherwise; 1 % of accounts are held. The tests and the web-UI screenshot use it to
drive the staleness listeners through a real Locust process. Settings: the usual
``REPAYCHAOS_SCENARIO``, ``REPAYCHAOS_T0``, ``REPAYCHAOS_TIME_SCALE``, and
``DEMO_RATE`` (arrivals per wall second, default 20).
"""

from __future__ import annotations

import os
import random
import time

import gevent
from locust import User, constant, task

from repaychaos.load import events
from repaychaos.load.settings import LocustSettings
from repaychaos.scenarios import resolve_scenario
from repaychaos.core.result import fault_windows

SETTINGS = LocustSettings.from_env()
SCENARIO = resolve_scenario(SETTINGS.scenario)
K = SETTINGS.time_scale or 1.0
T0 = SETTINGS.t0 if SETTINGS.t0 is not None else time.time()
RATE = float(os.environ.get("DEMO_RATE", "20"))
WINDOWS = [(w["start"], w["end"] if w["end"] is not None else SCENARIO.duration) for w in fault_windows(SCENARIO)]
CHECK = SCENARIO.workload.check
FIRST_AFTER = 5.0


def usable_at(ack: float) -> float:
    for start, end in WINDOWS:
        if start <= ack < end:
            return end + 30.0
    return ack + 0.5


class DemoRepayer(User):
    wait_time = constant(0)
    fixed_count = 1

    def on_start(self) -> None:
        self.rng = random.Random(7)
        self.seq = 0

    @task
    def arrive(self) -> None:
        gevent.sleep(1.0 / RATE)
        ack = (time.time() - T0) * K
        if ack >= SCENARIO.duration or ack < 0:
            return
        events.repayment_acked.fire(scenario=SCENARIO.name, ack_at=ack)
        gevent.spawn(self.reads, ack, self.rng.random() < 0.01)

    def reads(self, ack: float, hold: bool) -> None:
        ready = usable_at(ack)
        for index in range(CHECK.max_checks):
            at = ack + FIRST_AFTER + index * CHECK.every
            gevent.sleep(max(0.0, T0 + at / K - time.time()))
            usable = not hold and at >= ready
            events.read_seen.fire(scenario=SCENARIO.name, usable=usable, hold=hold, since_ack_s=at - ack, index=index)
            if usable:
                events.user_done.fire(scenario=SCENARIO.name, support_contact=False, first_usable_s=at - ack)
                return
        events.user_done.fire(scenario=SCENARIO.name, support_contact=not hold, first_usable_s=None)
