"""The service's fault board: windows on the timeline, reject retries, live add/end, validation."""

from __future__ import annotations

import math

import pytest

from repaychaos.service.fault_board import REJECT_RETRY, FaultBoard, parse_fault, release_time
from repaychaos.core.errors import InvalidInput


def test_pause_releases_at_the_window_end():
    """Work in a pause window goes through exactly when the window ends."""
    assert release_time(3.0, 11.0, "pause") == 11.0


def test_reject_releases_at_the_first_retry_at_or_after_the_end():
    """Rejected work retries every REJECT_RETRY from its first attempt (docs/explanation/semantics.md step 1)."""
    assert REJECT_RETRY == 5.0
    assert release_time(2.0, 11.0, "reject") == 12.0  # retries at 7, 12
    assert release_time(1.0, 11.0, "reject") == 11.0  # a retry falls exactly on the end


def test_scenario_fault_windows_are_placed_on_the_timeline():
    """A recurring maintenance fault has one window per period up to the horizon."""
    board = FaultBoard(horizon=100.0)
    board.add(parse_fault({"type": "maintenance", "component": "sync", "at": "10s", "for": "5s", "every": "40s"}))
    assert board.gate("sync", 9.99) is None
    assert board.gate("sync", 10.0) == (10.0, 15.0, "pause", "maintenance")
    assert board.gate("sync", 52.0) == (50.0, 55.0, "pause", "maintenance")
    assert board.gate("credit", 12.0) is None


def test_live_fault_is_relative_to_now_and_open_ended_without_for():
    """A live fault's `at` counts from now; without `for` it lasts until ended."""
    board = FaultBoard(horizon=100.0)
    active = board.add(parse_fault({"type": "sync_delay", "at": "2s", "extra": "1s"}), offset=30.0, source="live")
    assert active.windows == [(32.0, math.inf)]
    assert [a.id for a in board.in_force(1e6)] == [active.id] and board.in_force(31.9) == []


def test_ending_a_fault_cuts_its_windows_now():
    """DELETE ends the current window now and drops the ones not yet begun."""
    board = FaultBoard(horizon=100.0)
    active = board.add(parse_fault({"type": "maintenance", "component": "view", "at": "10s", "for": "5s",
                                    "every": "20s"}))
    assert board.end(active.id, 12.0)
    assert active.windows == [(10.0, 12.0)]
    assert board.gate("view", 12.0) is None
    assert board.listing(12.0) == []


def test_interface_bugs_act_on_their_own_link_only():
    """An interface bug's live rule drops on its own link (and draws nothing on the others)."""
    import random
    from types import SimpleNamespace

    board = FaultBoard(horizon=100.0)
    board.add(parse_fault({"type": "interface_bug", "link": "credit->view", "drop_ratio": 1.0}))
    api = SimpleNamespace(rng=random.Random(1), faults_rng=random.Random(2), pooled=True)
    touches: list = []
    msg = SimpleNamespace(account="a", held=False, bad=False, lost=False, enqueued=0.0,
                          trace=SimpleNamespace(acked_at=0.0, kept_until=None, unguarded=None), touch=lambda *t: touches.append(t),
                          touch_until_repair=lambda *t: touches.append(t))
    [active] = board.in_force(1.0)
    state = api.rng.getstate()
    assert not active.rule.link(api, active, msg, "sync->credit", 1.0) and api.rng.getstate() == state
    assert active.rule.link(api, active, msg, "credit->view", 1.0)
    assert [t[0] for t in touches] == ["interface_bug"]


def test_a_rule_lag_holds_what_it_caught_from_its_write_until_its_rollback():
    """The live rule: a caught write shows the opposite of the truth (unusable); a sweep keeps the
    account only between that write and the window's end (or its live end); risk holds are left alone."""
    import random
    from types import SimpleNamespace

    board = FaultBoard(horizon=100.0)
    active = board.add(parse_fault({"type": "rule_lag", "at": "10s", "for": "20s", "hold_ratio": 1.0}))
    api = SimpleNamespace(rng=random.Random(1), faults_rng=random.Random(2), pooled=True)
    touches: list = []

    def message(account: str, held: bool) -> SimpleNamespace:
        return SimpleNamespace(account=account, held=held, bad=False, lost=False, enqueued=0.0,
                               trace=SimpleNamespace(acked_at=0.0, kept_until=None, unguarded=None), touch=lambda *t: touches.append(t),
                               touch_until_repair=lambda *t: touches.append(t))

    repaid, held = message("a", False), message("b", True)
    assert active.rule.write(api, active, repaid, 12.0)
    assert not active.rule.write(api, active, held, 12.0)
    assert touches == [("rule_lag", 12.0)]
    assert not board.keeps("a", 11.0)  # a sweep before the write repairs as usual
    assert board.keeps("a", 12.0) and board.keeps("a", 29.9)
    assert not board.keeps("a", 30.0)  # the first sweep at or after the rollback releases it
    assert not board.keeps("b", 20.0)
    assert not board.keeps("a", 12.0)  # rolled back: what it caught is forgotten

    again = board.add(parse_fault({"type": "rule_lag", "at": "40s", "for": "20s", "hold_ratio": 1.0}))
    assert again.rule.write(api, again, message("c", False), 41.0)
    assert board.keeps("c", 45.0)
    board.end(again.id, 46.0)
    assert not board.keeps("c", 47.0)  # ended live: the rollback is now


