"""The scenario format described from the pydantic models, so the description cannot drift:
the JSON Schema (``repaychaos schema``, ``docs/reference/scenario.schema.json``) and the reference
(``docs/reference/scenario-format.md``).

Structure, types, defaults and constraints come from :mod:`repaychaos.scenarios.spec`;
the one thing a model cannot say is what a key *means*: that is a field's ``description``
when it has one, else an entry in :data:`MEANINGS`. ``tests/test_scenario_reference.py``
fails when a key has no meaning, a meaning names no key, a fault type or distribution has
no runnable example, or the committed files differ from what this module generates.

Regenerate both files with ``python -m repaychaos.scenarios.reference --write``.
"""

from __future__ import annotations

import json
import re
import sys
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel, BeforeValidator
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from repaychaos.core.catalog import PHASE_AFTER, QUANTILES
from repaychaos.scenarios import units
from repaychaos.scenarios.distributions import Constant
from repaychaos.scenarios.faults import REGISTRY
from repaychaos.scenarios.spec import SLO_METRIC_PATHS, Scenario, _RULE

__all__ = [
    "scenario_json_schema",
    "schema_text",
    "reference_markdown",
    "key_unit",
    "walk_fields",
    "MEANINGS",
    "FAULT_EXAMPLES",
    "DIST_EXAMPLES",
    "METRIC_MEANINGS",
    "RESULT_KEYS",
    "SCHEMA_FILE",
    "REFERENCE_FILE",
]

SCHEMA_FILE = "docs/reference/scenario.schema.json"
REFERENCE_FILE = "docs/reference/scenario-format.md"
SCHEMA_COMMENT = "# yaml-language-server: $schema=../docs/reference/scenario.schema.json"

# --------------------------------------------------------------------------- unit syntax

#: The JSON Schema patterns of the unit strings, built from the parsers' own expressions.
DURATION_PATTERN = r"^\s*(?:" + units._DURATION_PART.pattern + r"\s*)+$|^\s*\d+(?:\.\d+)?\s*$"
RATE_PATTERN = units._RATE.pattern + r"|^\s*\d+(?:\.\d+)?\s*$"
RATIO_PATTERN = r"^\s*\d+(?:\.\d+)?\s*%?\s*$"
RULE_PATTERN = _RULE.pattern

_KIND_BY_PARSER = {
    "parse_duration": "duration",
    "_as_duration": "duration",
    "parse_rate": "rate",
    "parse_ratio": "ratio",
    "_workers": "workers",
    "_bare_is_constant": "delay",
    "_reconcile_off": "reconcile",
    "_parse": "period",  # Reconcile.every: a duration or off
    "_slo_map": "slo",
}

_UNIT_TEXT = {
    "duration": "duration",
    "rate": "rate",
    "ratio": "ratio",
    "delay": "delay",
    "period": "duration or `off`",
}


def _parser_kind(function: Any) -> str | None:
    name = getattr(getattr(function, "__func__", function), "__name__", "")
    return _KIND_BY_PARSER.get(name)


def _string(pattern: str, description: str) -> JsonSchemaValue:
    return {"type": "string", "pattern": pattern, "description": description}


DURATION_STRING = _string(DURATION_PATTERN, "a duration: 250ms, 30s, 5m, 2h, 1d, 1h30m (or seconds)")
RATE_STRING = _string(RATE_PATTERN, "a rate: 20/s, 1200/min, 72000/h (or a number per second)")
RATIO_STRING = _string(RATIO_PATTERN, "a share: 0.05 or 5%")


