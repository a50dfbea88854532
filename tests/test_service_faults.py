"""The service's fault board: windows on the timeline, reject retries, live add/end, validation."""

from __future__ import annotations

import math

import pytest

from repaychaos.loadtests.faults import REJECT_RETRY, FaultBoard, parse_fault, release_time
from repaychaos.core.errors import InvalidInput


def test_pause_releases_at_the_window_end():
    """Work in a pause window goes through exactly when the window ends."""
    assert release_time(3.0, 11.0, "pause") == 11.0


def test_reject_releases_at_the_first_retry_at_or_after_the_end():
    """Rejected work retries every REJECT_RETRY from its first attempt (docs/SEMANTICS.md step 1)."""
    assert REJECT_RETRY == 5.0
    assert release_time(2.0, 11.0, "reject") == 12.0  # retries at 7, 12
    assert release_time(1.0, 11.0, "reject") == 11.0  # a retry falls exactly on the end


def test_scenario_fault_windows_are_placed_on_the_timeline():
    """A recurring maintenance fault has one window per period up to the horizon."""
    board = FaultBoard(horizon=100.0)
    board.add(parse_fault({"type": "maintenance", "component": "sync", "at": "10s", "for": "5s", "every": "40s"}))
    assert board.maintenance("sync", 9.99) is None
    assert board.maintenance("sync", 10.0) == (10.0, 15.0, "pause")
    assert board.maintenance("sync", 52.0) == (50.0, 55.0, "pause")
    assert board.maintenance("credit", 12.0) is None


def test_live_fault_is_relative_to_now_and_open_ended_without_for():
    """A live fault's `at` counts from now; without `for` it lasts until ended."""
    board = FaultBoard(horizon=100.0)
    active = board.add(parse_fault({"type": "sync_delay", "at": "2s", "extra": "1s"}), offset=30.0, source="live")
    assert active.windows == [(32.0, math.inf)]
    assert [a.id for a in board.in_force("sync_delay", 1e6)] == [active.id]


def test_ending_a_fault_cuts_its_windows_now():
    """DELETE ends the current window now and drops the ones not yet begun."""
    board = FaultBoard(horizon=100.0)
    active = board.add(parse_fault({"type": "maintenance", "component": "view", "at": "10s", "for": "5s",
                                    "every": "20s"}))
    assert board.end(active.id, 12.0)
    assert active.windows == [(10.0, 12.0)]
    assert board.maintenance("view", 12.0) is None
    assert board.listing(12.0) == []


def test_interface_bugs_are_found_by_link():
    """An interface bug is in force only on its own link."""
    board = FaultBoard(horizon=100.0)
    board.add(parse_fault({"type": "interface_bug", "link": "credit->view", "drop_ratio": 0.5}))
    assert len(board.bugs("credit->view", 1.0)) == 1
    assert board.bugs("sync->credit", 1.0) == []


def test_invalid_fault_names_the_key():
    """A fault the scenario loader would refuse raises InvalidInput naming the bad key."""
    with pytest.raises(InvalidInput, match="component"):
        parse_fault({"type": "maintenance", "component": "database"})
    with pytest.raises(InvalidInput):
        parse_fault({"type": "earthquake"})