def test_a_phantom_record_writes_at_its_instants_until_its_window_or_its_live_end():
    """The live rule: one write in the middle of each 1/rate slot, each on the account the load side
    names for it; a fault ended live writes no more. The holders the load side plays are the same
    accounts at the same instants, from the scenario alone."""
    from types import SimpleNamespace

    from repaychaos.scenarios.faults.phantom_record import account

    board = FaultBoard(horizon=100.0)
    active = board.add(parse_fault({"type": "phantom_record", "at": "10s", "for": "2s", "rate": "2/s",
                                    "holder_looks": ["1s", "5s"]}), label="partner")
    scheduled: list = []
    written: list = []
    api = SimpleNamespace(now=lambda: 0.0, at=lambda t, act: scheduled.append((t, act)),
                          write_phantom=lambda acct, t: written.append((acct, t)))
    active.rule.placed(api, active)
    while scheduled:  # each write schedules the next: run them in order, as the timeline does
        t, act = scheduled.pop(0)
        act(t)
    assert written == [(account("partner", k), t) for k, t in enumerate([10.25, 10.75, 11.25, 11.75])]
    assert list(active.rule.holders(active.fault, "partner", 100.0)) == [
        (acct, t, (1.0, 5.0)) for acct, t in written]
    assert account("phantom_record#2", 0) == "phantom-phantom_record.2-0"  # a URL path segment

    ended = board.add(parse_fault({"type": "phantom_record", "at": "20s", "rate": "1/s", "holder_looks": ["1s"]}))
    scheduled.clear()
    written.clear()
    ended.rule.placed(api, ended)
    t, act = scheduled.pop(0)
    act(t)
    board.end(ended.id, 21.0)
    t, act = scheduled.pop(0)
    act(t)
    assert [t for _, t in written] == [20.5] and not scheduled


def test_invalid_fault_names_the_key():
    """A fault the scenario loader would refuse raises InvalidInput naming the bad key."""
    with pytest.raises(InvalidInput, match="component"):
        parse_fault({"type": "maintenance", "component": "database"})
    with pytest.raises(InvalidInput):
        parse_fault({"type": "earthquake"})


def test_recurring_windows_are_lazy_and_agree_with_the_eager_list():
    """window_at is O(1) and iter_windows lazy, and both say what windows() lists."""
    import random

    fault = parse_fault({"type": "maintenance", "component": "sync", "at": "7s", "for": "2s", "every": "5s"})
    eager = fault.windows(1000.0)
    assert eager[:3] == ((7.0, 9.0), (12.0, 14.0), (17.0, 19.0)) and len(eager) == 199
    rng = random.Random(3)
    for _ in range(2000):
        t = rng.uniform(-10, 1000)
        inside = [w for w in eager if w[0] <= t < w[1]]
        assert fault.window_at(t) == (inside[0] if inside else None)
        assert list(fault.iter_windows(1000.0, since=t)) == [w for w in eager if w[1] > t]


def test_a_fault_with_the_shortest_period_over_a_long_horizon_costs_nothing_to_add():
    """Every 1s over ten years of horizon is placed in O(1) and answers in O(1)."""
    import time

    board = FaultBoard(horizon=10 * 365 * 86_400.0)
    began = time.perf_counter()
    active = board.add(parse_fault({"type": "maintenance", "component": "view", "every": "1s", "for": "100ms"}),
                       offset=5.0)
    assert board.gate("view", 1e8 + 5.05) == (1e8 + 5.0, 1e8 + 5.1, "pause", "maintenance")
    assert board.gate("view", 1e8 + 5.5) is None
    assert len(active.as_json(1e8)["windows"]) == 10
    assert time.perf_counter() - began < 0.05
    board.end(active.id, 20.05)
    assert board.gate("view", 20.02) == (20.0, 20.05, "pause", "maintenance") and board.gate("view", 21.0) is None


def test_a_period_below_the_minimum_is_refused_saying_so():
    with pytest.raises(InvalidInput, match="at least 1s"):
        parse_fault({"type": "maintenance", "component": "sync", "every": "10ms", "for": "1ms"})


@pytest.mark.parametrize("value", ["nan", "inf", "NaN", "Infinity"])
def test_durations_must_be_finite(value):
    with pytest.raises(InvalidInput, match="duration"):
        parse_fault({"type": "maintenance", "component": "sync", "at": value, "for": "1s"})
