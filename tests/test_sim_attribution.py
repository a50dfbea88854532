"""Attribution of stale reads to the fault that caused the backlog (SEMANTICS 3a, 11)."""

from __future__ import annotations

from repaychaos.scenarios.loader import load_scenario_text
from repaychaos.sim.simulate import run_model

SLOWED = """\
version: 1
name: slowed
duration: 1h
warmup: 5m
seed: 4
workload:
  arrivals: {rate: 5/s}
  check: {first_after: 2s, every: 10s, max_checks: 3}
pipeline:
  channel: {latency: 0s}
  sync: {workers: 2, service: {dist: exponential, mean: 100ms}}
  credit: {service: 0s}
  reconcile: off
faults:
  - {type: sync_delay, at: 20m, for: 10m, extra: 1s}
"""


def test_backlog_behind_slowed_messages_is_blamed_on_the_sync_delay():
    """Reads stale only because their message queued behind slowed ones count as sync_delay.

    With the fault the pool's capacity (2 / 1.1 s) is below the arrival rate (5/s), so a
    backlog of thousands builds; without it utilisation is 25 % and a 2 s check is
    essentially never stale. So nearly every stale read is the fault's.
    """
    quiet = run_model(load_scenario_text(SLOWED.split("faults:")[0]), processes=1, progress=False)["metrics"]
    slowed = run_model(load_scenario_text(SLOWED), processes=1, progress=False)["metrics"]
    assert quiet["stale_reads"] <= 5
    causes = slowed["stale_reads_by_cause"]
    assert slowed["stale_reads"] > 5000
    assert causes["queueing"] <= quiet["stale_reads"] + 5
    assert causes["sync_delay"] == slowed["stale_reads"] - causes["queueing"]
