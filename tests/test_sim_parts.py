"""The model's parts in isolation: arrivals, schedules, view history, reads, injectors."""

from __future__ import annotations

import math
import random

from repaychaos.scenarios.spec import FAULT_TYPES
from repaychaos.core.records import Read
from repaychaos.semantics import REJECT_RETRY, release_time
from repaychaos.scenarios.faults.hooks import GATE, SYNC_START, ModelInjector
from repaychaos.semantics import arrival_times
from repaychaos.sim.schedule import Schedule, Schedules
from repaychaos.core.streams import stream
from repaychaos.sim.stages import start_service
from repaychaos.sim.users import reads_general, reads_simple, view_history


def _sweeps(every: float):
    return lambda t: math.ceil(t / every) * every


def test_every_fault_type_has_one_injector():
    """The registry holds exactly one injector per scenario fault type."""
    from repaychaos.scenarios.faults import REGISTRY

    assert set(REGISTRY) == set(FAULT_TYPES)
    assert all(issubclass(ft.model, ModelInjector) for ft in REGISTRY.values())


def test_streams_are_reproducible_and_independent():
    """A stream depends only on (seed, index, name)."""
    assert stream(1, 0, "users").random() == stream(1, 0, "users").random()
    assert stream(1, 0, "users").random() != stream(1, 1, "users").random()
    assert stream(1, 0, "users").random() != stream(1, 0, "service").random()


def test_profile_with_a_zero_rate_step_has_no_arrivals_there():
    """Piecewise rates: nothing arrives while the rate is zero, and all arrivals are in [0, duration)."""
    rng = random.Random(1)
    times = list(arrival_times(((0.0, 5.0), (100.0, 0.0), (200.0, 5.0)), 300.0, lambda: rng.expovariate(1.0)))
    assert times == sorted(times)
    assert not [t for t in times if 100.0 <= t < 200.0]
    assert 0 <= times[0] and times[-1] < 300.0
    # 200 s at 5/s: a Poisson count of mean 1000, sd ~32
    assert abs(len(times) - 1000) <= 4 * math.sqrt(1000)


def test_schedule_reports_active_injectors_in_declared_order():
    """A schedule returns the injectors whose window holds t, in the order they were declared."""
    first, second = object(), object()
    sched = Schedule([(10.0, 20.0, first), (15.0, math.inf, second)])
    assert sched.at(5.0) == ()
    assert sched.at(12.0) == (first,)
    assert sched.at(16.0) == (first, second)
    assert sched.at(25.0) == (second,)
    assert sched.at(11.0) == (first,)  # going back in time works too
    assert Schedule([]).empty


def test_a_worker_starts_a_message_after_the_gates_with_the_starts_in_force_then():
    """The sync gates hold a message until they let it through; only the ``sync_start``
    hooks in force at that instant add their extra time, each called by name."""
    class Pause:
        def hooks(self):
            return [(GATE["sync"], 10.0, 20.0)]

        def gate(self, component, msg, t):
            assert component == "sync"
            return 20.0

    class Slow:
        def __init__(self, start, end, extra):
            self.window, self.extra = (start, end), extra

        def hooks(self):
            return [(SYNC_START, *self.window)]

        def sync_start(self, msg, t):
            return self.extra

    class Message:
        extra = 0.0

    h = Schedules([Slow(0.0, 15.0, 1.0), Pause(), Slow(15.0, 30.0, 2.0)])
    assert h.gate_ledger is None and h.gate_sync is not None and h.sync_start is not None
    msg = Message()
    assert start_service(h, msg, 12.0) == 20.0
    assert msg.extra == 2.0  # the start in force at 20, not the one at 12
    msg = Message()
    assert start_service(h, msg, 5.0) == 5.0
    assert msg.extra == 1.0


def test_reject_retry_is_the_first_retry_at_or_after_the_window_end():
    """Rejected work retries every REJECT_RETRY and goes through at the first retry >= end."""
    assert release_time(100.0, 112.0, "reject") == 100.0 + 3 * REJECT_RETRY
    assert release_time(100.0, 110.0, "reject") == 110.0
    assert release_time(100.0, math.inf, "reject") == math.inf


def test_view_history_of_a_plain_write_is_the_earlier_of_write_and_sweep():
    """The view turns usable at min(own write, first sweep >= ack)."""
    assert view_history(10.0, False, 30.0, False, _sweeps(60.0))[:2] == (30.0, None)
    assert view_history(50.0, False, 70.0, False, _sweeps(60.0))[:2] == (60.0, None)
    assert view_history(10.0, False, None, False, _sweeps(60.0))[:2] == (60.0, None)


def test_bad_write_after_a_sweep_flips_the_view_back():
    """A corrupt write after the repairing sweep shows unusable again until the next sweep."""
    first, changes, repaired = view_history(50.0, False, 70.0, True, _sweeps(60.0))
    assert (first, changes, repaired) == (60.0, [(60.0, True), (70.0, False), (120.0, True)], 120.0)


def test_held_account_with_bad_write_shows_usable_until_the_sweep():
    """For a held account a bad write shows usable (risk exposure) until the next sweep."""
    assert view_history(10.0, True, 20.0, True, _sweeps(60.0))[:2] == (20.0, [(20.0, True), (60.0, False)])
    assert view_history(10.0, True, 20.0, False, _sweeps(60.0))[0] == math.inf


def test_reads_stop_at_the_first_usable_one():
    """Checks at ack + first + k*every, stopping at the first usable read."""
    reads = reads_simple(100.0, 140.0, 5.0, 30.0, 5)
    assert reads == [Read(105.0, False, 105.0), Read(135.0, False, 135.0), Read(165.0, True, 165.0)]
    assert len(reads_simple(0.0, math.inf, 5.0, 30.0, 5)) == 5


def test_cache_serves_the_status_fetched_at_the_ack():
    """Within cache_ttl of the last fill the app shows the cached status with its as_of."""
    reads = reads_general(100.0, lambda t: t >= 101.0, 5.0, 30.0, 5, 60.0)
    assert reads[0] == Read(105.0, False, 100.0)
    assert reads[1] == Read(135.0, False, 100.0)
    assert reads[2] == Read(165.0, True, 165.0)
