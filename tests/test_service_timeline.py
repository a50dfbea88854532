"""The service's virtual time (:mod:`repaychaos.service.timeline`): its invariants, tested on
the object itself with writes and reads at chosen instants (no wall-clock dependence except
where a test says so, and then only as a lower bound)."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from repaychaos.semantics import REJECT_RETRY, release_time, retry_at
from repaychaos.service.clock import ScenarioClock
from repaychaos.service.timeline import RETRY_LATE_MAX_WALL, Timeline


def make(t0_offset: float = 1000.0, time_scale: float = 1.0) -> tuple[Timeline, list]:
    applied: list = []
    clock = ScenarioClock(time.time() - t0_offset / time_scale, time_scale)
    timeline = Timeline(clock, lambda t, msg, state: applied.append((t, msg, state)), lambda coro: coro.close())
    return timeline, applied


def test_a_due_write_is_applied_at_its_instant_not_before():
    """Reads before the instant leave it due; a read at the instant applies it, at that instant."""
    timeline, applied = make()
    timeline.add_due("a", 10.0, "m1", True, -math.inf)
    timeline.apply_due("a", 9.999)
    assert applied == [] and "a" in timeline.due
    timeline.apply_due("a", 10.0)
    assert applied == [(10.0, "m1", True)] and "a" not in timeline.due


def test_due_writes_of_an_account_apply_in_instant_order_each_at_its_own_instant():
    timeline, applied = make()
    timeline.add_due("a", 10.0, "m1", True, -math.inf)
    timeline.add_due("a", 12.0, "m2", False, -math.inf)
    timeline.add_due("a", 15.0, "m3", True, -math.inf)
    timeline.apply_due("a", 13.0)
    assert applied == [(10.0, "m1", True), (12.0, "m2", False)]
    timeline.apply_due("a", 99.0)
    assert applied[-1] == (15.0, "m3", True)


def test_a_write_decided_after_an_unusable_read_goes_just_after_it():
    """A read answered 'unusable' at 20 stays true: a write meant for 18 enters just after 20."""
    timeline, applied = make()
    t = timeline.add_due("a", 18.0, "m", True, unusable_seen=20.0)
    assert t == math.nextafter(20.0, math.inf)
    timeline.apply_due("a", 20.0)
    assert applied == []
    timeline.apply_due("a", 20.1)
    assert applied == [(t, "m", True)]


def test_a_read_does_not_apply_a_write_due_after_a_pending_fault_act():
    """Until a fault act at 30 has run, a read stops before writes due at or after 30; the
    write's own task (by_read=False) is not stopped."""
    timeline, applied = make()
    timeline._barriers.append(30.0)
    timeline.add_due("a", 29.0, "before", True, -math.inf)
    timeline.add_due("a", 31.0, "after", True, -math.inf)
    timeline.apply_due("a", 40.0)
    assert applied == [(29.0, "before", True)]
    timeline.apply_due("a", 40.0, by_read=False)
    assert applied[-1] == (31.0, "after", True)


def test_a_fault_act_runs_after_every_write_due_by_its_instant():
    """The act at t sees the writes due at or before t applied (they are no longer in flight)."""

    async def run() -> list:
        applied: list = []
        clock = ScenarioClock(time.time() - 100.0, 1.0)
        loop_tasks: list = []
        timeline = Timeline(clock, lambda t, m, s: applied.append(("write", t, m)),
                            lambda coro: loop_tasks.append(asyncio.ensure_future(coro)))
        now = clock.now()
        timeline.add_due("a", now - 1.0, "m1", True, -math.inf)
        timeline.add_due("b", now + 5.0, "m2", True, -math.inf)
        timeline.at(now, lambda t: applied.append(("act", t, None)))
        await asyncio.gather(*loop_tasks)
        return applied

    applied = asyncio.run(run())
    assert [kind for kind, *_ in applied] == ["write", "act"]
    assert applied[0][2] == "m1"


