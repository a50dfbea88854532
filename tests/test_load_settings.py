"""The Locust settings travel as environment variables, defined once (LocustSettings)."""

from __future__ import annotations

import pytest

from repaychaos.core.errors import InvalidInput
from repaychaos.load.settings import LocustSettings


def test_settings_survive_the_trip_through_the_environment():
    """What the runner writes with to_env, the locustfile reads back with from_env, unchanged."""
    sent = LocustSettings(scenario="/tmp/s.json", time_scale=12.5, t0=1_700_000_000.25, record="/tmp/r", shards=3,
                          quit_when_done=True, deadline=1_700_000_100.0, run_id="ab12cd34", parent_pid=4242,
                          allow_remote=False)
    env = sent.to_env()
    assert env["REPAYCHAOS_SHARDS"] == "3" and env["REPAYCHAOS_QUIT_WHEN_DONE"] == "1"
    assert LocustSettings.from_env(env) == sent


def test_no_settings_at_all_is_a_standalone_locust_run():
    """`locust -f loadtests/locustfile.py` with nothing set: the defaults, nothing required."""
    assert LocustSettings.from_env({}) == LocustSettings()


@pytest.mark.parametrize("name, value, words", [
    ("REPAYCHAOS_SHARDS", "two", "an integer"),
    ("REPAYCHAOS_SHARDS", "0", "at least 1"),
    ("REPAYCHAOS_TIME_SCALE", "fast", "a number"),
    ("REPAYCHAOS_ALLOW_REMOTE", "yes", "0 or 1"),
])
def test_a_malformed_setting_is_named_with_what_was_expected(name, value, words):
    """A bad variable is refused naming the variable, what was expected and what was found."""
    with pytest.raises(InvalidInput, match=name) as info:
        LocustSettings.from_env({name: value})
    assert words in str(info.value)
