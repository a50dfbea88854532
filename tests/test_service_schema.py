"""The service held to its own OpenAPI document by Schemathesis, with every check.

Schemathesis generates requests from ``/openapi.json`` (valid and invalid ones) and checks
each answer: no 5xx, status codes and bodies and headers as documented, invalid data
refused, valid data accepted, unsupported methods 405 with a right ``Allow``, auth not
ignored. Bounded examples per operation: ``REPAYCHAOS_SCHEMA_EXAMPLES`` (default 25 in
the default suite; the soak test runs 400).
"""

from __future__ import annotations

import math
import os
import re
import time
import uuid

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from repaychaos.service.openapi import openapi_document
from repaychaos.load.launcher import ServiceProcess
from repaychaos.scenarios import load_scenario_data

pytestmark = pytest.mark.live

SCENARIO = {
    "version": 1, "name": "schema", "duration": "1h",
    "workload": {"arrivals": {"rate": 1}},
    "pipeline": {"channel": {"latency": 0}, "sync": {"workers": 4, "service": "5ms"}, "credit": {"service": 0},
                 "reconcile": "off"},
}
EXAMPLES = int(os.environ.get("REPAYCHAOS_SCHEMA_EXAMPLES", "25"))
_KEY = re.compile(r"[!-~]{1,200}\Z")

schema = schemathesis.openapi.from_dict(openapi_document())


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    with ServiceProcess(load_scenario_data(SCENARIO), tmp_path_factory.mktemp("schema") / "svc.db") as service:
        yield service


def test_the_served_document_is_the_one_tested(svc):
    assert requests.get(svc.url + "/openapi.json", timeout=5).json() == openapi_document()


def _excluded(case) -> list:
    from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

    # A query parameter whose value is an empty object or array is not sent at all (there is
    # nothing to encode), so the request that goes out is not the invalid one generated.
    if any(value in ({}, []) for value in (case.query or {}).values()):
        return [negative_data_rejection]
    if _is_fault_post(case):
        return [positive_data_acceptance]  # judged by _schema_valid_fault_is_accepted instead
    return []


def _is_fault_post(case) -> bool:
    return case.operation.method.upper() == "POST" and case.operation.path == "/chaos/faults"


#: What may refuse a schema-valid fault: the rules across keys and the bounds on duration and
#: ratio strings that the document states in words (a JSON Schema cannot: '900d' and '150%'
#: are valid strings).
FAULT_RULES = re.compile(
    r"'for' shorter than 'every'|'for' when 'every'|'every' of at least|drop_ratio \+ corrupt_ratio <= 1"
    r"|high >= low|p95 >= median|of at most 86400s|less than or equal to|greater than 0"
    r"|within the service's timeline|a ratio between 0 and 1|in ascending order")


def _schema_valid_fault_is_accepted(case, response) -> None:
    """A schema-valid fault body is placed (201), refused for the live-fault cap (429), or
    refused with 422 naming one of the rules the document states in words."""
    from schemathesis import GenerationMode

    if case.meta is None or case.meta.generation.mode != GenerationMode.POSITIVE:
        return
    if response.status_code == 422:
        detail = response.json()["detail"]
        assert FAULT_RULES.search(detail), f"a schema-valid fault refused for another reason: {detail}"
    else:
        assert response.status_code in (201, 401, 429), response.text[:300]


def _fresh_key(case) -> None:
    """A valid Idempotency-Key made unique per example: reusing one with another body is a
    documented 422, which would make valid data look refused."""
    headers = case.headers or {}
    key = headers.get("Idempotency-Key")
    if isinstance(key, str) and _KEY.match(key):
        headers["Idempotency-Key"] = f"st-{uuid.uuid4().hex}"


def _as_of_in_reach(case) -> None:
    """A numeric ``as_of`` moved into the window the service answers for (up to a second back
    from now): that window moves with the clock, which a JSON Schema cannot state, so the
    document states it in words and a schema-valid instant outside it is a documented 422."""
    query = case.query or {}
    value = query.get("as_of")
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            number = float(value)
        except ValueError:
            return  # not a number: must be refused, and is
        if math.isfinite(number):
            query["as_of"] = repr(time.time() - abs(number) % 1.0)


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_route_honours_its_openapi_contract(case, svc):
    _fresh_key(case)
    _as_of_in_reach(case)
    response = case.call(base_url=svc.url, headers=svc.auth(), timeout=15)
    case.validate_response(response, excluded_checks=_excluded(case))
    if _is_fault_post(case):
        _schema_valid_fault_is_accepted(case, response)
