"""Loading and validating scenario files: every key of docs/reference/scenario-format.md and every class of error."""

from __future__ import annotations

import math

import pytest

from repaychaos.scenarios import bundled_scenarios, load_scenario, resolve_scenario, with_overrides
from repaychaos.scenarios.loader import load_scenario_data, load_scenario_text, parse_key_path
from repaychaos.scenarios.faults import FAULT_TYPES
from repaychaos.scenarios.faults.cutover import Cutover
from repaychaos.scenarios.faults.interface_bug import InterfaceBug
from repaychaos.scenarios.faults.maintenance import Maintenance
from repaychaos.scenarios.faults.sync_delay import SyncDelay
from repaychaos.core.errors import InvalidInput, InvalidScenario

from conftest import MINIMAL

FULL = """\
version: 1
name: full-example
description: Every key once.
duration: 6h
warmup: 10m
seed: 7
replications: 5
workload:
  accounts: 100000
  arrivals:
    profile: [{at: 0s, rate: 5/s}, {at: 2h, rate: 1200/min}]
  check:
    first_after: {dist: lognormal, median: 5s, p95: 2m}
    every: 30s
    max_checks: 5
pipeline:
  channel:   {latency: 200ms}
  sync:      {workers: unlimited, service: {dist: exponential, mean: 100ms}}
  credit:    {service: 20ms, risk_hold_ratio: 0.01}
  view:      {cache_ttl: 5s}
  reconcile: off
faults:
  - type: sync_delay
    at: 1h
    for: 30m
    extra: {dist: pareto, scale: 2s, shape: 1.5}
  - type: maintenance
    component: ledger
    at: 3h
    for: 20m
    every: 1d
    mode: reject
  - type: interface_bug
    name: bad-mapper
    link: credit->view
    at: 2h
    drop_ratio: 5%
    corrupt_ratio: 0.01
  - type: cutover
    at: 4h
    for: 10m
    inflight_loss_ratio: 0.5
    unmapped_ratio: 0.002
slo:
  stale_read_ratio: "< 0.5%"
  time_to_usable.p99: "< 2m"
  support_contacts_per_10k: "< 5"
  lost_repayments: "== 0"
  stale_read_ratio@bad-mapper: "<= 5%"
  affected_ratio@after: "< 1%"
"""


def problems_of(text: str) -> list:
    with pytest.raises(InvalidScenario) as info:
        load_scenario_text(text, "s.yaml")
    return info.value.problems


def test_every_key_is_read_into_seconds_and_ratios():
    """The full reference example loads with durations in seconds, rates per second, ratios as shares."""
    s = load_scenario_text(FULL, "full.yaml")
    assert (s.duration, s.warmup, s.seed, s.replications) == (21600, 600, 7, 5)
    assert s.workload.arrivals.steps == ((0.0, 5.0), (7200.0, 20.0))
    assert s.workload.check.first_after.p95 == 120
    assert s.pipeline.sync.workers is None and s.pipeline.sync.unlimited
    assert s.pipeline.sync.service.mean == pytest.approx(0.1)
    assert s.pipeline.reconcile.every is None
    assert s.pipeline.view.cache_ttl == 5
    assert [type(f) for f in s.faults] == [SyncDelay, Maintenance, InterfaceBug, Cutover]
    assert s.faults[1].mode == "reject" and s.faults[1].every == 86400
    assert s.faults[2].drop_ratio == pytest.approx(0.05)
    assert s.faults[2].for_ is None
    assert [r.key for r in s.slo][-2:] == ["stale_read_ratio@bad-mapper", "affected_ratio@after"]
    assert s.slo[1].threshold == 120 and s.slo[0].threshold == pytest.approx(0.005)


def test_defaults_fill_what_is_left_out():
    """A minimal scenario gets the documented defaults."""
    s = load_scenario_text(MINIMAL)
    assert s.warmup == 0 and s.replications == 1 and s.faults == () and s.slo == ()
    assert s.pipeline.sync.workers == 8
    assert s.pipeline.reconcile.every == 900
    assert s.workload.check.max_checks == 5