class _ScenarioSchema(GenerateJsonSchema):
    """pydantic's schema, with the unit strings allowed where the loader's parsers accept them."""

    def function_before_schema(self, schema: core_schema.BeforeValidatorFunctionSchema) -> JsonSchemaValue:
        kind = _parser_kind(schema["function"]["function"])
        if kind == "slo":
            return _slo_schema()
        inner = super().function_before_schema(schema)
        if kind == "duration":  # the parser refuses a negative number of seconds too
            if inner.get("type") == "number" and not {"minimum", "exclusiveMinimum"} & set(inner):
                inner = {**inner, "minimum": 0}
            return {"anyOf": [inner, DURATION_STRING]}
        if kind == "rate":
            return {"anyOf": [inner, RATE_STRING]}
        if kind == "ratio":
            if inner.get("type") == "number":
                inner = {"minimum": 0, "maximum": 1, **inner}
            return {"anyOf": [inner, RATIO_STRING]}
        if kind == "workers":
            return {"anyOf": [inner, {"enum": ["unlimited", "inf", "infinite"]}]}
        if kind == "delay":
            return {"anyOf": [{"type": "number", "minimum": 0}, DURATION_STRING, inner]}
        if kind == "period":
            return {"anyOf": [inner, DURATION_STRING, {"enum": ["off", False]}]}
        if kind == "reconcile":
            return {"anyOf": [inner, {"enum": ["off", False]}]}
        return inner


def _slo_schema() -> JsonSchemaValue:
    metrics = "|".join(re.escape(m) for m in SLO_METRIC_PATHS)
    return {
        "type": "object",
        "description": "metric[@phase] -> rule, e.g. stale_read_ratio: '< 0.5%'",
        "propertyNames": {"pattern": rf"^(?:{metrics})(?:@[a-z0-9][a-z0-9_#-]*)?$"},
        "additionalProperties": {"anyOf": [{"type": "string", "pattern": RULE_PATTERN}, {"type": "number"}]},
        "default": {},
    }


def scenario_json_schema() -> dict[str, Any]:
    """The scenario format as a JSON Schema (draft 2020-12), from :class:`Scenario`."""
    schema = Scenario.model_json_schema(by_alias=True, schema_generator=_ScenarioSchema, mode="validation")
    out = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://repaychaos.invalid/scenario.schema.json",
        "title": "repaychaos scenario",
        "description": "A repaychaos scenario file (docs/reference/scenario-format.md). Generated from repaychaos.scenarios.spec"
                       " by `repaychaos schema`; do not edit.",
    }
    out.update({k: v for k, v in schema.items() if k not in ("title", "description")})
    return out


