"""--vary / --search parsing and validation: every point is checked before anything runs."""

from __future__ import annotations

import pytest

from repaychaos.scenarios.loader import load_scenario_text
from repaychaos.core.errors import InvalidInput, InvalidOption
from repaychaos.sim.sweep import plan_sweep
from repaychaos.sim.sweep_grid import expand_grid, parse_search, parse_value, parse_vary, setting_at, split_values
from builders import scenario_yaml

GRID = dict(name="grid", duration="10m", seed=None, replications=None,
            faults=[{"type": "sync_delay", "at": "2m", "for": "1m", "extra": "1s"}])
GRID_KEYS = {"workload.check": None, "pipeline.sync": {"workers": 4, "service": {"dist": "exponential", "mean": "100ms"}}}
BASE = scenario_yaml(GRID_KEYS, **GRID, slo={"stale_read_ratio": "< 1%"})


@pytest.fixture
def base():
    return load_scenario_text(BASE, "grid.yaml")


@pytest.mark.parametrize("text, expected", [
    ("4", 4),
    ("-3", -3),
    ("0.5", 0.5),
    ("1e-3", 0.001),
    ("10/s", "10/s"),
    ("1h30m", "1h30m"),
    ("1:30", "1:30"),
    ("off", "off"),
    ("unlimited", "unlimited"),
    ("5%", "5%"),
    ("true", True),
    ("null", None),
    ("'4'", "4"),
    ("{dist: exponential, mean: 50ms}", {"dist": "exponential", "mean": "50ms"}),
])
def test_values_are_typed_like_a_scenario_file_without_yaml_1_1_surprises(text, expected):
    """Numbers become numbers; units, 'off' and '1:30' stay strings for the scenario's own parsers."""
    assert parse_value(text) == expected
    assert type(parse_value(text)) is type(expected)


def test_commas_inside_brackets_do_not_split_values():
    """A flow mapping with commas is one value."""
    assert split_values("{dist: exponential, mean: 50ms},100ms") == ["{dist: exponential, mean: 50ms}", "100ms"]


def test_vary_keeps_the_users_order_and_raw_text():
    """Values stay in the order given, with the text as typed beside the typed value."""
    vary = parse_vary("workload.arrivals.rate=10/s, 20/s,40")
    assert vary.key == "workload.arrivals.rate"
    assert vary.values == ("10/s", "20/s", 40)
    assert vary.raw == ("10/s", "20/s", "40")


@pytest.mark.parametrize("spec, named", [
    ("pipeline.sync.workers", "KEY=V1,V2"),
    ("=4,8", "KEY=V1,V2"),
    ("pipeline.sync.workers=4,,8", "empty value"),
    ("pipeline.sync.workers=4,8,4", "'4' is listed twice"),
    ("faults[x].for=1m", "key path"),
    ("pipeline.sync.service={dist: exponential,2s", "balanced brackets"),
])
def test_malformed_vary_is_refused_naming_the_problem(spec, named):
    """A --vary that is not KEY=V1,V2,... is refused before any scenario is touched."""
    with pytest.raises(InvalidOption) as err:
        parse_vary(spec)
    assert named in str(err.value)
    assert "--vary" in str(err.value)


def test_unknown_key_is_refused_with_its_path_and_a_suggestion(base):
    """A typo in the key path names the path and suggests the real key."""
    with pytest.raises(InvalidOption) as err:
        expand_grid(base, [parse_vary("pipeline.sync.wokers=4,8")])
    text = str(err.value)
    assert "pipeline.sync.wokers" in text
    assert "did you mean 'workers'" in text


def test_bad_value_is_refused_naming_that_value_even_if_others_are_fine(base):
    """The one bad value in a list is named, with what the key expects."""
    with pytest.raises(InvalidOption) as err:
        expand_grid(base, [parse_vary("pipeline.sync.workers=4,0,8")])
    text = str(err.value)
    assert "pipeline.sync.workers=0" in text
    assert "greater than or equal to 1" in text


def test_bad_unit_is_refused_naming_the_key(base):
    """A rate written as a duration is refused naming the key and the expected form."""
    with pytest.raises(InvalidOption) as err:
        expand_grid(base, [parse_vary("workload.arrivals.rate=10/s,5m")])
    assert "workload.arrivals.rate" in str(err.value)
    assert "a rate such as 20/s" in str(err.value)


def test_index_past_the_end_of_a_list_is_refused(base):
    """faults[3] in a scenario with one fault is refused naming the path."""
    with pytest.raises(InvalidInput) as err:
        expand_grid(base, [parse_vary("faults[3].for=1m,2m")])
    assert "faults[3].for" in str(err.value)