def test_fault_windows_default_to_the_rest_of_the_run_and_recur():
    """`for` defaults to the rest of the run; `every` repeats the window within the horizon."""
    s = load_scenario_text(FULL)
    assert s.faults[2].windows(s.duration) == ((7200.0, math.inf),)
    recurring = Maintenance(type="maintenance", component="sync", at=3600, **{"for": 600}, every=7200)
    assert recurring.windows(4 * 3600) == ((3600, 4200), (10800, 11400))


def test_reconcile_sweep_times():
    """Sweeps happen at k * every; the next sweep at or after t."""
    s = load_scenario_text(MINIMAL)
    rec = s.pipeline.reconcile
    assert rec.next_sweep(0.0) == 900.0
    assert rec.next_sweep(1.0) == 900.0
    assert rec.next_sweep(900.0) == 900.0
    assert rec.next_sweep(901.0) == 1800.0


def test_normalised_form_validates_again_to_the_same_scenario():
    """normalised() is plain JSON data that loads back to an equal scenario."""
    s = load_scenario_text(FULL)
    again = load_scenario_data(s.normalised())
    assert again.normalised() == s.normalised()


def test_problem_names_file_line_key_path_expected_and_found():
    """A bad ratio is reported with file, line, key path, what was expected and what was found."""
    text = FULL.replace("drop_ratio: 5%", "drop_ratio: 1.5")
    (p,) = problems_of(text)
    assert p.file == "s.yaml"
    assert p.line == text.splitlines().index("    drop_ratio: 1.5") + 1
    assert p.path == "faults[2].drop_ratio"
    assert "ratio between 0 and 1" in p.expected and p.found == "1.5"


def test_every_problem_is_reported_at_once():
    """Three independent mistakes give three problems, in line order."""
    text = MINIMAL.replace("name: tiny", "name: Tiny").replace("2/s", "2/q") + "seed: many\n"
    found = problems_of(text)
    assert [p.path for p in found] == ["name", "workload.arrivals.rate", "seed"]
    assert [p.line for p in found] == [2, 5, 6]


def test_unknown_key_gets_did_you_mean():
    """A misspelt key is an error that suggests the right one."""
    (p,) = problems_of(MINIMAL + "pipeline:\n  sync: {workers: 2, servise: 1s}\n")
    assert p.path == "pipeline.sync.servise"
    assert p.hint == "did you mean 'service'?"
    assert p.line == 7


def test_misspelt_fault_type_gets_did_you_mean():
    """An unknown fault type names every registered type and suggests the closest."""
    (p,) = problems_of(MINIMAL + "faults:\n  - type: sync_dely\n    at: 1m\n")
    assert p.path == "faults[0].type"
    assert ", ".join(FAULT_TYPES) in p.expected
    assert p.hint == "did you mean 'sync_delay'?"


def test_missing_required_key_names_it():
    """A fault without its required key is reported at the fault, naming the key."""
    (p,) = problems_of(MINIMAL + "faults:\n  - type: interface_bug\n    drop_ratio: 0.1\n")
    assert p.path == "faults[0].link" and "required key 'link'" in p.expected


def test_broken_yaml_reports_its_line():
    """A YAML syntax error is one problem with the line of the fault."""
    (p,) = problems_of("version: 1\nname: x\n  bad: [\n")
    assert p.line == 3 and "indented under a key that opens a mapping" in p.expected


def test_duplicate_keys_are_errors():
    """YAML silently keeps the last duplicate; we refuse it instead."""
    (p,) = problems_of(MINIMAL + "seed: 1\nseed: 2\n")
    assert p.path == "seed" and "each key once" in p.expected


