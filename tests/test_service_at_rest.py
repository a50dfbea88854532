"""The reference service's memory with shared accounts: repayments at rest move to SQLite.

With ``workload.accounts`` a user's view depends on the account's other repayments, so
the service keeps an account's repayments in memory until they are at rest
(docs/explanation/semantics.md, 14; :mod:`repaychaos.service.spill`) and then writes their
traces as ``/chaos/trace`` shows them. This drives the service object in process (no
HTTP) through out-of-order writes with the version check removed, dropped writes and a
rule lag, and checks that what it reports after moving repayments is exactly what the
semantics gives over every repayment it ever had: the same view changes, touches and
regressions per repayment, and reads of moved repayments answered usable. The rule
itself (:func:`repaychaos.semantics.account_at_rest`) is the model's, whose tests show
each of its conditions needed (tests/test_accounts.py); this checks the service's use of
it: sequences after a moved prefix, sweeps before the rest instant, the stored traces and
regressions, and reads of repayments no longer in memory.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from repaychaos.scenarios import load_scenario_data
from repaychaos.semantics import account_views, view_at
from repaychaos.service import spill
from repaychaos.service.domain import Service

ACCOUNTS = 40
REPAYMENTS = 400

SCENARIO = {
    "version": 1, "name": "at-rest", "duration": "1h",
    "workload": {"accounts": ACCOUNTS, "arrivals": {"rate": 1}},
    "pipeline": {"channel": {"latency": 0}, "sync": {"workers": 16, "service": {"dist": "exponential", "mean": "2s"}},
                 "credit": {"service": "100ms"}, "reconcile": {"every": "15s"}},
    "faults": [{"type": "unversioned_writes"},
               {"type": "interface_bug", "link": "sync->credit", "drop_ratio": 0.2},
               {"type": "rule_lag", "at": "0s", "for": "40s", "hold_ratio": 0.2}],
}


async def _drive(tmp_path) -> tuple[Service, list, dict, list[tuple[bool, bool]]]:
    svc = Service(load_scenario_data(SCENARIO), db=tmp_path / "svc.db", time_scale=20.0)
    # a short history span (scenario seconds) and frequent passes, so groups are looked at
    # while their last writes, sweeps and releases are close (where the rule's conditions
    # matter); the service's own span is HISTORY_WALL wall seconds, how far back a read may look
    svc.pipeline.history_span = 1.0
    created = []
    publish = svc.pipeline.publish

    def recording(row):
        trace = publish(row)
        created.append(trace)
        return trace

    svc.pipeline.publish = recording  # type: ignore[method-assign]
    await svc.start()
    try:
        for i in range(REPAYMENTS):
            out = await svc.repay(f"k-{i}", f"acct-{i % ACCOUNTS}", "1.00")
            assert out.status == 201
            await asyncio.sleep(0.01)  # 0.2 scenario seconds apart: an account's writes overlap
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (svc.pipeline.inflight or svc.spiller.spilled < REPAYMENTS // 2):
            await asyncio.sleep(0.2)
        await svc.store.flush()
        moved = [tr for tr in created if tr.id not in svc.pipeline.traces]
        now = svc.clock.now()
        reads = [(svc.pipeline.read(tr.account, now, tr.id)[0], view_at(_reference(svc, created)[tr.id][0], now))
                 for tr in moved]
        return svc, created, svc.trace(), reads
    finally:
        await svc.stop()


def _reference(svc: Service, created: list) -> dict:
    """Every repayment's (changes, touches, regressed) over the account's whole ledger."""
    out = {}
    pipe = svc.pipeline
    for account in {tr.account for tr in created}:
        traces = [tr for tr in created if tr.account == account]
        views = account_views([tr.facts() for tr in traces], pipe.reconcile.next_sweep)
        for tr, view in zip(traces, views):
            out[tr.id] = pipe.account_trace(tr, view)
    return out


@pytest.mark.slow
def test_repayments_at_rest_move_to_sqlite_and_report_what_they_would_in_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(spill, "SPILL_EVERY", 0.02)
    svc, created, trace, reads = asyncio.run(_drive(tmp_path))
    try:
        assert len(created) == REPAYMENTS
        # most moved: memory holds the repayments not at rest, not everything served
        assert svc.spiller.spilled >= REPAYMENTS // 2 and len(svc.pipeline.traces) <= REPAYMENTS - svc.spiller.spilled
        reference = _reference(svc, created)
        reported = {r["id"]: ([list(c) for c in r["changes"]], r["touches"], r["regressed"])
                    for r in trace["repayments"]}
        assert set(reported) == set(reference)
        for rep_id, (changes, touches, regressed) in reference.items():
            assert reported[rep_id] == (changes, touches, regressed), rep_id
        # the faults acted: regressions, dropped writes and the rule lag all show in what moved
        moved = {tr.id for tr in created} - set(svc.pipeline.traces)
        causes = {touch[0] for rep_id in moved for touch in reference[rep_id][1]}
        assert sum(reference[rep_id][2] for rep_id in moved) > 0, "no regression among the moved repayments"
        assert {"interface_bug", "rule_lag"} <= causes, causes
        # a moved repayment reads as the whole ledger says: usable for good
        assert reads and all(got == want for got, want in reads), reads
    finally:
        svc.store.close()
