"""Status reads as of their instants: the view as of a past instant, never a later one; a read
for the future waits until then; out-of-bounds instants are refused.

These drive the service object and its pipeline directly (no HTTP, no timing dependence):
view writes are placed at chosen scenario instants and reads name instants around them.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from repaychaos.scenarios import load_scenario_data
from repaychaos.service.domain import MAX_READ_AHEAD, Service
from repaychaos.service.edge import parse_as_of
from repaychaos.service.stages import HISTORY_WALL
from repaychaos.service.trace import Trace

SCENARIO = {
    "version": 1, "name": "as-of", "duration": "1h",
    "workload": {"arrivals": {"rate": 1}},
    "pipeline": {"channel": {"latency": 0}, "sync": {"workers": 2, "service": "10ms"}, "credit": {"service": 0},
                 "reconcile": "off"},
}


@pytest.fixture
def service(tmp_path):
    svc = Service(load_scenario_data(SCENARIO), db=tmp_path / "svc.db", time_scale=10.0, t0=time.time() - 100.0)
    yield svc
    svc.store.close()


def _trace(service: Service, account: str, acked_at: float) -> Trace:
    trace = Trace(f"r-{account}", account, acked_at, held=False)
    service.pipeline.traces[trace.id] = trace
    service.pipeline.latest[account] = trace
    return trace


def test_a_read_as_of_a_past_instant_shows_the_view_of_that_instant(service):
    """After writes at 100 (usable) and 120 (unusable, a corrupt write), reads name each span."""
    pipe = service.pipeline
    trace = _trace(service, "a-1", 90.0)
    pipe._write(trace, True, 100.0, None)
    pipe._write(trace, False, 120.0, None)
    assert [pipe.read("a-1", t)[0] for t in (95.0, 99.999, 100.0, 110.0, 119.999, 120.0, 130.0)] == [
        False, False, True, True, True, False, False]
    assert pipe.read("a-1", 110.0) == (True, 110.0)  # as_of is the instant read, not the write's


def test_an_unchanged_write_is_no_change_in_the_history(service):
    """A write that shows what the view already showed leaves the history as it was."""
    pipe = service.pipeline
    trace = _trace(service, "a-2", 0.0)
    pipe._write(trace, True, 10.0, None)
    pipe._write(trace, True, 20.0, None)
    assert pipe.history["a-2"] == [(10.0, True)]
    assert pipe.read("a-2", 15.0)[0] is True and pipe.read("a-2", 5.0)[0] is False


def test_an_unusable_read_as_of_the_past_does_not_move_the_mark_back(service):
    """The latest instant a read saw 'unusable' only grows (a later-decided write goes after it)."""
    pipe = service.pipeline
    trace = _trace(service, "a-3", 0.0)
    pipe.read("a-3", 50.0)
    pipe.read("a-3", 40.0)
    assert trace.read_unusable_at == 50.0


def test_history_forgets_accounts_whose_last_change_left_the_span(service):
    """The history holds the last HISTORY_WALL (times K) of changes: memory follows the rate, not uptime."""
    pipe = service.pipeline
    span = HISTORY_WALL * service.clock.time_scale
    assert pipe.history_span == span
    old = _trace(service, "a-old", 0.0)
    pipe._write(old, True, 1.0, None)
    for i in range(3):
        pipe._write(_trace(service, f"a-new{i}", 0.0), True, 1.0 + span + 1 + i, None)
    assert "a-old" not in pipe.history and len(pipe.history) == 3


def test_a_pending_due_write_at_or_before_the_instant_is_applied_by_the_read(service):
    """A write due at 200 is seen by a read as of 200, not by one as of 199.9."""
    pipe = service.pipeline
    trace = _trace(service, "a-due", 150.0)
    from repaychaos.service.trace import Message

    msg = Message(trace, 150.0)
    pipe.inflight[msg.id] = msg
    pipe.timeline.due["a-due"] = [(200.0, msg, True)]
    assert pipe.read("a-due", 199.9)[0] is False
    assert pipe.read("a-due", 200.0)[0] is True
    assert pipe.read("a-due", 199.9)[0] is False  # applied now, and still not as of before its instant


def test_cache_filled_after_the_instant_does_not_answer_for_it(tmp_path):
    """With cache_ttl, a read as of an instant before the cache's fill reads the view as of it."""
    data = {**SCENARIO, "pipeline": {**SCENARIO["pipeline"], "view": {"cache_ttl": "5s"}}}
    svc = Service(load_scenario_data(data), db=tmp_path / "c.db", time_scale=1.0, t0=time.time() - 100.0)
    try:
        pipe = svc.pipeline
        trace = _trace(svc, "a-c", 0.0)
        pipe._write(trace, True, 10.0, None)
        assert pipe.read("a-c", 12.0) == (True, 12.0)  # miss: filled at 12
        assert pipe.read("a-c", 14.0) == (True, 12.0)  # served from the cache filled at 12
        assert pipe.read("a-c", 9.0) == (False, 9.0)  # before the fill: the view as of 9
    finally:
        svc.store.close()