@pytest.mark.parametrize(
    "extra, path, fragment",
    [
        ("slo:\n  stale_read_ratoi: '< 1%'\n", "slo.stale_read_ratoi", "metric path"),
        ("slo:\n  stale_read_ratio: '~ 1%'\n", "slo.stale_read_ratio", "rule such as"),
        ("slo:\n  stale_read_ratio@nosuch: '< 1%'\n", "", "phase"),
        ("warmup: 20m\n", "", "warmup shorter than duration"),
        ("faults:\n  - {type: maintenance, component: sync, every: 1h}\n", "faults[0]", "'for' when 'every'"),
        ("faults:\n  - {type: maintenance, component: disk}\n", "faults[0].component", "'sync', 'credit'"),
        ("faults:\n  - {type: interface_bug, link: a->b}\n", "faults[0].link", "ledger->sync"),
        ("faults:\n  - {type: interface_bug, link: sync->credit, drop_ratio: 0.7, corrupt_ratio: 0.7}\n", "faults[0]", "<= 1"),
        ("faults:\n  - {type: sync_delay, extra: {dist: pareto, scale: 1s, shape: 0.5}}\n", "faults[0].extra.shape", "greater than 1"),
        ("pipeline:\n  sync: {workers: 0}\n", "pipeline.sync.workers", "greater than or equal to 1"),
        ("version: 2\n", "version", "1"),
    ],
)
def test_each_validation_error_class(extra, path, fragment):
    """Each kind of mistake is refused with its key path and what was expected."""
    text = MINIMAL.replace("version: 1\n", "") if extra.startswith("version") else MINIMAL
    found = problems_of(text + extra)
    assert any(p.path == path and fragment in p.expected for p in found), [str(p) for p in found]


def test_profile_must_start_at_zero_and_increase():
    """A piecewise profile is ordered and starts at 0s."""
    text = MINIMAL.replace("arrivals: {rate: 2/s}", "arrivals: {profile: [{at: 1m, rate: 1/s}]}")
    (p,) = problems_of(text)
    assert p.path == "workload.arrivals" and "first profile step at 0s" in p.expected


def test_rate_and_profile_are_exclusive():
    """Exactly one of rate or profile."""
    text = MINIMAL.replace("arrivals: {rate: 2/s}", "arrivals: {rate: 2/s, profile: [{at: 0s, rate: 1/s}]}")
    (p,) = problems_of(text)
    assert "exactly one of 'rate' or 'profile'" in p.expected


def test_every_bundled_scenario_is_valid_and_named_after_its_file():
    """The library has at least 8 scenarios, each valid, described, with SLOs."""
    library = bundled_scenarios()
    assert len(library) >= 8
    for name, path in library.items():
        s = load_scenario(path)
        assert s.name == name and s.description and s.slo


def test_resolve_by_name_and_suggest_on_typo():
    """A bundled name resolves; a near miss is refused with a suggestion."""
    assert resolve_scenario("quiet-baseline").name == "quiet-baseline"
    with pytest.raises(InvalidInput, match="did you mean 'quiet-baseline'"):
        resolve_scenario("quiet-baselin")


def test_overrides_revalidate():
    """with_overrides sets a key path and validates the result; a bad value is refused."""
    s = resolve_scenario("quiet-baseline")
    t = with_overrides(s, {"pipeline.sync.workers": 16, "workload.arrivals.rate": "40/s"})
    assert t.pipeline.sync.workers == 16 and t.workload.arrivals.rate == 40
    assert s.pipeline.sync.workers == 8
    with pytest.raises(InvalidScenario, match="pipeline.sync.workers"):
        with_overrides(s, {"pipeline.sync.workers": -1})
    with pytest.raises(InvalidScenario, match="pipeline.sync.wrokers"):
        with_overrides(s, {"pipeline.sync.wrokers": 3})


def test_key_paths_parse():
    """faults[0].for is ('faults', 0, 'for')."""
    assert parse_key_path("faults[0].for") == ("faults", 0, "for")
    assert parse_key_path("pipeline.sync.workers") == ("pipeline", "sync", "workers")
    with pytest.raises(ValueError):
        parse_key_path("a..b[")


def test_unreadable_file_is_invalid_input(tmp_path):
    """A missing file is a clear InvalidScenario, not an OSError."""
    with pytest.raises(InvalidScenario, match="readable UTF-8 scenario file"):
        load_scenario(tmp_path / "nope.yaml")


def test_a_single_fault_gets_the_same_messages_as_in_a_file():
    """The chaos API's fault bodies are checked by the loader: key path relative to the fault, did-you-mean."""
    from repaychaos.scenarios.loader import load_fault_data

    with pytest.raises(InvalidScenario) as info:
        load_fault_data({"type": "interface_bug", "link": "sync->credit", "drop_ratoi": 0.1})
    (p,) = info.value.problems
    assert p.path == "drop_ratoi" and p.hint == "did you mean 'drop_ratio'?"
    assert load_fault_data({"type": "sync_delay", "extra": "2s", "for": "1m"}).for_ == 60
