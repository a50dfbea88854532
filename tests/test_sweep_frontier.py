"""Frontier logic on known verdicts: bisection and reading a grid, no model involved."""

from __future__ import annotations

import pytest

from repaychaos.sim.sweep_frontier import Bisection, frontier_key, grid_frontier


def _bisect(bis: Bisection, passes) -> tuple[dict, list]:
    evaluated = []
    while True:
        values = bis.next_values()
        if not values:
            return bis.outcome(), evaluated
        for v in values:
            evaluated.append(v)
            bis.record(v, passes(v))


@pytest.mark.parametrize("answer", [2, 3, 17, 63, 64])
def test_integer_bisection_finds_the_smallest_passing_resource(answer):
    """Workers pass from ``answer`` up: bisection on 1..64 returns exactly ``answer``."""
    outcome, evaluated = _bisect(Bisection(1, 64, integer=True), lambda c: c >= answer)
    assert outcome == {"status": "found", "value": answer, "bracket": [answer - 1, answer]}
    assert len(evaluated) <= 2 + 6  # both ends, then ceil(log2(63)) midpoints


@pytest.mark.parametrize("ways", [2, 3, 7])
@pytest.mark.parametrize("answer", [2, 30, 64])
def test_splitting_the_bracket_more_ways_finds_the_same_answer(answer, ways):
    """Evaluating several interior values per round (for idle workers) changes the cost, not the answer."""
    bis = Bisection(1, 64, integer=True)
    evaluated = []
    while values := bis.next_values(ways):
        assert 1 <= len(values) <= ways or len(evaluated) == 0
        for v in values:
            evaluated.append(v)
            bis.record(v, v >= answer)
    assert bis.outcome()["value"] == answer
    assert len(evaluated) == len(set(evaluated))  # nothing evaluated twice


def test_float_bisection_finds_the_highest_passing_load_within_tolerance():
    """Rates pass up to 37.3/s: the answer passes and lies within 1 % of the true edge."""
    bis = Bisection(1.0, 100.0, integer=False, tolerance=0.01)
    outcome, _ = _bisect(bis, lambda r: r <= 37.3)
    assert bis.goal == "max"
    low, high = outcome["bracket"]
    assert low == outcome["value"] <= 37.3 < high
    assert high - low <= 0.01 * high


def test_bisection_reports_no_frontier_when_both_ends_agree():
    """All passing or all failing is said plainly, after evaluating only the two ends."""
    assert _bisect(Bisection(1, 64, integer=True), lambda c: True) == ({"status": "all_pass", "value": None, "bracket": None}, [1, 64])
    assert _bisect(Bisection(1, 64, integer=True), lambda c: False)[0]["status"] == "none_pass"


def _rows(grid: dict[tuple[int, float], bool]) -> list[dict]:
    return [{"values": {"workers": w, "rate": f"{r:g}/s"}, "settings": {"workers": w, "rate": r}, "passed": ok}
            for (w, r), ok in grid.items()]


def test_grid_frontier_gives_the_highest_passing_rate_per_worker_count():
    """With rate the capacity key, each worker count gets its highest passing rate (or none)."""
    passes_up_to = {2: None, 4: 10.0, 8: 20.0, 16: 40.0}
    grid = {(w, r): (limit is not None and r <= limit) for w, limit in passes_up_to.items() for r in (10.0, 20.0, 40.0)}
    frontier = grid_frontier(_rows(grid), ["workers", "rate"], "rate")
    assert frontier["goal"] == "max"
    assert [(p["values"]["workers"], p["value"], p["status"]) for p in frontier["points"]] == [
        (2, None, "none_pass"), (4, "10/s", "found"), (8, "20/s", "found"), (16, "40/s", "all_pass")]


def test_grid_frontier_gives_the_smallest_passing_resource_per_rate():
    """With workers the frontier key, each rate gets the fewest workers meeting every SLO."""
    grid = {(w, r): w * 5 >= r for w in (2, 4, 8) for r in (10.0, 20.0, 40.0)}
    frontier = grid_frontier(_rows(grid), ["workers", "rate"], "workers")
    assert frontier["goal"] == "min"
    assert [(p["values"]["rate"], p["value"]) for p in frontier["points"]] == [("10/s", 2), ("20/s", 4), ("40/s", 8)]


def test_grid_frontier_stops_at_the_first_failure_from_the_easy_end():
    """A noisy pass above a failure is not trusted: the frontier is the contiguous passing run."""
    grid = {(4, 10.0): True, (4, 20.0): False, (4, 40.0): True}
    frontier = grid_frontier(_rows(grid), ["workers", "rate"], "rate")
    assert frontier["points"][0]["value"] == "10/s"


def test_frontier_key_prefers_an_arrival_rate():
    """The capacity question is about load when a rate is varied, else about the last key."""
    assert frontier_key(["workload.arrivals.rate", "pipeline.sync.workers"]) == "workload.arrivals.rate"
    assert frontier_key(["pipeline.sync.workers", "faults[0].for"]) == "faults[0].for"
