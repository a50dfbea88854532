"""Units of the scenario format: durations, rates and ratios (docs/reference/scenario-format.md)."""

from __future__ import annotations

import pytest

from repaychaos.scenarios.units import format_duration, parse_duration, parse_rate, parse_ratio


@pytest.mark.parametrize(
    "text, seconds",
    [("250ms", 0.25), ("30s", 30), ("5m", 300), ("2h", 7200), ("1d", 86400), ("1h30m", 5400),
     ("1m30s", 90), (12, 12.0), (0.5, 0.5), ("7", 7.0), ("0s", 0.0)],
)
def test_durations_parse_to_seconds(text, seconds):
    """Every duration form in docs/reference/scenario-format.md reads as seconds."""
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["5 minutes", "-3s", "1x", "", True, None, "h", float("nan")])
def test_bad_durations_are_refused(bad):
    """Anything that is not a non-negative duration raises ValueError naming the form."""
    with pytest.raises(ValueError, match="duration such as"):
        parse_duration(bad)


@pytest.mark.parametrize("text, per_second", [("20/s", 20), ("1200/min", 20), ("72000/h", 20), (5, 5.0), ("2.5", 2.5)])
def test_rates_parse_to_per_second(text, per_second):
    """Rates in any unit read as events per second."""
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("bad", ["20/q", "fast", -1, "1/"])
def test_bad_rates_are_refused(bad):
    """A rate with an unknown unit or a negative value is refused."""
    with pytest.raises(ValueError, match="rate such as"):
        parse_rate(bad)


def test_ratios_accept_fractions_and_percentages():
    """0.05 and 5% are the same ratio; 150% is not a ratio."""
    assert parse_ratio("5%") == pytest.approx(0.05)
    assert parse_ratio(0.05) == 0.05
    with pytest.raises(ValueError):
        parse_ratio("150%")


def test_format_duration_round_trips():
    """The short human form parses back to the same seconds."""
    for seconds in (0.25, 30, 90, 5400, 86400 + 3600):
        assert parse_duration(format_duration(seconds)) == pytest.approx(seconds)


@pytest.mark.parametrize("seconds, text", [
    (0.31, "310ms"), (2.7, "2.7s"), (45.24, "45.2s"), (100, "1m40s"), (190, "3m10s"), (1201.3, "20m1s"),
    (5400, "1h30m"), (0, "0s"), (None, "n/a"), (float("inf"), "never"),
])
def test_one_duration_formatter_writes_every_duration_one_way(seconds, text):
    """Summaries, reports and listings share one formatter: 100 s is `1m40s` everywhere."""
    from repaychaos.reports.fmt import seconds as report_seconds

    assert format_duration(seconds) == text
    assert report_seconds(seconds) == text
