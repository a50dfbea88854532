"""The reference service tried as an attacker would, on loopback. Every answer is a
4xx with a JSON body saying what was wrong (never a 500 or a hang), and is counted in /metrics."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from repaychaos.service.edge import BODY_TIMEOUT, MAX_AMOUNT
from repaychaos.load.launcher import ServiceProcess, free_port
from repaychaos.scenarios import load_scenario_data

pytestmark = pytest.mark.live

SCENARIO = {
    "version": 1, "name": "hostile", "duration": "1h",
    "workload": {"arrivals": {"rate": 1}},
    "pipeline": {"channel": {"latency": 0}, "sync": {"workers": 4, "service": "10ms"}, "credit": {"service": 0},
                 "view": {"cache_ttl": "30s"}, "reconcile": "off"},
}
JSON = {"Content-Type": "application/json"}


#: The service's client time limit in these tests (`serve --client-timeout`; 10 s by default):
#: short, so the stalled-client checks take seconds.
CLIENT_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    with ServiceProcess(load_scenario_data(SCENARIO), tmp_path_factory.mktemp("hostile") / "svc.db",
                        client_timeout=CLIENT_TIMEOUT) as service:
        yield service


def repay(svc, raw: str | bytes, key: str = "k", headers: dict | None = None) -> requests.Response:
    sent = {"Idempotency-Key": key, **JSON, **(headers or {})}
    return requests.post(svc.url + "/repayments", data=raw, headers={k: v for k, v in sent.items() if v is not None},
                         timeout=15)


def problem(resp: requests.Response, status: int) -> str:
    """The response is ``status`` with a JSON body whose detail says what was wrong."""
    assert resp.status_code == status, resp.text[:300]
    assert resp.headers["content-type"].startswith("application/json")
    detail = resp.json()["detail"]
    assert isinstance(detail, str) and detail
    return detail


DEEP = [
    '{"account": "a-1", "amount": ' + "[" * 20000 + "]" * 20000 + "}",
    '{"a":' * 10000 + "1" + "}" * 10000,
    "[" * 40 + "]" * 40,  # shallow enough for the parser, deeper than MAX_DEPTH
]


@pytest.mark.parametrize("raw", DEEP, ids=["array-20000", "object-10000", "array-40"])
def test_deeply_nested_json_is_422_on_both_post_routes(svc, raw):
    """Case 1: a RecursionError no longer escapes; the same on POST /chaos/faults."""
    assert "nested" in problem(repay(svc, raw, key="deep"), 422)
    resp = requests.post(svc.url + "/chaos/faults", data=raw, headers={**svc.auth(), **JSON}, timeout=15)
    assert "nested" in problem(resp, 422)


@pytest.mark.parametrize("account", ["a-17\n", "a-17\r\n", "", "-a", "a" * 129, "a b", "a/b", 17, None])
def test_bad_account_ids_are_422(svc, account):
    """Case 2: the account pattern is anchored at the true end (no trailing newline) and typed."""
    body = json.dumps({"account": account, "amount": "1.00"})
    assert problem(repay(svc, body, key=f"acc-{account!r}".replace(" ", "_")[:190]), 422).startswith("account:")


def test_account_path_with_a_newline_is_422(svc):
    assert problem(requests.get(svc.url + "/accounts/a-17%0A/status", timeout=5), 422).startswith("account:")
    assert requests.get(svc.url + "/accounts/a-17/status", timeout=5).status_code == 200


BAD_AMOUNTS = ['"1e309"', '"1e999999999"', '"' + "9" * 60000 + '"', "1e309", "1E2", '"0"', '"0.00"', '"-1"',
               '"1.234"', '"01.00"', '" 1"', '"1,00"', '"NaN"', "NaN", "Infinity", '"Infinity"', "true", "null",
               '"1000000000"', '"999999999.999"', "[]", '{"v": 1}', "120.5", "3"]


@pytest.mark.parametrize("amount", BAD_AMOUNTS, ids=[a[:16] for a in BAD_AMOUNTS])
def test_amounts_must_be_plain_bounded_decimals(svc, amount):
    """Case 3: a string, no exponent, no sign, at most 2 places, > 0 and <= MAX_AMOUNT (JSON numbers are
    refused: money must not pass through a float)."""
    assert problem(repay(svc, '{"account": "a-amt", "amount": ' + amount + "}", key="amt-" + amount[:40]), 422)


@pytest.mark.parametrize("amount", ['"120.50"', '"0.01"', '"7"', f'"{MAX_AMOUNT}"'])
def test_plain_amounts_are_accepted_as_sent(svc, amount):
    resp = repay(svc, '{"account": "a-ok", "amount": ' + amount + "}", key="ok-" + amount)
    assert resp.status_code == 201, resp.text
    row = requests.get(svc.url + "/repayments/" + resp.json()["id"], timeout=5).json()
    assert row["amount"] == amount.strip('"')


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/json; charset=utf-16",
                                          "application/x-www-form-urlencoded", "application/jsonx"])
def test_a_body_that_is_not_json_is_415(svc, content_type):
    """Case 4: the content type is checked before the body is read."""
    body = json.dumps({"account": "a-ct", "amount": "1.00"})
    if content_type and "utf-16" in content_type:
        body = body.encode("utf-16")
    assert problem(repay(svc, body, key="ct", headers={"Content-Type": content_type}), 415).startswith("Content-Type")


def test_json_with_utf8_charset_is_accepted(svc):
    resp = repay(svc, json.dumps({"account": "a-u8", "amount": "1.00"}), key="u8",
                 headers={"Content-Type": "application/json; charset=UTF-8"})
    assert resp.status_code == 201


def test_a_body_larger_than_64_kib_is_413(svc):
    assert problem(repay(svc, '{"account": "a-big", "amount": "' + "1" * 70_000 + '"}', key="big"), 413)


#: A stalled client must be answered and closed at the service's timeout, not hang: this much
#: later still counts (scheduling on a loaded 2-core machine), a hang does not.
STALL_SLACK = 5.0


def stalled_clients(svc, data: bytes, clients: int, timeout: float) -> list[tuple[float, bytes]]:
    """``clients`` connections that each send ``data`` (an incomplete request) and wait: for
    each, how long until the service closed it and what it answered. While they wait, the
    service still answers a health check."""
    def one() -> tuple[float, bytes]:
        with socket.create_connection(("127.0.0.1", svc.port), timeout=timeout + 10 + STALL_SLACK) as sock:
            began = time.monotonic()
            sock.sendall(data)
            answer = b""
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    return time.monotonic() - began, answer
                answer += chunk

    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(one) for _ in range(clients)]
        time.sleep(1.0)
        assert requests.get(svc.url + "/healthz", timeout=2).status_code == 200
        return [f.result() for f in futures]


def test_slow_bodies_get_408_and_a_closed_connection_within_the_timeout(svc):
    """200 clients that declare 100 bytes and send 5 are each answered 408 and closed at
    the client timeout (within STALL_SLACK); the service keeps answering meanwhile."""
    results = stalled_clients(svc, b"POST /repayments HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                   b"Idempotency-Key: slow\r\nContent-Length: 100\r\n\r\n12345", 200, CLIENT_TIMEOUT)
    for took, answer in results:
        assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
        assert CLIENT_TIMEOUT - 0.5 <= took <= CLIENT_TIMEOUT + STALL_SLACK


# ---------------------------------------------------------------------- round two

def raw_exchange(port: int, data: bytes, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a fresh connection and read until the service closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):  # refused mid-send: the answer was written first
            pass
        answer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return answer
            if not chunk:
                return answer
            answer += chunk


def json_problem(answer: bytes, status: int) -> str:
    """A raw HTTP answer is ``status`` with a JSON body whose detail says what was wrong."""
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 %d " % status), answer[:200]
    assert b"content-type: application/json" in head.lower(), head
    detail = json.loads(body)["detail"]
    assert isinstance(detail, str) and detail
    return detail


@pytest.mark.parametrize("raw, key", [
    ('{"account": "a-dup1", "amount": "-1", "amount": "1"}', "amount"),
    ('{"account": "a-dup1", "account": "b-dup1", "amount": "1"}', "account"),
])
def test_a_repayment_naming_one_key_twice_is_422_naming_it(svc, raw, key):
    """One meaning per body: a duplicate key is refused, not resolved to its last value."""
    detail = problem(repay(svc, raw, key=f"dup-{key}"), 422)
    assert f"'{key}'" in detail and "more than once" in detail
    assert requests.get(svc.url + "/accounts/b-dup1/status", timeout=5).json()["status"] == "unusable"


@pytest.mark.parametrize("raw, key", [
    ('{"type": "maintenance", "type": "sync_delay", "component": "view", "at": "1h", "for": "1s"}', "type"),
    ('{"type": "sync_delay", "at": "1h", "for": "1s", "extra": {"dist": "constant", "value": 1, "value": 9}}',
     "value"),
])
def test_a_fault_naming_one_key_twice_is_422_naming_it(svc, raw, key):
    """The chaos API parses with the same rule, nested objects included."""
    resp = requests.post(svc.url + "/chaos/faults", data=raw, headers={**svc.auth(), **JSON}, timeout=5)
    assert f"'{key}'" in problem(resp, 422)


@pytest.mark.parametrize("size", [17 * 1024, 1024 * 1024, 20 * 1024 * 1024])
def test_a_request_head_over_16_kib_is_431_with_json(svc, size):
    """A header of 17 KiB, 1 MiB or 20 MiB is refused after at most 16 KiB + one read: 431 JSON,
    closed, quickly, and /healthz answers at once after."""
    began = time.monotonic()
    answer = raw_exchange(svc.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * size + b"\r\n\r\n")
    assert "larger than 16 KiB" in json_problem(answer, 431)
    assert time.monotonic() - began < 5.0
    assert requests.get(svc.url + "/healthz", timeout=2).status_code == 200


def test_many_small_headers_over_16_kib_in_all_are_431(svc):
    """The bound is on the whole head, not on each header."""
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 500) for i in range(40))  # ~20 KiB in all
    assert "larger than 16 KiB" in json_problem(raw_exchange(svc.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                                             + headers + b"\r\n"), 431)


def test_a_head_just_under_the_bound_is_served(svc):
    """A 15 KiB header is an ordinary request."""
    resp = requests.get(svc.url + "/healthz", headers={"X-Big": "a" * 15 * 1024}, timeout=5)
    assert resp.status_code == 200


def test_a_100_kb_path_is_431_with_json(svc):
    answer = raw_exchange(svc.port, b"GET /repayments/" + b"r" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    json_problem(answer, 431)


@pytest.mark.parametrize("request_bytes", [
    b"GARBAGE\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40 + b"\r\n\r\n",  # a TLS hello
    b"POST /repayments HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}",
    b"POST /repayments HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n{}",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
    b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
], ids=["garbage-line", "tls-hello", "content-length-abc", "content-length-minus-1", "header-no-colon",
        "http-9.9"])
def test_malformed_http_is_400_with_the_json_error_shape(svc, request_bytes):
    """What the HTTP parser refuses is answered like every other 4xx: a JSON detail."""
    assert "malformed HTTP request" in json_problem(raw_exchange(svc.port, request_bytes), 400)
    assert requests.get(svc.url + "/healthz", timeout=2).status_code == 200


@pytest.mark.parametrize("fault, says", [
    ({"type": "maintenance", "component": "view", "for": 0}, "for: expected greater than 0"),
    ({"type": "maintenance", "component": "view", "for": "0s"}, "for: expected greater than 0"),
    ({"type": "maintenance", "component": "view", "for": "1s", "name": "n" * 65}, "at most 64 characters"),
    ({"type": "maintenance", "component": "view", "for": "1s", "name": "n" * 10_000}, "at most 64 characters"),
    ({"type": "sync_delay", "for": "1s", "extra": 1e300}, "constant.value of at most 86400s"),
    ({"type": "sync_delay", "for": "1s", "extra": {"dist": "pareto", "scale": 1e300, "shape": 1.5}},
     "pareto.scale of at most 86400s"),
    ({"type": "sync_delay", "for": "1s", "extra": {"dist": "exponential", "mean": "2d"}},
     "exponential.mean of at most 86400s"),
    ({"type": "sync_delay", "for": "1s", "extra": {"dist": "empirical", "samples": [1, "30d"]}},
     "empirical.samples of at most 86400s"),
    ({"type": "maintenance", "component": "view", "at": "300d", "for": "1s"}, "within the service's timeline"),
])
def test_fault_bodies_out_of_bounds_are_422(svc, fault, says):
    """A zero-length window, a long name, a delay beyond a day, a start beyond the timeline."""
    resp = requests.post(svc.url + "/chaos/faults", json=fault, headers=svc.auth(), timeout=5)
    assert says in problem(resp, 422)


def test_every_accepted_fault_is_listed_also_beyond_the_scenario(svc):
    """A fault placed after the scenario's end (but on the timeline) is listed until it is over."""
    resp = requests.post(svc.url + "/chaos/faults", json={"type": "maintenance", "component": "view", "at": "20h",
                                                          "for": "1s", "name": "late-one"},
                         headers=svc.auth(), timeout=5)
    assert resp.status_code == 201
    listed = requests.get(svc.url + "/chaos/faults", headers=svc.auth(), timeout=5).json()["faults"]
    assert resp.json()["id"] in {f["id"] for f in listed}
    assert requests.delete(svc.url + "/chaos/faults/" + resp.json()["id"], headers=svc.auth(), timeout=5).ok


