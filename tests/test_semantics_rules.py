"""The shared rules of repaychaos.semantics and the fault registry, checked directly."""

from __future__ import annotations

import math

import pkgutil

from repaychaos.scenarios import faults
from repaychaos.scenarios.faults import CAUSES, FAULT_TYPES, REGISTRY
from repaychaos.semantics import (CORRUPT, DROP, cache_serves, flip, holder_reads, judge_bug, kept_release,
                                  phantom_writes, release_time, repaired_at, until_repair, view_at, view_history,
                                  written_state)
from repaychaos.scenarios.faults.rule_lag import caught
from repaychaos.scenarios.faults.hooks import LiveRule, ModelInjector


def test_registry_lists_every_fault_type_once_in_report_order():
    """The registry's types are its modules; causes are queueing, every fault type, cache (docs/reference/metrics.md)."""
    modules = {m.name for m in pkgutil.iter_modules(faults.__path__)} - {"base", "hooks"}
    assert set(FAULT_TYPES) == modules and len(FAULT_TYPES) == len(modules)
    assert [REGISTRY[t].spec.__module__ for t in FAULT_TYPES] == [f"{faults.__name__}.{t}" for t in FAULT_TYPES]
    assert CAUSES == ("queueing", *FAULT_TYPES, "cache")
    for name, ft in REGISTRY.items():
        assert ft.spec.model_fields["type"].annotation.__args__ == (name,)
        assert ft.colour.startswith("#") and ft.label


def test_every_registered_type_brings_its_behaviour_in_both_engines():
    """A fault module holds its model injector and its live rule: the engines have none of their own."""
    for ft in REGISTRY.values():
        assert issubclass(ft.model, ModelInjector) and ft.model is not ModelInjector
        assert isinstance(ft.live, LiveRule) and type(ft.live) is not LiveRule


def test_each_bug_judges_with_its_own_draw():
    """drop first, then corrupt, on the unit interval; a flip twice restores the state."""
    assert judge_bug(0.05, 0.1, 0.3) is DROP
    assert judge_bug(0.1, 0.1, 0.3) is CORRUPT
    assert judge_bug(0.39, 0.1, 0.3) is CORRUPT
    assert judge_bug(0.4, 0.1, 0.3) is None
    assert flip(flip(False)) is False


def test_written_state_flips_truth_when_corrupt_and_opposes_it_when_unmapped():
    assert written_state(True, False, False) is True
    assert written_state(True, True, False) is False
    assert written_state(False, True, False) is True  # a held account shown usable
    assert written_state(True, False, True) is False
    assert written_state(True, True, True) is False  # mis-mapped: the opposite, whatever it carried


def test_release_time_pause_and_reject():
    assert release_time(3.0, 11.0, "pause") == 11.0
    assert release_time(2.0, 11.0, "reject") == 12.0
    assert release_time(1.0, 11.0, "reject") == 11.0
    assert release_time(1.0, math.inf, "reject") == math.inf


def test_until_repair_counts_to_the_last_change_that_makes_the_view_right():
    changes = [(10.0, True), (12.0, False), (20.0, True)]
    assert view_at(changes, 11.0) is True and view_at(changes, 15.0) is False
    assert repaired_at(True, changes) == 20.0
    assert until_repair(5.0, 20.0) == 15.0
    assert until_repair(25.0, 20.0) is None  # right for good before the fault
    assert repaired_at(True, [(10.0, True), (12.0, False)]) == math.inf
    assert repaired_at(False, []) == -math.inf  # held, never shown usable: never wrong


def test_cache_serves_within_ttl_only():
    assert cache_serves(4.9, 0.0, 5.0) and not cache_serves(5.0, 0.0, 5.0)
    assert not cache_serves(1.0, 0.0, 0.0)


def test_arrivals_thinned_and_started_late_are_the_same_poisson_process():
    """One shard of two (scale 1/2) starting at t=100 s draws half the rate from there on:
    a count within 4 sd of its Poisson mean, none before the start, none after the end."""
    import math
    import random

    from repaychaos.semantics import arrival_times

    rng = random.Random(3)
    steps = ((0.0, 40.0), (500.0, 0.0), (600.0, 20.0))
    times = list(arrival_times(steps, 1000.0, lambda: rng.expovariate(1.0), start=100.0, scale=0.5))
    expected = 20.0 * 400 + 0.0 + 10.0 * 400
    assert abs(len(times) - expected) <= 4 * math.sqrt(expected)
    assert min(times) >= 100.0 and max(times) < 1000.0
    assert not [t for t in times if 500.0 <= t < 600.0]
    assert times == sorted(times)


