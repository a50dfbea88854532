"""The time scale in steps: both clocks of a run map instants through the same steps."""

from __future__ import annotations

import pytest

from repaychaos.core.errors import InvalidInput
from repaychaos.core.timescale import TimeScale
from repaychaos.load.clock import Clock
from repaychaos.service.clock import ScenarioClock

STEPS = TimeScale(((0.0, 25.0), (3600.0, 500 / 45), (7200.0, 500 / 75), (10800.0, 500 / 30)))


def test_wall_span_integrates_one_over_k():
    assert STEPS.wall_span(3600.0) == pytest.approx(144.0)
    assert STEPS.wall_span(5400.0) == pytest.approx(144.0 + 1800 * 45 / 500)
    assert STEPS.wall_span(14400.0) == pytest.approx(144.0 + 324.0 + 540.0 + 216.0)
    assert STEPS.wall_span(-50.0) == pytest.approx(-2.0)  # before 0: the first K
    assert STEPS.wall_span(20000.0) == pytest.approx(1224.0 + 5600 * 30 / 500)  # after: the last K
    assert STEPS.k_at(-1) == 25.0 and STEPS.k_at(3600.0) == pytest.approx(500 / 45) and STEPS.k_at(1e9) == pytest.approx(500 / 30)
    assert STEPS.top == 25.0


@pytest.mark.parametrize("s", [-100.0, 0.0, 17.3, 3599.999, 3600.0, 7000.0, 10800.0, 14400.0, 99999.0])
def test_scenario_at_inverts_wall_span(s):
    assert STEPS.scenario_at(STEPS.wall_span(s)) == pytest.approx(s, abs=1e-9)


def test_text_form_round_trips_exactly():
    assert TimeScale.parse(STEPS.text()) == STEPS
    assert TimeScale.parse("25") == TimeScale.constant(25.0)
    assert TimeScale.of(10) == TimeScale.constant(10.0) and TimeScale.of(STEPS) is STEPS
    assert TimeScale.from_json(STEPS.as_json()) == STEPS


@pytest.mark.parametrize("text, says", [
    ("fast", "expected K or K,AT:K"), ("0", "K must be a finite number > 0"), ("25,3600", "expected K or K,AT:K"),
    ("25,100:5,50:4", "increasing instants"), ("25,100:-1", "> 0"), ("nan", "> 0"),
])
def test_bad_text_is_a_clear_error(text, says):
    with pytest.raises(InvalidInput, match=says):
        TimeScale.parse(text)


@pytest.mark.parametrize("s", [-3.0, 0.0, 100.0, 3600.0, 3601.5, 8000.0, 14400.0])
def test_the_service_and_the_load_clocks_agree(s):
    """The reference service and the Locust users map one scenario instant to one wall instant."""
    service, load = ScenarioClock(1000.0, STEPS), Clock(1000.0, STEPS)
    assert service.to_epoch(s) == pytest.approx(load.wall(s), abs=1e-9)
    assert service.to_scenario(load.wall(s)) == pytest.approx(s, abs=1e-9)


def test_a_constant_clock_is_the_one_multiplication_it_was():
    clock = ScenarioClock(1000.0, 10.0)
    assert clock.to_scenario(1012.5) == 125.0 and clock.to_epoch(125.0) == 1012.5
    assert clock.time_scale == 10.0 == clock.top