def test_live_faults_are_capped_and_ended_ones_free_their_place(tmp_path):
    """MAX_LIVE_FAULTS in force or scheduled at once; one more is 429 JSON; ending one frees a place."""
    from repaychaos.service.fault_board import MAX_LIVE_FAULTS

    fault = {"type": "maintenance", "component": "view", "at": "10h", "for": "1s"}
    with ServiceProcess(load_scenario_data(SCENARIO), tmp_path / "cap.db") as service:
        with requests.Session() as http:
            ids = []
            for _ in range(MAX_LIVE_FAULTS):
                resp = http.post(service.url + "/chaos/faults", json=fault, headers=service.auth(), timeout=5)
                assert resp.status_code == 201
                ids.append(resp.json()["id"])
            over = http.post(service.url + "/chaos/faults", json=fault, headers=service.auth(), timeout=5)
            assert "live faults" in problem(over, 429)
            assert http.delete(service.url + "/chaos/faults/" + ids[0], headers=service.auth(), timeout=5).ok
            assert http.post(service.url + "/chaos/faults", json=fault, headers=service.auth(),
                             timeout=5).status_code == 201


def test_ending_a_sync_delay_releases_the_messages_it_holds(tmp_path):
    """A repayment caught in a sync_delay of a day leaves the outbox once the fault is deleted."""
    with ServiceProcess(load_scenario_data(SCENARIO), tmp_path / "release.db") as service:
        added = requests.post(service.url + "/chaos/faults", json={"type": "sync_delay", "for": "1h", "extra": "1d"},
                              headers=service.auth(), timeout=5)
        assert added.status_code == 201
        assert repay(service, '{"account": "a-held", "amount": "1"}', key="held").status_code == 201
        time.sleep(0.5)
        assert requests.get(service.url + "/healthz", timeout=5).json()["outbox_backlog"] == 1
        assert requests.delete(service.url + "/chaos/faults/" + added.json()["id"], headers=service.auth(),
                               timeout=5).ok
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if requests.get(service.url + "/healthz", timeout=5).json()["outbox_backlog"] == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the message held by the deleted sync_delay was not released")
        trace = requests.get(service.url + "/chaos/trace", headers=service.auth(), timeout=5).json()
        (rep,) = trace["repayments"]
        assert rep["changes"] and rep["changes"][0][1] is True  # written usable
        (touch,) = [t for t in rep["touches"] if t[0] == "sync_delay"]
        assert touch[2] < 60  # the extra it added is cut at the delete, not a day


def test_the_client_timeout_is_ten_seconds_unless_the_service_is_told_otherwise():
    """The stalled-client tests run with a 2 s limit; what a served service gives by default is 10 s
    for the head and 10 s for the body."""
    from repaychaos.service.protocol import HEAD_TIMEOUT, for_service

    assert HEAD_TIMEOUT == BODY_TIMEOUT == 10.0
    assert for_service(lambda status: None).head_timeout == 10.0
    assert for_service(lambda status: None, 2.0).head_timeout == 2.0


def test_a_head_that_never_completes_gets_408_json_within_the_head_timeout(svc):
    """20 clients that send half a request head and stall are each answered 408 with a JSON
    body and closed at the client timeout (within STALL_SLACK); the service answers others meanwhile."""

    results = stalled_clients(svc, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", 20, CLIENT_TIMEOUT)
    for took, answer in results:
        assert "not received within" in json_problem(answer, 408)
        assert CLIENT_TIMEOUT - 0.5 <= took <= CLIENT_TIMEOUT + STALL_SLACK