def _sweeps_every_10(t: float) -> float:
    return max(1, math.ceil(t / 10.0)) * 10.0


def test_a_rule_lag_keeps_the_view_unusable_until_the_first_sweep_after_the_rollback():
    """Caught at its write (3.0) by a rule rolled back at 25: the sweeps at 10 and 20 leave it, 30 releases it."""
    assert kept_release(25.0, _sweeps_every_10) == 30.0
    assert kept_release(20.0, _sweeps_every_10) == 20.0  # a sweep at the rollback itself releases
    assert kept_release(math.inf, _sweeps_every_10) == math.inf  # never rolled back
    assert view_history(2.0, False, 3.0, False, _sweeps_every_10, 25.0) == (30.0, None, 30.0)
    # what the message carried does not matter: the caught write shows unusable
    assert view_history(2.0, False, 3.0, True, _sweeps_every_10, 25.0) == (30.0, None, 30.0)
    # without the rule, the same write shows usable at once
    assert view_history(2.0, False, 3.0, False, _sweeps_every_10) == (3.0, None, 3.0)


def test_a_sweep_before_the_caught_write_shows_usable_until_the_write():
    """Acked at 8, written at 12 (a sweep at 10 between): usable at 10, held at 12, released at 30."""
    first, changes, repaired = view_history(8.0, False, 12.0, False, _sweeps_every_10, 25.0)
    assert (first, changes, repaired) == (10.0, [(10.0, True), (12.0, False), (30.0, True)], 30.0)
    assert view_history(8.0, False, 12.0, False, lambda t: math.inf, 25.0) == (math.inf, None, math.inf)


def test_a_rule_lag_leaves_risk_holds_and_unwritten_repayments_alone():
    """A held account is the risk hold's (never stale); a repayment never written has nothing to hold."""
    assert view_history(2.0, True, 3.0, False, _sweeps_every_10, 25.0) == view_history(
        2.0, True, 3.0, False, _sweeps_every_10)
    assert view_history(2.0, False, None, False, _sweeps_every_10, 25.0) == (10.0, None, 10.0)


def test_the_rule_catches_its_share_of_what_the_risk_hold_releases():
    """The hold uniform: below r the risk hold, the next h (1 - r) of it the rule, so h of the released."""
    assert not caught(0.05, 0.1, 0.5)  # risk-held
    assert caught(0.1, 0.1, 0.5) and caught(0.549, 0.1, 0.5)
    assert not caught(0.55, 0.1, 0.5)
    assert caught(0.0, 0.0, 0.2) and not caught(0.2, 0.0, 0.2)


def test_phantom_records_are_written_in_the_middle_of_each_slot_of_their_window():
    """Rate 2/s in [10, 12): at 10.25, 10.75, 11.25, 11.75; none from the run's end on; none at rate 0."""
    assert list(phantom_writes(10.0, 12.0, 2.0, math.inf)) == [10.25, 10.75, 11.25, 11.75]
    assert list(phantom_writes(10.0, math.inf, 2.0, 11.0)) == [10.25, 10.75]
    assert list(phantom_writes(10.0, 12.0, 0.0, math.inf)) == []


def test_a_holder_looks_until_the_sweep_repairs_the_phantom_record():
    """Written at 3, the sweep at 10 repairs it: looks at 4 and 8 are stale, the one at 13 shows
    usable and the holder stops there; with reconcile off every look is stale."""
    assert holder_reads(3.0, 10.0, (1.0, 5.0, 10.0, 20.0), 0.0) == [
        (4.0, False, 4.0), (8.0, False, 8.0), (13.0, True, 13.0)]
    assert holder_reads(3.0, math.inf, (1.0, 5.0), 0.0) == [(4.0, False, 4.0), (8.0, False, 8.0)]
    # a sweep at the write's own instant repairs it before any look
    assert holder_reads(10.0, 10.0, (1.0, 5.0), 0.0) == [(11.0, True, 11.0)]


def test_a_holders_cache_starts_empty_and_serves_within_its_ttl():
    """Cache 10 s: the first look (4) misses and fills; the look at 12 is served the status as of 4
    (unusable, though the sweep at 10 repaired the view); the look at 15 misses and shows usable."""
    assert holder_reads(3.0, 10.0, (1.0, 9.0, 12.0), 10.0) == [
        (4.0, False, 4.0), (12.0, False, 4.0), (15.0, True, 15.0)]