def schema_text() -> str:
    """The schema as the committed file holds it (stable key order, trailing newline)."""
    return json.dumps(scenario_json_schema(), indent=2, sort_keys=False, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- walking the model


@dataclass(frozen=True)
class KeyDoc:
    """One key of the format: where it is, its type, default and meaning."""

    path: str          # e.g. workload.check.every, faults[maintenance].every, dist[lognormal].p95
    key: str
    type_text: str
    default: str
    meaning: str


def _info(annotation: Any) -> tuple[list[Any], str | None, list[Any]]:
    """Leaf types, the unit parser kind (if any) and literal values of an annotation."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner, *meta = typing.get_args(annotation)
        leaves, kind, literals = _info(inner)
        for m in meta:
            if isinstance(m, BeforeValidator):
                kind = _parser_kind(m.func) or kind
        return leaves, kind, literals
    if origin in (typing.Union, types.UnionType, tuple, list):
        leaves, kind, literals = [], None, []
        for arg in typing.get_args(annotation):
            if arg is Ellipsis:
                continue
            sub_leaves, sub_kind, sub_literals = _info(arg)
            leaves += sub_leaves
            kind = kind or sub_kind
            literals += sub_literals
        return leaves, kind, literals
    if origin is typing.Literal:
        return [], None, list(typing.get_args(annotation))
    return [annotation], None, []


def _models(annotation: Any) -> list[type[BaseModel]]:
    return [leaf for leaf in _info(annotation)[0] if isinstance(leaf, type) and issubclass(leaf, BaseModel)]


def _tag(model: type[BaseModel], field: str) -> str | None:
    info = model.model_fields.get(field)
    if info is None:
        return None
    literals = _info(info.annotation)[2]
    return literals[0] if len(literals) == 1 else None


def _field_kind(model: type[BaseModel], name: str, info: FieldInfo) -> str | None:
    kind = _info(info.annotation)[1]
    for m in info.metadata:  # pydantic moves an Annotated field's validators here
        if isinstance(m, BeforeValidator):
            kind = _parser_kind(m.func) or kind
    for dec in model.__pydantic_decorators__.field_validators.values():
        if name in dec.info.fields and dec.info.mode == "before":
            kind = _parser_kind(dec.func) or kind
    return kind


def _is_list(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _is_list(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return any(_is_list(a) for a in typing.get_args(annotation))
    return origin in (tuple, list)


def _type_text(model: type[BaseModel], name: str, info: FieldInfo) -> str:
    kind = _field_kind(model, name, info)
    leaves, _, literals = _info(info.annotation)
    if kind == "slo":
        return "mapping metric[@phase] → rule"
    if kind == "workers":
        return "integer or `unlimited`"
    if kind == "reconcile":
        return "mapping or `off`"
    if kind in _UNIT_TEXT:
        text = _UNIT_TEXT[kind]
    elif literals:
        text = "one of " + ", ".join(f"`{v}`" for v in literals)
    else:
        models = _models(info.annotation)
        if models:
            text = "mapping" if len(models) == 1 else "mapping with `type`"
        elif int in leaves:
            text = "integer"
        elif float in leaves:
            text = "number"
        elif str in leaves:
            text = "string"
        else:  # pragma: no cover - a new kind of field: the test asks for a meaning anyway
            text = str(info.annotation)
    if _is_list(info.annotation):
        text = f"list of {text}"
    meta = []
    for m in info.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            if getattr(m, attr, None) is not None:
                meta.append(f"{sign} {getattr(m, attr):g}")
        if getattr(m, "pattern", None):
            meta.append(f"`{m.pattern}`")
        if getattr(m, "min_length", None):
            meta.append(f"at least {m.min_length}")
    return text + (f" ({', '.join(meta)})" if meta else "")


def _default_text(info: FieldInfo, kind: str | None) -> str:
    if info.is_required():
        return "required"
    default = info.get_default(call_default_factory=True)
    if default is None:
        return "none" if kind != "period" else "`off`"
    if isinstance(default, BaseModel):
        if isinstance(default, Constant):
            return f"`{units.format_duration(default.value)}`"
        return "see below"
    if isinstance(default, tuple) and not default:
        return "none"
    if default == "":
        return '`""`'
    if isinstance(default, float) and kind in ("duration", "period"):
        return f"`{units.format_duration(default)}`"
    if isinstance(default, float) and kind == "rate":
        return f"`{default:g}/s`"
    if isinstance(default, float) and kind == "ratio":
        return f"`{default:g}`"
    return f"`{default}`"


def _doc_path(parent: str, model: type[BaseModel], key: str) -> str:
    fault_type = _tag(model, "type") if "type" in model.model_fields else None
    if fault_type is not None:
        return f"faults[{fault_type}].{key}"
    dist = _tag(model, "dist") if "dist" in model.model_fields else None
    if dist is not None:
        return f"dist[{dist}].{key}"
    return f"{parent}.{key}" if parent else key


def walk_fields(model: type[BaseModel] = Scenario, parent: str = "") -> Iterator[tuple[type[BaseModel], KeyDoc]]:
    """Every key of the format, depth first, each model once (faults and distributions by tag)."""
    seen: set[type[BaseModel]] = set()

    def visit(current: type[BaseModel], where: str) -> Iterator[tuple[type[BaseModel], KeyDoc]]:
        if current in seen:
            return
        seen.add(current)
        children: list[tuple[type[BaseModel], str]] = []
        for name, info in current.model_fields.items():
            key = info.alias or name
            path = _doc_path(where, current, key)
            kind = _field_kind(current, name, info)
            meaning = info.description or MEANINGS.get(path) or _shared_meaning(path)
            yield current, KeyDoc(path, key, _type_text(current, name, info), _default_text(info, kind), meaning or "")
            if kind != "slo":
                for sub in _models(info.annotation):
                    children.append((sub, path))
        for sub, path in children:
            yield from visit(sub, path)

    yield from visit(model, parent)


def _shared_meaning(path: str) -> str | None:
    """Fault keys every fault type has (``faults[*].at``) are described once."""
    match = re.match(r"^faults\[[a-z_]+\]\.(\w+)$", path)
    return MEANINGS.get(f"faults[*].{match.group(1)}") if match else None


def key_unit(key_path: str) -> str | None:
    """The unit a key path's normalised value is in: ``/s``, ``s``, ``share`` or None (a count)."""
    parts = [p for p in re.split(r"[.\[\]]", key_path) if p and not p.isdigit()]
    models: list[type[BaseModel]] = [Scenario]
    kind = None
    for part in parts:
        found = None
        for model in models:
            for name, info in model.model_fields.items():
                if (info.alias or name) == part:
                    found = (model, name, info)
                    break
            if found:
                break
        if found is None:
            return None
        model, name, info = found
        kind = _field_kind(model, name, info)
        models = _models(info.annotation)
    if key_path.endswith("arrivals.scale"):
        return "× the written rates"
    return {"duration": "s", "period": "s", "delay": "s", "rate": "/s", "ratio": "share"}.get(kind or "")


# --------------------------------------------------------------------------- what keys mean

MEANINGS: dict[str, str] = {
    "version": "Format version; always 1.",
    "name": "The scenario's name: used in output folder names and reports.",
    "description": "One sentence for people: what is being tried and why.",
    "duration": "Scenario time during which repayments arrive. Users keep checking after it ends.",
    "warmup": "Repayments acked before this time are simulated but not counted in the metrics.",
    "seed": "Root of every random stream; the same scenario and seed give byte-identical metrics.",
    "replications": "Independent model runs pooled into the result (their spread gives the 95 % intervals). "
                    "The live run always makes one.",
    "workload": "Who repays and how they look at the status afterwards.",
    "pipeline": "The stages a repayment passes on its way to the app's view.",
    "faults": "What goes wrong, and when. Each entry has a `type`; see [Faults](#faults).",
    "slo": "Gates: `metric[@phase]: \"OP threshold\"`. See [SLOs](#slos).",
    "workload.accounts": "The number of accounts repayments land on, uniformly (each repayment's account from a "
                         "draw of its own). Absent: every repayment is on an account of its own. With several "
                         "repayments on one account a read is judged by the account's view: usable once a write "
                         "carrying the repayment's ledger sequence, or a later one, or a reconcile sweep has "
                         "landed (docs/explanation/semantics.md, 14). Not with `check.pay_again`.",
    "workload.account_skew": "How unevenly repayments spread over `accounts`: a power law of exponent s, account "
                             "k (from 0) taking the share of [k + 1, k + 2) under a density proportional to x^-s "
                             "on [1, accounts + 1) (a continuous Zipf law; s = 1: ln((k + 2)/(k + 1)) / "
                             "ln(accounts + 1)). Absent or 0: uniform. Only with `accounts`.",
    "workload.arrivals": "When repayments arrive (a Poisson process): `rate` or `profile`, times `scale`.",
    "workload.check": "How each user looks at the status after the “repayment successful” ack.",
    "workload.arrivals.rate": "A constant arrival rate. Give exactly one of `rate` and `profile`.",
    "workload.arrivals.profile": "A piecewise-constant rate: a list of `{at, rate}` steps, the first at `0s`, "
                                 "in increasing `at`.",
    "workload.arrivals.scale": "Multiplies every rate (the constant `rate` or every profile step). "
                               "Vary the load of a profile with `--vary workload.arrivals.scale=0.5,1,1.5`.",
    "workload.arrivals.profile.at": "From this scenario time on, this step's rate applies (until the next step).",
    "workload.arrivals.profile.rate": "The arrival rate of this step.",
    "workload.check.first_after": "Delay from the ack to the user's first status read.",
    "workload.check.every": "Delay between a user's reads while the app still shows “unusable”.",
    "workload.check.max_checks": "Reads a user makes at most; one who still sees “unusable” after the last "
                                 "one contacts support.",
    "workload.check.pay_again": "Users who take “unusable” for a failed payment and pay again: a second "
                                "payment with a new idempotency key, through the whole pipeline "
                                "(docs/explanation/semantics.md, 10a). Absent: nobody pays twice.",
    "workload.check.pay_again.after_stale_reads": "A user whose first this-many reads were all stale may pay again, "
                                                  "right after that read (at most `max_checks`).",
    "workload.check.pay_again.probability": "The share of those users who do.",
    "pipeline.channel": "Repay request → ledger commit (the ack).",
    "pipeline.channel.latency": "Time from the request to the ledger commit and ack.",
    "pipeline.sync": "The worker pool that carries outbox events to the credit stage; where queues form.",
    "pipeline.sync.workers": "Number of parallel sync workers (`unlimited`: no queueing).",
    "pipeline.sync.service": "Time one worker spends on one message.",
    "pipeline.credit": "Limit restore and risk rules.",
    "pipeline.credit.service": "Time the credit stage takes per message (no queue).",
    "pipeline.credit.risk_hold_ratio": "Share of repayments a risk rule holds; held accounts stay unusable "
                                       "legitimately and never count as stale.",
    "pipeline.view": "What the app shows.",
    "pipeline.view.cache_ttl": "The app may show a status up to this old (0: always fresh).",
    "pipeline.reconcile": "A periodic sweep that sets every account's view to the truth; `off` disables it.",
    "pipeline.reconcile.every": "Sweep period; sweeps run at every, 2·every, … (`off`: never).",
    "faults[*].name": "Optional label (`[a-z0-9_-]+`) used in reports and in phase-scoped SLOs "
                      "(`stale_read_ratio@NAME`).",
    "faults[*].at": "When the fault starts (scenario time).",
    "faults[*].for": "How long it lasts (default: to the end of the run).",
    "faults[*].type": "The fault type.",
    # each fault type's own keys: its module's MEANINGS
    **{f"faults[{name}].{key}": text for name, ft in REGISTRY.items() for key, text in ft.meanings.items()},
    "dist[constant].dist": "`constant` (may be omitted: a bare duration is a constant).",
    "dist[constant].value": "The delay.",
    "dist[exponential].dist": "`exponential`.",
    "dist[exponential].mean": "Mean delay.",
    "dist[uniform].dist": "`uniform`.",
    "dist[uniform].low": "Smallest delay.",
    "dist[uniform].high": "Largest delay (≥ low).",
    "dist[lognormal].dist": "`lognormal`.",
    "dist[lognormal].median": "Median delay.",
    "dist[lognormal].p95": "95th percentile (≥ median); sets the spread.",
    "dist[pareto].dist": "`pareto`.",
    "dist[pareto].scale": "Smallest delay; P(X > t) = (scale/t)^shape.",
    "dist[pareto].shape": "Tail index (> 1, so the mean is finite; smaller is heavier).",
    "dist[empirical].dist": "`empirical`.",
    "dist[empirical].samples": "Measured delays, resampled uniformly.",
}

#: Meanings of the SLO metric paths (``tests`` check each path of the catalog has one).
METRIC_MEANINGS: dict[str, str] = {
    "repayments": "Repayments acked after the warmup.",
    "reads": "Status reads made by their users.",
    "stale_reads": "Reads that showed “unusable” although the account was usable in truth.",
    "never_usable": "Repayments whose view never showed usable (risk holds included).",
    "lost_repayments": "Acked repayments missing from the ledger (must be 0).",
    "duplicate_repayments": "Repayments applied twice (idempotency failures).",
    "wrong_usable_reads": "Reads that showed “usable” for an account that was not (e.g. held).",
    "risk_holds": "Repayments held by a risk rule.",
    "support_contacts": "Users who still saw “unusable” at their last check.",
    "stale_read_ratio": "stale_reads / reads, with a 95 % interval.",
    "affected_ratio": "Share of repayments whose user saw at least one stale read, with a 95 % interval.",
    "support_contacts_per_10k": "support_contacts per 10,000 repayments.",
    "double_repayments": "Repayments whose user paid a second time and the ledger committed it "
                         "(only with `workload.check.pay_again`).",
    "double_repayments_per_10k": "double_repayments per 10,000 repayments, with a 95 % interval.",
    "phantom_records": ("Accounts a `phantom_record` fault wrote a debt on, holders who made no repayment "
                        "(only with such a fault)."),
    "holder_reads": ("Those holders' looks at their accounts, counted in `reads` and, when stale, in "
                     "`stale_reads` (only with a `phantom_record` fault)."),
    "view_regressions": ("Status writes that moved an account's view back over a newer one (an older write "
                         "applied while `unversioned_writes` removed the version check), counted by the "
                         "writing repayment's ack (only with `workload.accounts`)."),
    "time_to_usable": "Seconds from the ack until the view first showed usable (quantiles, mean, max).",
    "stale_reads_by_cause": "Stale reads attributed to each cause.",
}

#: result.json top-level keys and what they hold (the test compares with a real result).
RESULT_KEYS: dict[str, str] = {
    "schema": "`repaychaos.result/1`.",
    "source": "`sim` (the model), `load` (the live reference service) or `target` (your service, black-box).",
    "scenario": "The scenario in normalised form (seconds, per-second rates, defaults filled in).",
    "scenario_as_written": "The scenario file's text as its author wrote it (null when built from data, "
                           "e.g. a sweep point); the report shows it beside the normalised form.",
    "seed": "The seed used.",
    "replications": "Model replications pooled (1 for a load run).",
    "metrics": "The metrics below (counts pooled over replications).",
    "slo": "One row per SLO: metric, rule, observed, ci95 (where the metric has an interval), verdict, passed.",
    "passed": "Whether the gate passed (every SLO met; see `--inconclusive`).",
    "verdict": "`pass`, `fail` or `inconclusive` (a metric's 95 % interval straddles a threshold).",
    "phases": "The same metrics for repayments acked inside each fault's windows (by type and name) "
              "and `after` every window ended.",
    "windows": "Every fault window: label, type, start, end (scenario seconds).",
    "recovery": "Per fault window, seconds from its end until the stale share of reads per time bin is back "
                "within 1.5× of the share outside every fault window (`baseline_stale_share`). The HTML and "
                "Markdown reports measure it against a fault-free model run of the same scenario instead "
                "(same seed, common random numbers): the share outside windows still holds each backlog's drain.",
    "series": "Fixed-width time bins over the run: acks, reads, stale reads by cause, sync backlog.",
    "batches": "Per batch position of ack time (`positions`: 20 over [warmup, duration)), summed over "
               "replications: `repayments`, `reads`, `stale_reads`, `affected` (and `double` with "
               "`workload.check.pay_again`). A comparison of two results "
               "of one scenario pairs the ratios by position with these counts.",
    "ci_method": "How the intervals were computed: `method` (`batch-means`: non-overlapping batches of "
                 "repayments by ack time, pooled over replications), `batches_per_replication`, `batches`, "
                 "`variance` (ratios and means: within batch positions across replications when there are several, "
                 "else over the pooled batches), `confidence`.",
    "run": "Wall-clock facts (seconds, rates, versions); not part of the deterministic metrics.",
}

_BASE = """version: 1
name: {name}
description: {description}
duration: 30m
seed: 1
workload:
  arrivals: {{rate: 5/s}}
  check: {{first_after: 5s, every: 30s, max_checks: 5}}
pipeline:
  sync: {{workers: 4, service: {{dist: exponential, mean: 100ms}}}}
  reconcile: {{every: 15m}}
"""

#: A runnable scenario per fault type, from its registry module (``tests`` validate and run each).
FAULT_EXAMPLES: dict[str, str] = {
    name: _BASE.format(name="example-" + name.replace("_", "-"), description=ft.example_description) + ft.example
    for name, ft in REGISTRY.items()
}

#: One ``first_after`` (or service time) per distribution, shown in the reference.
DIST_EXAMPLES: dict[str, str] = {
    "constant": "first_after: 5s            # or {dist: constant, value: 5s}",
    "exponential": "service: {dist: exponential, mean: 100ms}",
    "uniform": "first_after: {dist: uniform, low: 2s, high: 20s}",
    "lognormal": "first_after: {dist: lognormal, median: 5s, p95: 1m}",
    "pareto": "extra: {dist: pareto, scale: 2s, shape: 1.5}",
    "empirical": "latency: {dist: empirical, samples: [120ms, 180ms, 200ms, 950ms]}",
}


# --------------------------------------------------------------------------- the reference


def _table(rows: list[KeyDoc], full_path: bool = True) -> list[str]:
    out = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    for doc in rows:
        key = doc.path if full_path else doc.key
        out.append(f"| `{key}` | {doc.type_text} | {doc.default} | {doc.meaning} |")
    return out


def _first_line(model: type[BaseModel]) -> str:
    return " ".join((model.__doc__ or "").strip().split("\n\n")[0].split())


def reference_markdown() -> str:
    """``docs/reference/scenario-format.md``: generated from the model, the meanings above and the catalog."""
    docs = list(walk_fields())
    plain = [d for _, d in docs if not d.path.startswith(("faults[", "dist["))]
    fault_models: dict[str, type[BaseModel]] = {}
    dist_models: dict[str, type[BaseModel]] = {}
    for model, doc in docs:
        if doc.path.startswith("faults["):
            fault_models.setdefault(doc.path[7:doc.path.index("]")], model)
        if doc.path.startswith("dist["):
            dist_models.setdefault(doc.path[5:doc.path.index("]")], model)
    shared = {"name", "at", "for", "type"}
    out = [
        "# Scenario reference",
        "",
        "<!-- Generated by `python -m repaychaos.scenarios.reference --write` from repaychaos/scenarios/spec.py;"
        " tests/test_scenario_reference.py fails when this file and the model differ. Do not edit by hand. -->",
        "",
        "A scenario is one YAML file: a workload, the pipeline it runs through, faults, and SLO gates.",
        "`repaychaos validate FILE` checks one (exit 0 valid, 2 invalid, with file:line: key: expected/found);",
        "`repaychaos schema` prints the same rules as a JSON Schema (draft 2020-12), committed as",
        f"[`{Path(SCHEMA_FILE).name}`]({Path(SCHEMA_FILE).name}). Put this first line in a scenario file and editors",
        "with a YAML language server (VS Code YAML, JetBrains) validate and complete it as you type:",
        "",
        "```yaml",
        "# yaml-language-server: $schema=../docs/reference/scenario.schema.json",
        "```",
        "",
        "The path is relative to the scenario file (the bundled scenarios in `chaos_scenarios/` carry exactly",
        "this line); `repaychaos schema > scenario.schema.json` writes a copy wherever you keep your scenarios,",
        "or point it at a URL where you publish the file.",
        "",
        "## Units",
        "",
        "| kind | written as | means |",
        "| --- | --- | --- |",
        "| duration | `250ms`, `30s`, `5m`, `2h`, `1d`, `1h30m`, or a bare number | seconds |",
        "| rate | `20/s`, `1200/min`, `72000/h`, or a bare number | per second |",
        "| ratio | `0.05` or `5%` | a share in [0, 1] |",
        "| delay | a duration (a constant delay) or a [distribution](#distributions) `{dist: NAME, ...}` | seconds |",
        "",
        "Types are strict: where an integer or a number belongs, a YAML boolean (`true`, `yes`, `on`, …) or a",
        "quoted number (`\"50000\"`) is refused. Strings with units (`30s`, `20/s`, `5%`) are what units are for.",
        "Unknown keys are refused with a “did you mean”.",
        "",
        "## Keys",
        "",
        *_table(plain),
        "",
        "## Faults",
        "",
        "Every fault has `type` and these keys; a fault is in force from `at` for `for`:",
        "",
        *_table([d for _, d in docs if d.path.startswith("faults[") and d.key in shared
                 and d.path.startswith(f"faults[{next(iter(fault_models))}]")], full_path=False),
        "",
        "A fault's windows are also a **phase**: SLOs and report rows for repayments acked inside them.",
        "",
    ]
    types_text = "one of " + ", ".join(f"`{t}`" for t in fault_models)
    out = [line.replace("| `type` | one of `" + next(iter(fault_models)) + "` |", f"| `type` | {types_text} |")
           for line in out]
    for fault_type, model in fault_models.items():
        params = [d for m, d in docs if m is model and d.key not in shared]
        out += [f"### `{fault_type}`", "", _first_line(model), ""]
        if params:
            out += [*_table(params, full_path=False), ""]
        out += ["Runnable example (`repaychaos validate` / `repaychaos sim` it as it is):", "", "```yaml",
                FAULT_EXAMPLES.get(fault_type, "").rstrip(), "```", ""]
    out += [
        "## Distributions",
        "",
        "Every delay (`latency`, `service`, `first_after`, `extra`) is a bare duration (a constant) or one of:",
        "",
    ]
    for name, model in dist_models.items():
        params = [d for m, d in docs if m is model and d.key != "dist"]
        out += [f"### `{name}`", "", _first_line(model), "", *_table(params, full_path=False), "", "```yaml",
                DIST_EXAMPLES.get(name, ""), "```", ""]
    out += [
        "## SLOs",
        "",
        "`slo` maps a metric path, optionally scoped to a phase, to a rule `OP threshold` with OP one of",
        "`<`, `<=`, `>`, `>=`, `==`, `!=`. Thresholds: a number, a percentage (`0.5%`), or a duration for",
        "times (`2m`). A bare number means `== number`.",
        "",
        "```yaml",
        "slo:",
        "  stale_read_ratio: \"< 1%\"",
        "  stale_read_ratio@maintenance: \"< 20%\"   # repayments acked inside maintenance windows",
        "  stale_read_ratio@after: \"< 0.5%\"        # acked after every fault window ended",
        "  time_to_usable.p99: \"< 2m\"",
        "  lost_repayments: \"== 0\"",
        "```",
        "",
        "Phase scopes: `@TYPE` (a fault type in this scenario: every window of that type), `@NAME` (a fault's",
        f"`name`), `@TYPE#INDEX` (the fault at that index), `@{PHASE_AFTER}` (acked after every window ended).",
        "A ratio's gate is **inconclusive** when its 95 % interval straddles the threshold; it fails the gate",
        "unless `--inconclusive pass`.",
        "",
        "| metric path | meaning |",
        "| --- | --- |",
    ]
    for path in SLO_METRIC_PATHS:
        head = path.split(".")[0]
        meaning = METRIC_MEANINGS.get(path) or METRIC_MEANINGS.get(head, "")
        if path.startswith("time_to_usable."):
            stat = path.split(".", 1)[1]
            word = {"mean": "Mean", "max": "Largest", **{q: f"{100 * p:g}th percentile" for q, p in QUANTILES}}[stat]
            meaning = f"{word} of the seconds from the ack until the view first showed usable."
        if path.startswith("stale_reads_by_cause."):
            meaning = f"Stale reads attributed to `{path.split('.', 1)[1]}`."
        out.append(f"| `{path}` | {meaning} |")
    out += [
        "",
        "## The result file",
        "",
        "`repaychaos sim` and `repaychaos load` write `result.json` (the same shape from both engines):",
        "",
        "| key | holds |",
        "| --- | --- |",
        *[f"| `{k}` | {v} |" for k, v in RESULT_KEYS.items()],
        "",
        "`metrics` holds every metric path above (ratios as `{value, ci95}`), plus `visibility` (the",
        "staleness curve: the share of repayments still showing “unusable” t seconds after the ack, with its",
        "95 % band).",
        "",
    ]
    return "\n".join(out)


def _write(root: Path) -> None:
    (root / SCHEMA_FILE).write_text(schema_text(), encoding="utf-8")
    (root / REFERENCE_FILE).write_text(reference_markdown(), encoding="utf-8")


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1:] == ["--write"]:
        _write(Path.cwd())
    else:
        sys.stdout.write(reference_markdown())
