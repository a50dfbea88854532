"""The OpenAPI 3.1 document of the reference service (docs/reference/http-api.md), written once, served at /openapi.json.

Written out rather than generated: the two hot routes are answered by the raw-ASGI front
(:mod:`repaychaos.service.fastpath`), which FastAPI cannot see, and every status code
each route can give (the edge's 408/413/415 included) must be listed for a contract test
(Schemathesis, ``tests/test_service_schema.py``) to hold the service to it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from repaychaos.scenarios.faults.base import MAX_DELAY, MAX_FAULT_TIME
from repaychaos.service.domain import MAX_MADE_BACK_WALL, MAX_READ_AHEAD
from repaychaos.service.fault_board import MAX_LIVE_FAULTS
from repaychaos.service.protocol import HEAD_TIMEOUT, MAX_HEAD
from repaychaos.service.stages import HISTORY_WALL
from repaychaos.service.edge import ACCOUNT_PATTERN, AMOUNT_PATTERN, BODY_TIMEOUT, MAX_AMOUNT, MAX_BODY, MAX_KEY

__all__ = ["openapi_document"]

KEY_PATTERN = r"[!-~]{1,%d}" % MAX_KEY


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _problem(description: str) -> dict[str, Any]:
    return _json(_ref("Problem"), description)


_BAD_INPUT = {
    "408": _problem(f"the body did not arrive within {BODY_TIMEOUT:g} s (the connection is closed)"),
    "413": _problem(f"the body is larger than {MAX_BODY // 1024} KiB"),
    "415": _problem("the Content-Type is not application/json (charset utf-8 at most)"),
    "422": _problem("the body does not validate (a JSON object naming one key twice included: one meaning "
                    "per body); detail says what was wrong"),
}
_AUTH = {"401": _problem("Authorization: Bearer <token> missing or wrong")}
_HEAD = {"431": _problem(f"the request head (request line and headers) is larger than {MAX_HEAD // 1024} KiB "
                         "(the connection is closed)")}
_NUM = {"type": "number"}


def _fault_schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    """The fault entry of the scenario format's JSON Schema (``repaychaos schema``) and the
    definitions it uses, with references moved to ``#/components/schemas``."""
    from repaychaos.scenarios.reference import scenario_json_schema

    schema = scenario_json_schema()
    text = json.dumps({"item": schema["properties"]["faults"]["items"], "defs": schema["$defs"]})
    moved = json.loads(text.replace('"#/$defs/', '"#/components/schemas/'))
    used: dict[str, Any] = {}
    pending = [moved["item"]]
    while pending:  # only the definitions a fault reaches
        for name in re.findall(r'"#/components/schemas/([A-Za-z0-9_]+)"', json.dumps(pending.pop())):
            if name not in used:
                used[name] = moved["defs"][name]
                pending.append(used[name])
    _tags_required(moved["item"], used)
    for definition in list(used.values()):
        _tags_required(definition, used)
    return moved["item"], used


def _tags_required(node: Any, defs: dict[str, Any]) -> None:
    """Make a discriminated union's tag required in each of its members: the loader needs the
    tag (``dist``, ``type``) to pick one even where the member's own model has a default."""
    if isinstance(node, list):
        for child in node:
            _tags_required(child, defs)
        return
    if not isinstance(node, dict):
        return
    discriminator = node.get("discriminator")
    if isinstance(discriminator, dict):
        tag = discriminator["propertyName"]
        for target in discriminator.get("mapping", {}).values():
            member = defs[target.rsplit("/", 1)[-1]]
            if tag not in member.setdefault("required", []):
                member["required"].append(tag)
    for child in node.values():
        _tags_required(child, defs)


