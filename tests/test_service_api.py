"""docs/reference/http-api.md against a running reference service: status codes, idempotency, auth, faults."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from repaychaos.semantics import REJECT_RETRY

from repaychaos.scenarios import load_scenario_data
from repaychaos.load.launcher import ServiceProcess

pytestmark = pytest.mark.live

SCENARIO = {
    "version": 1, "name": "api-contract", "duration": "1h",
    "workload": {"arrivals": {"rate": 1}},
    "pipeline": {"channel": {"latency": 0}, "sync": {"workers": 4, "service": "10ms"}, "credit": {"service": 0},
                 "reconcile": "off"},
}


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    with ServiceProcess(load_scenario_data(SCENARIO), tmp_path_factory.mktemp("api") / "svc.db") as service:
        yield service


def post(svc, key, body=None, **kw):
    headers = {} if key is None else {"Idempotency-Key": key}
    return requests.post(svc.url + "/repayments", json=body or {"account": "a-1", "amount": "120.50"},
                         headers=headers, timeout=10, **kw)


def fault(svc, data, token=True):
    return requests.post(svc.url + "/chaos/faults", json=data, headers=svc.auth() if token else {}, timeout=10)


def test_repayment_commit_answers_201_with_id_account_and_ack_time(svc):
    """A new repayment is acknowledged with 201 and {id, account, acked_at}."""
    before = time.time()
    resp = post(svc, "k-201", {"account": "a-201", "amount": "10.00"})
    assert resp.status_code == 201
    body = resp.json()
    assert set(body) == {"id", "account", "acked_at"}
    assert body["account"] == "a-201"
    assert before - 1 <= body["acked_at"] <= time.time() + 1


def test_replay_with_same_key_returns_same_body_with_200(svc):
    """Replaying the same Idempotency-Key returns the first body with 200."""
    first = post(svc, "k-replay", {"account": "a-replay", "amount": "5"})
    again = post(svc, "k-replay", {"account": "a-replay", "amount": "5"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()


def test_concurrent_retries_of_one_key_create_one_ledger_row(svc):
    """Twenty concurrent POSTs with one key give one id, one 201 and one ledger row."""
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: post(svc, "k-race", {"account": "a-race", "amount": "1"}), range(20)))
    assert sorted(a.status_code for a in answers) == [200] * 19 + [201]
    assert len({a.json()["id"] for a in answers}) == 1
    trace = requests.get(svc.url + "/chaos/trace", headers=svc.auth(), timeout=10).json()
    assert [r["key"] for r in trace["repayments"]].count("k-race") == 1
    assert trace["duplicates"] == 0


def test_same_key_with_a_different_body_is_refused(svc):
    """Reusing a key for another account is a client bug: 422, nothing added."""
    post(svc, "k-other", {"account": "a-x", "amount": "1"})
    assert post(svc, "k-other", {"account": "a-y", "amount": "1"}).status_code == 422


def test_missing_idempotency_key_is_422(svc):
    """The Idempotency-Key header is required."""
    assert post(svc, None).status_code == 422


@pytest.mark.parametrize("body", [{"account": "a-1"}, {"amount": "1"}, {"account": "a-1", "amount": "-3"},
                                  {"account": "a-1", "amount": "abc"}, {"account": "", "amount": "1"},
                                  {"account": "a-1", "amount": "1.001"}, ["a-1", "1"]])
def test_bad_body_is_422(svc, body):
    """A body without a valid account and positive 2-decimal amount is refused with 422."""
    assert post(svc, f"k-bad-{body!r}", body).status_code == 422


def test_get_repayment_returns_the_ledger_row_or_404(svc):
    """GET /repayments/{id} answers the committed row, and 404 for an unknown id."""
    body = post(svc, "k-get", {"account": "a-get", "amount": "7.25"}).json()
    row = requests.get(f"{svc.url}/repayments/{body['id']}", timeout=10)
    assert row.status_code == 200 and row.json()["amount"] == "7.25" and row.json()["account"] == "a-get"
    assert requests.get(f"{svc.url}/repayments/r-nope", timeout=10).status_code == 404


def test_unknown_account_reads_unusable(svc):
    """An account with no repayment shows unusable, with as_of."""
    body = requests.get(f"{svc.url}/accounts/a-never/status", timeout=10).json()
    assert body["account"] == "a-never" and body["status"] == "unusable" and isinstance(body["as_of"], float)


def test_status_becomes_usable_after_the_pipeline(svc):
    """After the ack the view turns usable once sync (10 ms) and credit have run."""
    post(svc, "k-usable", {"account": "a-usable", "amount": "1"})
    deadline = time.time() + 5
    while time.time() < deadline:
        if requests.get(f"{svc.url}/accounts/a-usable/status", timeout=10).json()["status"] == "usable":
            return
        time.sleep(0.02)
    pytest.fail("account never became usable")


def test_healthz_and_metrics(svc):
    """/healthz says ok and /metrics exposes the backlog, in-flight, stale and fault gauges."""
    assert requests.get(svc.url + "/healthz", timeout=10).json()["ok"] is True
    text = requests.get(svc.url + "/metrics", timeout=10).text
    for name in ("repaychaos_requests_total", "repaychaos_outbox_backlog", "repaychaos_sync_in_flight",
                 "repaychaos_stale_accounts", "repaychaos_faults_active"):
        assert name in text


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "test-token"}])
def test_chaos_endpoints_need_the_bearer_token(svc, headers):
    """/chaos/* answers 401 without the right Bearer token."""
    assert requests.get(svc.url + "/chaos/faults", headers=headers, timeout=10).status_code == 401
    assert requests.post(svc.url + "/chaos/faults", json={}, headers=headers, timeout=10).status_code == 401
    assert requests.delete(svc.url + "/chaos/faults/f1", headers=headers, timeout=10).status_code == 401


def test_invalid_live_fault_is_422(svc):
    """A fault that a scenario file would refuse is refused live too."""
    assert fault(svc, {"type": "maintenance", "component": "database"}).status_code == 422
    assert fault(svc, {"type": "interface_bug", "link": "sync->credit", "drop_ratio": 0.8,
                       "corrupt_ratio": 0.5}).status_code == 422


def test_ledger_reject_window_answers_503_then_accepts_the_same_key(svc):
    """In a ledger reject window POST gets 503 with Retry-After; once ended the same key commits."""
    created = fault(svc, {"type": "maintenance", "component": "ledger", "mode": "reject", "for": "1h"})
    assert created.status_code == 201
    fid = created.json()["id"]
    listed = requests.get(svc.url + "/chaos/faults", headers=svc.auth(), timeout=10).json()["faults"]
    assert any(f["id"] == fid and f["active"] for f in listed)
    resp = post(svc, "k-reject", {"account": "a-reject", "amount": "1"})
    assert resp.status_code == 503 and int(resp.headers["Retry-After"]) >= 1
    assert requests.delete(f"{svc.url}/chaos/faults/{fid}", headers=svc.auth(), timeout=10).status_code == 200
    assert post(svc, "k-reject", {"account": "a-reject", "amount": "1"}).status_code == 201


def test_a_reject_names_the_first_retry_that_can_succeed_and_an_early_retry_is_held_for_it(svc):
    """SEMANTICS 1: retries every REJECT_RETRY from the first attempt; every one before the window's
    end is rejected, so the 503 names the first grid instant at or after the end (retry_at). A retry
    sent early is held for that instant and acked at it."""
    created = fault(svc, {"type": "maintenance", "component": "ledger", "mode": "reject", "for": "1s"}).json()
    end = created["windows"][0][1]
    resp = post(svc, "k-named", {"account": "a-named", "amount": "1"})
    assert resp.status_code == 503
    health = requests.get(svc.url + "/healthz", timeout=10).json()
    to_s = lambda epoch: (epoch - health["t0"]) * health["time_scale"]  # noqa: E731
    named = to_s(resp.json()["retry_at"])
    assert end <= named < end + REJECT_RETRY
    again = post(svc, "k-named", {"account": "a-named", "amount": "1"})  # at once: early
    assert again.status_code == 201
    assert abs(to_s(again.json()["acked_at"]) - named) < 0.05 * health["time_scale"]


def test_ledger_pause_window_delays_the_ack_to_its_end(svc):
    """In a ledger pause window the commit (and the ack) waits until the window ends."""
    health = requests.get(svc.url + "/healthz", timeout=10).json()
    created = fault(svc, {"type": "maintenance", "component": "ledger", "mode": "pause", "for": "1s"}).json()
    end = created["windows"][0][1]
    body = post(svc, "k-pause", {"account": "a-pause", "amount": "1"}).json()
    assert (body["acked_at"] - health["t0"]) * health["time_scale"] >= end


def test_a_rule_lag_posted_at_runtime_holds_the_next_repayment_until_it_is_ended(svc):
    """POST a rule lag catching every repayment: the next repayment's account reads unusable and its
    trace blames the rule; a bad hold_ratio is 422 naming the key. (Reconcile is off here: ended,
    the rule catches nothing more, and what it caught waits for a sweep that never comes.)"""
    bad = fault(svc, {"type": "rule_lag", "hold_ratio": 1.5})
    assert bad.status_code == 422 and "hold_ratio" in bad.text
    created = fault(svc, {"type": "rule_lag", "hold_ratio": 1.0, "for": "1h"})
    assert created.status_code == 201 and created.json()["type"] == "rule_lag"
    fid = created.json()["id"]
    assert post(svc, "k-rule", {"account": "a-rule", "amount": "1"}).status_code == 201
    deadline = time.monotonic() + 10
    while True:  # sync 10 ms, credit 0: written at once, however busy the machine
        trace = requests.get(svc.url + "/chaos/trace", headers=svc.auth(), timeout=10).json()
        [rep] = [r for r in trace["repayments"] if r["key"] == "k-rule"]
        if rep["touches"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not rep["held"] and [t[0] for t in rep["touches"]] == ["rule_lag"]
    time.sleep(0.2)
    assert requests.get(svc.url + "/accounts/a-rule/status", timeout=10).json()["status"] == "unusable"
    assert requests.delete(f"{svc.url}/chaos/faults/{fid}", headers=svc.auth(), timeout=10).status_code == 200
    assert post(svc, "k-rule-after", {"account": "a-rule-after", "amount": "1"}).status_code == 201
    deadline = time.monotonic() + 10
    while requests.get(svc.url + "/accounts/a-rule-after/status", timeout=10).json()["status"] != "usable":
        assert time.monotonic() < deadline, "a repayment after the rule was ended never turned usable"
        time.sleep(0.1)


def test_a_phantom_record_posted_at_runtime_shows_a_debt_on_an_account_nobody_repaid(svc):
    """POST a phantom record writing 20 a second: its first account reads unusable (reconcile is
    off here, so nothing repairs it), /chaos/trace lists it with no ledger row, and a bad rate is
    422 naming the key."""
    bad = fault(svc, {"type": "phantom_record", "rate": 0, "holder_looks": ["1s"]})
    assert bad.status_code == 422 and "rate" in bad.text
    created = fault(svc, {"type": "phantom_record", "name": "partner", "rate": "20/s", "for": "1h",
                          "holder_looks": ["1s"]})
    assert created.status_code == 201 and created.json()["type"] == "phantom_record"
    deadline = time.monotonic() + 10
    while True:
        trace = requests.get(svc.url + "/chaos/trace", headers=svc.auth(), timeout=10).json()
        if trace["phantoms"] or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    first = trace["phantoms"][0]
    assert first["account"] == "phantom-partner-0" and first["changes"] == []
    assert first["account"] not in {r["account"] for r in trace["repayments"]}
    assert requests.get(svc.url + "/accounts/phantom-partner-0/status", timeout=10).json()["status"] == "unusable"
    assert requests.delete(f"{svc.url}/chaos/faults/{created.json()['id']}", headers=svc.auth(),
                           timeout=10).status_code == 200


def test_delete_unknown_fault_is_404(svc):
    """Ending a fault that does not exist is 404."""
    assert requests.delete(svc.url + "/chaos/faults/f999", headers=svc.auth(), timeout=10).status_code == 404


def test_the_ledger_row_carries_the_ack_instant_of_the_201(svc):
    """The ack instant is when the service learnt of the commit; the row is restamped with it in the
    writer's next transaction, so a moment later GET /repayments/{id} says the same acked_at."""
    body = post(svc, "k-stamp", {"account": "a-stamp", "amount": "3.00"}).json()
    time.sleep(0.3)
    row = requests.get(f"{svc.url}/repayments/{body['id']}", timeout=5).json()
    assert row["acked_at"] == body["acked_at"]


def test_a_repayment_made_as_of_an_instant_is_acked_as_of_it(svc):
    """?as_of= on POST /repayments names when the user made it: with no channel latency the ack
    is that instant, a little past or ahead (the answer waits for it); more than 1 s back is
    taken as 1 s back; a malformed or far instant is 422 JSON and commits nothing."""
    made = time.time() - 0.3
    resp = post(svc, "k-made-past", {"account": "a-made-1", "amount": "1"}, params={"as_of": repr(made)})
    assert resp.status_code == 201 and resp.json()["acked_at"] == pytest.approx(made, abs=1e-4)
    ahead = time.time() + 0.3
    resp = post(svc, "k-made-ahead", {"account": "a-made-2", "amount": "1"}, params={"as_of": repr(ahead)})
    assert resp.status_code == 201 and resp.json()["acked_at"] == pytest.approx(ahead, abs=1e-4)
    assert time.time() >= ahead
    sent = time.time()
    resp = post(svc, "k-made-long-ago", {"account": "a-made-3", "amount": "1"}, params={"as_of": repr(sent - 60)})
    assert resp.status_code == 201 and sent - 1.0 - 1e-3 <= resp.json()["acked_at"] <= time.time()
    for bad in ("abc", "nan", repr(time.time() + 3600)):
        resp = post(svc, f"k-made-bad-{bad}", {"account": "a-made-4", "amount": "1"}, params={"as_of": bad})
        assert resp.status_code == 422 and resp.json()["detail"].startswith("as_of:"), bad
    # the refused key is still new: its first commit answers 201, not a replay's 200
    assert post(svc, "k-made-bad-abc", {"account": "a-made-4", "amount": "1"}).status_code == 201


def test_a_status_read_as_of_an_instant_answers_for_that_instant(svc):
    """?as_of= names the instant read: read_at is that instant; a malformed or far one is 422 JSON."""
    post(svc, "k-asof", {"account": "a-asof", "amount": "1"})
    instant = time.time() + 0.2  # ahead: the answer waits for it
    body = requests.get(f"{svc.url}/accounts/a-asof/status", params={"as_of": repr(instant)}, timeout=10).json()
    assert body["read_at"] == instant and time.time() >= instant
    for bad in ("abc", "nan", repr(time.time() + 3600), "0"):
        resp = requests.get(f"{svc.url}/accounts/a-asof/status", params={"as_of": bad}, timeout=10)
        assert resp.status_code == 422 and resp.json()["detail"].startswith("as_of:"), bad