def test_as_of_bounds_are_refused_with_what_is_wrong(service):
    """Before start everything is refused; after, beyond MAX_READ_AHEAD ahead or HISTORY_WALL back."""
    now = time.time()
    assert "not before its start" in (service.as_of_problem(now) or "")

    async def run() -> None:
        await service.start()
        try:
            t = time.time()
            assert service.as_of_problem(service._started_at) is None and service.as_of_problem(t) is None
            assert "not before its start" in (service.as_of_problem(service._started_at - 0.001) or "")
            assert "ahead" in (service.as_of_problem(t + MAX_READ_AHEAD + 5) or "")
            assert "back" in (service.as_of_problem(t - HISTORY_WALL - 5) or "")
            assert service.as_of_problem(float("inf")) is not None
        finally:
            await service.stop()

    asyncio.run(run())


def test_a_read_for_the_future_waits_until_its_instant(service):
    """A read as of 50 ms ahead answers no earlier than that instant, as of it exactly."""

    async def run() -> None:
        await service.start()
        try:
            instant = time.time() + 0.05
            body = await service.status_as_of("a-future", instant)
            assert time.time() >= instant
            assert body == {"account": "a-future", "status": "unusable", "as_of": instant, "read_at": instant}
        finally:
            await service.stop()

    asyncio.run(run())


def test_a_read_as_of_the_past_names_that_instant_and_shows_its_view(service):
    """Writes at now-2 s and now-1 s (scenario): reads between them show the first one's state."""

    async def run() -> None:
        await service.start()
        try:
            clock, pipe = service.clock, service.pipeline
            now = clock.now()
            trace = _trace(service, "a-past", now - 5)
            pipe._write(trace, True, now - 2.0, None)
            pipe._write(trace, False, now - 1.0, None)
            for offset, expected in ((-3.0, "unusable"), (-1.5, "usable"), (-0.5, "unusable")):
                instant = clock.to_epoch(now + offset)
                body = await service.status_as_of("a-past", instant)
                assert body["status"] == expected and body["read_at"] == instant == body["as_of"]
        finally:
            await service.stop()

    asyncio.run(run())


@pytest.mark.parametrize("query, problem", [
    (b"as_of=abc", "expected epoch seconds"),
    (b"as_of=1&as_of=2", "more than once"),
    (b"as_of=1e999", "finite"),
    (b"as_of=", "expected epoch seconds"),
    (b"as_of=0x10", "expected epoch seconds"),
    (b"as_of=1&x=2", "unexpected parameter(s) 'x'"),
])
def test_a_malformed_as_of_is_refused(query, problem):
    """as_of must be one plain number."""
    instant, found = parse_as_of(query)
    assert instant is None and problem in (found or "")


def test_no_as_of_is_a_read_now():
    """Without a query the read is as of now."""
    assert parse_as_of(b"") == (None, None)
    assert parse_as_of(b"as_of=1767225600.25") == (1767225600.25, None)