def test_write_when_due_never_applies_before_the_instant():
    """The write's own task wakes at or after its instant (a lower bound on the wall clock only)."""

    async def run() -> tuple[list, float, float]:
        applied: list = []
        clock = ScenarioClock(time.time() - 100.0, 10.0)
        timeline = Timeline(clock, lambda t, m, s: applied.append((t, clock.now())), lambda coro: None)
        t = clock.now() + 0.3  # 30 ms wall ahead
        timeline.add_due("a", t, "m", True, -math.inf)
        await timeline.write_when_due("a", t)
        return applied, t, clock.now()

    applied, t, _ = asyncio.run(run())
    (instant, applied_at), = applied
    assert instant == t and applied_at >= t


@pytest.mark.parametrize("first, now, end, expected", [
    (0.0, 3.0, math.inf, 5.0),        # the next grid instant after now
    (0.0, 5.0, math.inf, 10.0),       # strictly after
    (0.0, 3.0, 12.0, 15.0),           # not before the window's scheduled end lets it through
    (100.0, 101.0, 100.0 + 2 * REJECT_RETRY, 100.0 + 2 * REJECT_RETRY),
])
def test_the_named_retry_is_the_first_grid_instant_that_can_succeed(first, now, end, expected):
    timeline, _ = make()
    assert timeline.named_retry(first, now, end) == expected


def test_the_grid_has_one_home():
    """release_time's reject release is an instant of retry_at's grid."""
    assert release_time(100.0, 112.0, "reject") == retry_at(100.0, 3)


def test_a_late_retry_within_the_allowance_is_taken_as_of_its_named_instant():
    """Late by less than RETRY_LATE_MAX_WALL (times K): as of the named instant, no wait."""

    async def run() -> tuple[float | None, float | None]:
        timeline, _ = make(t0_offset=1000.0, time_scale=10.0)
        now = timeline.now()
        within = await timeline.take_retry(now - 50.0, now - 1.0, lambda t: True)
        return within, now - 1.0

    taken, named = asyncio.run(run())
    assert taken == named
    assert RETRY_LATE_MAX_WALL * 10.0 > 1.0


def test_an_early_retry_is_let_in_at_the_first_grid_instant_the_ledger_is_open():
    """Early: held; tried at each grid instant before the named one; taken now (None) once open."""

    async def run() -> tuple[float | None, list[float], float]:
        timeline, _ = make(t0_offset=1000.0, time_scale=100.0)  # 5 s of grid = 50 ms wall
        now = timeline.now()
        first = now - REJECT_RETRY + 1.0  # next grid instant: now + 1.0
        asked: list[float] = []

        def ledger_open(t: float) -> bool:
            asked.append(t)
            return len(asked) >= 2

        taken = await timeline.take_retry(first, first + 10 * REJECT_RETRY, ledger_open)
        return taken, asked, first

    taken, asked, first = asyncio.run(run())
    assert taken is None
    assert asked == [retry_at(first, 1), retry_at(first, 2)]


def test_a_write_task_applies_its_write_even_when_the_clock_reads_back_just_below_its_instant():
    """The task wakes when the wall clock reaches the instant's wall time; scenario time read
    back from it can round to just below the instant (t0's last bit is ~2e-7 s). The write is
    applied all the same, at its instant, instead of waiting for a read of its account."""
    timeline, applied = make()
    t = timeline.now() + 0.01

    class BelowClock:
        """Sleeps return at once; now() reads one ulp below the instant."""
        async def sleep_until(self, _t: float) -> None:
            return None

        async def sleep_until_precise(self, _t: float) -> None:
            return None

        def now(self) -> float:
            return math.nextafter(t, -math.inf)

    timeline.clock = BelowClock()  # type: ignore[assignment]
    timeline.add_due("a", t, "m", True, -math.inf)
    asyncio.run(timeline.write_when_due("a", t))
    assert applied == [(t, "m", True)] and "a" not in timeline.due