def test_values_that_clash_only_together_are_refused_naming_the_combination(base):
    """warmup=5m is fine and duration=4m is fine, but not both at once."""
    with pytest.raises(InvalidOption) as err:
        expand_grid(base, [parse_vary("warmup=1m,5m"), parse_vary("duration=10m,4m")])
    text = str(err.value)
    assert "warmup=5m" in text and "duration=4m" in text


def test_the_same_key_twice_is_refused(base):
    """Two --vary for one key would be ambiguous; the message says to merge them."""
    with pytest.raises(InvalidOption, match="same key is given twice"):
        expand_grid(base, [parse_vary("seed=1,2"), parse_vary("seed=3")])


def test_grid_is_the_product_with_the_first_key_outermost(base):
    """Two keys of 2 and 3 values give 6 points in row-major order."""
    points = expand_grid(base, [parse_vary("pipeline.sync.workers=2,unlimited"), parse_vary("faults[0].for=30s,1m,2m")])
    assert [p.index for p in points] == list(range(6))
    assert [tuple(p.values.values()) for p in points] == [
        (2, "30s"), (2, "1m"), (2, "2m"), ("unlimited", "30s"), ("unlimited", "1m"), ("unlimited", "2m")]
    assert points[4].scenario.pipeline.sync.workers is None
    assert points[4].scenario.faults[0].for_ == 60.0
    assert setting_at(points[2].scenario, "faults[0].for") == 120.0


@pytest.mark.parametrize("spec, low, high, integer", [
    ("pipeline.sync.workers=1..64", 1, 64, True),
    ("workload.arrivals.rate=5/s..2/min", None, None, None),
    ("workload.arrivals.rate=30/min..20/s", 0.5, 20.0, False),
    ("faults[0].for=30s..1h", 30.0, 3600.0, False),
    ("pipeline.credit.risk_hold_ratio=1%..0.5", 0.01, 0.5, False),
])
def test_search_bounds_are_read_in_base_units(spec, low, high, integer):
    """Bounds with units become seconds, per-second rates or shares; LOW must be below HIGH."""
    if low is None:
        with pytest.raises(InvalidOption, match="LOW < HIGH"):
            parse_search(spec)
        return
    search = parse_search(spec)
    assert (search.low, search.high, search.integer) == (low, high, integer)


@pytest.mark.parametrize("spec, named", [
    ("pipeline.sync.workers=1-64", "KEY=LOW..HIGH"),
    ("pipeline.sync.workers=..64", "KEY=LOW..HIGH"),
    ("workload.arrivals.rate=fast..slow", "a number, rate"),
])
def test_malformed_search_is_refused(spec, named):
    """A --search that is not KEY=LOW..HIGH with numeric bounds is refused."""
    with pytest.raises(InvalidOption, match=named):
        parse_search(spec)


def test_search_on_a_non_numeric_key_is_refused_before_running(base):
    """Bisecting an integer key with fractional bounds fails validation up front, naming the key."""
    with pytest.raises(InvalidOption) as err:
        plan_sweep(base, [], search="pipeline.sync.workers=1.5..8.5")
    assert "pipeline.sync.workers" in str(err.value)


def test_search_needs_an_slo(base):
    """Without any SLO there is no frontier to find; the message says to add one."""
    no_slo = load_scenario_text(scenario_yaml(GRID_KEYS, **GRID), "grid.yaml")
    with pytest.raises(InvalidOption, match="no slo"):
        plan_sweep(no_slo, [], search="pipeline.sync.workers=1..8")


def test_a_key_cannot_be_both_varied_and_searched(base):
    """--vary and --search on the same key is refused."""
    with pytest.raises(InvalidOption, match="both"):
        plan_sweep(base, ["pipeline.sync.workers=1,2"], search="pipeline.sync.workers=1..8")


def test_a_sweep_without_vary_or_search_is_refused(base):
    """Nothing to sweep is a user error, not an empty result."""
    with pytest.raises(InvalidOption, match="--vary"):
        plan_sweep(base, [])


def test_seed_and_replications_overrides_apply_to_every_point(base):
    """--seed/--replications set the base, and every point inherits them."""
    plan = plan_sweep(base, ["pipeline.sync.workers=2,3"], seed=11, replications=2)
    assert [(p.scenario.seed, p.scenario.replications) for p in plan.points] == [(11, 2), (11, 2)]


def test_off_and_unlimited_reach_the_scenario_as_their_yaml_meaning(base):
    """'off' turns reconcile off and 'unlimited' removes the worker cap, as in a scenario file."""
    points = expand_grid(base, [parse_vary("pipeline.reconcile.every=off,15m"),
                                parse_vary("pipeline.sync.workers=unlimited")])
    assert [p.scenario.pipeline.reconcile.every for p in points] == [None, 900.0]
    assert all(p.scenario.pipeline.sync.workers is None for p in points)