def openapi_document() -> dict[str, Any]:
    """The document as a dict (a fresh copy each call)."""
    repay_body = {
        "type": "object", "additionalProperties": False, "required": ["account", "amount"],
        "properties": {
            "account": {"type": "string", "pattern": f"^{ACCOUNT_PATTERN}$"},
            "amount": {"type": "string", "pattern": f"^{AMOUNT_PATTERN}$",
                       "description": f"a plain decimal, > 0 and <= {MAX_AMOUNT}, at most 2 places, no exponent"},
        },
    }
    schemas: dict[str, Any] = {
        "Problem": {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}},
        "Ack": {"type": "object", "required": ["id", "account", "acked_at"],
                "properties": {"id": {"type": "string"}, "account": {"type": "string"}, "acked_at": _NUM}},
        "Repayment": {"type": "object", "required": ["id", "account", "amount", "acked_at"],
                      "properties": {"id": {"type": "string"}, "account": {"type": "string"},
                                     "amount": {"type": "string"}, "acked_at": _NUM}},
        "Status": {"type": "object", "required": ["account", "status", "as_of", "read_at"],
                   "description": "`read_at`: the instant the view was read at; `as_of`: the instant the status "
                                  "shown was taken (earlier than `read_at` when the app's cache served it)",
                   "properties": {"account": {"type": "string"}, "status": {"enum": ["usable", "unusable"]},
                                  "as_of": _NUM, "read_at": _NUM}},
        "Health": {"type": "object", "required": ["ok", "status", "outbox_backlog", "max_backlog"],
                   "properties": {"ok": {"type": "boolean"}, "status": {"enum": ["ok", "degraded", "stopping"]},
                                  "scenario": {"type": "string"}, "t0": _NUM, "time_scale": _NUM, "now": _NUM,
                                  "time_scales": {"type": "array", "items": {
                                      "type": "array", "minItems": 2, "maxItems": 2, "items": _NUM}},
                                  "outbox_backlog": {"type": "integer"}, "max_backlog": {"type": "integer"},
                                  "unsettled_accounts": {"type": "integer"}}},
        "Fault": {"type": "object", "required": ["id", "label", "source", "type", "active", "windows", "fault"],
                  "properties": {"id": {"type": "string"}, "label": {"type": "string"},
                                 "source": {"enum": ["scenario", "live"]}, "type": {"type": "string"},
                                 "active": {"type": "boolean"},
                                 "windows": {"type": "array", "items": {
                                     "type": "array", "minItems": 2, "maxItems": 2,
                                     "items": {"type": ["number", "null"]}}},
                                 "fault": {"type": "object"}}},
        "Faults": {"type": "object", "required": ["now", "faults"],
                   "properties": {"now": _NUM, "faults": {"type": "array", "items": _ref("Fault")}}},
        "Ended": {"type": "object", "required": ["id", "ended_at"],
                  "properties": {"id": {"type": "string"}, "ended_at": _NUM}},
        "Trace": {"type": "object", "required": ["t0", "time_scale", "now", "repayments"]},
    }
    retry_after = {"Retry-After": {"description": "wall seconds to wait before retrying with the same key",
                                   "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
    paths: dict[str, Any] = {
        "/repayments": {"post": {
            "summary": "Commit a repayment once per Idempotency-Key; 201 after the ledger commit",
            "description": (
                "With `as_of` (epoch seconds, the instant the user made the repayment): the channel's latency "
                f"runs from it and `acked_at` is its end, the instant the model acks at. At most {MAX_READ_AHEAD:g} s "
                f"ahead (the answer waits); more than {MAX_MADE_BACK_WALL:g} s back is taken as "
                f"{MAX_MADE_BACK_WALL:g} s back. Without it the repayment is made when the request arrives."),
            "parameters": [{"name": "Idempotency-Key", "in": "header", "required": True,
                            "schema": {"type": "string", "pattern": f"^{KEY_PATTERN}$"}},
                           {"name": "as_of", "in": "query", "required": False,
                            "description": "the instant the repayment was made at, epoch seconds",
                            "schema": {"type": "number"}}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": repay_body}}},
            "responses": {
                "201": _json(_ref("Ack"), "committed now"),
                "200": _json(_ref("Ack"), "a replay of a committed key: the first answer, nothing added"),
                **_BAD_INPUT,
                "422": _problem("the body does not validate (a JSON object naming one key twice included), the "
                                "Idempotency-Key is missing or malformed, the key was already used with another "
                                "body (nothing is added), or as_of is not a number or too far ahead; detail says which"),
                "503": {**_problem("a ledger reject window (reason maintenance) or the backlog at its bound "
                                   "(reason backlog): retry with the same key"), "headers": retry_after},
            }}},
        "/repayments/{id}": {"get": {
            "summary": "The ledger row of one repayment",
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": _json(_ref("Repayment"), "the ledger row"), "404": _problem("no such repayment")}}},
        "/accounts/{account}/status": {"get": {
            "summary": "What the app shows for an account",
            "description": (
                "Without `as_of`: the view now. With `as_of` (epoch seconds): the view as of that instant — "
                "at once when it has passed (never a later view), else once it has: the answer waits. "
                f"`as_of` may lie at most {MAX_READ_AHEAD:g} s ahead of the service's clock and at most "
                f"{HISTORY_WALL:g} s back (the view history the service keeps), and not before its start; "
                "422 otherwise. The answer's `read_at` is then `as_of` itself."),
            "parameters": [{"name": "account", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": f"^{ACCOUNT_PATTERN}$"}},
                           {"name": "as_of", "in": "query", "required": False,
                            "description": "the instant to read as of, epoch seconds",
                            "schema": {"type": "number"}},
                           {"name": "repayment", "in": "query", "required": False,
                            "description": ("the id of the repayment whose user reads: with `workload.accounts` "
                                            "the account's view is judged for that repayment (usable once a write "
                                            "carrying its ledger sequence or a later one has landed); ignored "
                                            "otherwise, and when empty (no repayment named)"),
                            "schema": {"type": "string", "pattern": "^([!-~]{1,200})?$"}}],
            "responses": {"200": _json(_ref("Status"), "usable or unusable, as of when"),
                          "422": _problem("not an account id, an as_of out of bounds or not a number, or a "
                                          "repayment that is not an id")}}},
        "/healthz": {"get": {
            "summary": "Whether the service takes work: ok, degraded (shedding) or stopping",
            "responses": {"200": _json(_ref("Health"), "taking work (status ok or degraded)"),
                          "503": _json(_ref("Health"), "starting, stopping or the ledger failed")}}},
        "/metrics": {"get": {
            "summary": "Prometheus text format",
            "responses": {"200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
        "/openapi.json": {"get": {
            "summary": "This document",
            "responses": {"200": _json({"type": "object"}, "the OpenAPI document")}}},
        "/chaos/faults": {
            "get": {"summary": "Faults in force and scheduled", "security": bearer,
                    "responses": {"200": _json(_ref("Faults"), "the faults"), **_AUTH}},
            "post": {"summary": "Add one fault in scenario syntax, `at` relative to now", "security": bearer,
                     "description": (
                         "The body is one entry of a scenario's `faults` (docs/reference/scenario-format.md), "
                         "validated by the same rules: the schema below is the scenario format's, from the fault "
                         "registry. Rules across keys that a JSON Schema does not state are checked too (422): "
                         "`for` shorter than `every`, `drop_ratio + corrupt_ratio <= 1`, a uniform's `low <= high`, "
                         "a lognormal's `median < p95`, every time within its bound (`at`, `for`, `every` at most "
                         f"{MAX_FAULT_TIME / 86_400:g} days, a delay's times at most {MAX_DELAY / 86_400:g} day), and "
                         "a share (`5%`) at most 100%, a start within the service's timeline. "
                         f"At most {MAX_LIVE_FAULTS} faults added here may be in force or scheduled at once: 429 "
                         "beyond. Ending a fault (DELETE) releases the work it holds."),
                     "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("FaultSpec")}}},
                     "responses": {"201": _json(_ref("Fault"), "placed"), **_AUTH, **_BAD_INPUT,
                                   "429": _problem(f"{MAX_LIVE_FAULTS} live faults are in force or scheduled "
                                                   "already")}}},
        "/chaos/faults/{id}": {"delete": {
            "summary": "End a fault now", "security": bearer,
            "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {"200": _json(_ref("Ended"), "ended"), "404": _problem("no such fault"), **_AUTH}}},
        "/chaos/trace": {"get": {
            "summary": "Every repayment and what the pipeline did to it, in scenario seconds", "security": bearer,
            "responses": {"200": _json(_ref("Trace"), "the trace"), **_AUTH}}},
    }
    fault_spec, fault_defs = _fault_schemas()
    clash = set(fault_defs) & set(schemas)
    if clash:  # pragma: no cover - a fault spec named like a response schema
        raise RuntimeError(f"OpenAPI schema names used twice: {sorted(clash)}")
    schemas.update(fault_defs)
    schemas["FaultSpec"] = fault_spec
    for item in paths.values():
        for operation in item.values():
            operation["responses"].update(_HEAD)
    return {
        "openapi": "3.1.0",
        "info": {"title": "repaychaos reference service", "version": "1",
                 "description": (
                     "docs/reference/http-api.md. Times are epoch seconds unless said otherwise. Every 4xx has "
                     "a JSON body `{\"detail\": ...}` saying what was wrong. Before any route: a request head "
                     f"(request line and headers) larger than {MAX_HEAD // 1024} KiB is answered 431, one not "
                     f"received within {HEAD_TIMEOUT:g} s 408, and a request the HTTP parser cannot read (a "
                     "garbage request line, `Content-Length: abc` or `-1`, a malformed header line) 400 — each "
                     "with that JSON body, and the connection is closed. Only a connection closed before a "
                     "request line arrives gets no answer.")},
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
