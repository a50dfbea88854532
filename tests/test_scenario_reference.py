"""The scenario reference (docs/reference/scenario-format.md) and JSON Schema (docs/reference/scenario.schema.json)
are generated from the model; these tests fail when either drifts from it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from repaychaos.scenarios import bundled_scenarios
from repaychaos.scenarios.loader import load_scenario_text
from repaychaos.scenarios.spec import SLO_METRIC_PATHS
from repaychaos.scenarios.reference import (
    DIST_EXAMPLES,
    FAULT_EXAMPLES,
    MEANINGS,
    METRIC_MEANINGS,
    REFERENCE_FILE,
    RESULT_KEYS,
    SCHEMA_COMMENT,
    SCHEMA_FILE,
    key_unit,
    reference_markdown,
    scenario_json_schema,
    schema_text,
    walk_fields,
)

ROOT = Path(__file__).resolve().parents[1]
REGENERATE = "regenerate with: python -m repaychaos.scenarios.reference --write"


def test_committed_reference_is_what_the_model_generates():
    assert (ROOT / REFERENCE_FILE).read_text(encoding="utf-8") == reference_markdown(), REGENERATE


def test_committed_schema_is_what_the_model_generates():
    assert (ROOT / SCHEMA_FILE).read_text(encoding="utf-8") == schema_text(), REGENERATE


def test_every_key_has_a_meaning_and_every_meaning_a_key():
    docs = [doc for _, doc in walk_fields()]
    missing = [doc.path for doc in docs if not doc.meaning]
    assert not missing, f"keys without a meaning (add to MEANINGS or a Field description): {missing}"
    paths = {doc.path for doc in docs}
    shared = {"faults[*]." + p.split("].", 1)[1] for p in paths if p.startswith("faults[")}
    stale = sorted(set(MEANINGS) - paths - shared)
    assert not stale, f"MEANINGS names keys the model does not have: {stale}"


def test_every_fault_type_and_distribution_has_an_example():
    docs = [doc.path for _, doc in walk_fields()]
    fault_types = {p[7:p.index("]")] for p in docs if p.startswith("faults[")}
    dists = {p[5:p.index("]")] for p in docs if p.startswith("dist[")}
    assert fault_types == set(FAULT_EXAMPLES)
    assert dists == set(DIST_EXAMPLES)
    assert {p.split(".")[0] for p in SLO_METRIC_PATHS} <= set(METRIC_MEANINGS)


@pytest.mark.parametrize("fault_type", sorted(FAULT_EXAMPLES))
def test_fault_examples_validate_and_run(fault_type):
    """Each example in the reference is a whole scenario that runs through the model."""
    from repaychaos.sim.simulate import run_model

    scenario = load_scenario_text(FAULT_EXAMPLES[fault_type], f"example {fault_type}")
    assert [f.type for f in scenario.faults] == [fault_type]
    result = run_model(scenario, replications=1, processes=1, progress=False)
    assert result["metrics"]["repayments"] > 0
    assert set(result) == set(RESULT_KEYS), "the result file's keys and the reference's RESULT_KEYS differ"


def test_dist_examples_validate():
    from pydantic import TypeAdapter

    from repaychaos.scenarios.distributions import Distribution

    adapter = TypeAdapter(Distribution)
    for name, line in DIST_EXAMPLES.items():
        value = next(iter(yaml.safe_load(line).values()))
        assert adapter.validate_python(value).dist == name


# --------------------------------------------------------------------------- the JSON Schema


@pytest.fixture(scope="module")
def validator():
    schema = scenario_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize("name", sorted(bundled_scenarios()))
def test_bundled_scenarios_satisfy_the_schema_and_carry_its_line(validator, name):
    path = bundled_scenarios()[name]
    text = Path(path).read_text(encoding="utf-8")
    assert text.splitlines()[0] == SCHEMA_COMMENT
    errors = [e.message for e in validator.iter_errors(yaml.safe_load(text))]
    assert errors == []


def test_reference_examples_satisfy_the_schema(validator):
    for text in FAULT_EXAMPLES.values():
        assert [e.message for e in validator.iter_errors(yaml.safe_load(text))] == []


def _nightly() -> dict:
    return yaml.safe_load(Path(bundled_scenarios()["nightly-maintenance"]).read_text(encoding="utf-8"))


@pytest.mark.parametrize("change", [
    ("misspelt key", lambda d: d["pipeline"]["sync"].update(servise="100ms")),
    ("unknown fault type", lambda d: d["faults"][0].update(type="sync_dely")),
    ("boolean worker count", lambda d: d["pipeline"]["sync"].update(workers=True)),
    ("quoted account count", lambda d: d["workload"].update(accounts="50000")),
    ("not a duration", lambda d: d.update(duration="ten minutes")),
    ("unknown SLO metric", lambda d: d["slo"].update({"stale_ratio": "< 1%"})),
])
def test_schema_refuses_what_the_loader_refuses(validator, change):
    label, edit = change
    data = copy.deepcopy(_nightly())
    edit(data)
    assert list(validator.iter_errors(data)), f"the schema accepted a {label}"
    with pytest.raises(Exception):
        load_scenario_text(yaml.safe_dump(data), label)


@pytest.mark.parametrize("edit", [
    lambda d: d["pipeline"]["sync"].update(workers="unlimited"),
    lambda d: d["pipeline"].update(reconcile="off"),
    lambda d: d["workload"]["arrivals"].update(rate="1200/min"),
    lambda d: d["pipeline"]["credit"].update(risk_hold_ratio="5%"),
    lambda d: d["pipeline"]["channel"].update(latency=0.2),
    lambda d: d.update(duration="1h30m"),
    lambda d: d["slo"].update({"stale_read_ratio@nightly-deploy": "< 50%"}),
])
def test_schema_allows_unit_strings_the_loader_allows(validator, edit):
    data = copy.deepcopy(_nightly())
    edit(data)
    assert [e.message for e in validator.iter_errors(data)] == []
    load_scenario_text(yaml.safe_dump(data), "edited")


def test_schema_command_prints_the_committed_schema():
    from click.testing import CliRunner

    from repaychaos.cli import cli

    out = CliRunner().invoke(cli, ["schema"])
    assert out.exit_code == 0
    assert json.loads(out.output) == json.loads((ROOT / SCHEMA_FILE).read_text(encoding="utf-8"))


def test_key_units_for_axis_labels():
    assert key_unit("workload.arrivals.rate") == "/s"
    assert key_unit("faults[0].for") == "s"
    assert key_unit("pipeline.sync.workers") is None
    assert key_unit("pipeline.credit.risk_hold_ratio") == "share"
