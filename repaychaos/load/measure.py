"""Join what the users saw (Locust records) with what the service knows (its trace).

The metrics themselves are not computed here: every repayment becomes a
:class:`repaychaos.core.records.Repayment` with its :class:`~repaychaos.core.records.Read` s and is
fed to the same :class:`~repaychaos.core.collector.MetricsCollector` the model uses. This
module only converts times (epoch -> scenario seconds on the service's clock) and
decides what the ledger holds.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from repaychaos.core.collector import MetricsCollector
from repaychaos.core.records import Read, Repayment, Touch
from repaychaos.core.timescale import TimeScale
from repaychaos.load.clock import Clock

if TYPE_CHECKING:
    from repaychaos.scenarios import Scenario

__all__ = ["UserRecords", "read_records", "collect", "write_user_reads"]


@dataclass
class UserRecords:
    """Every user record the Locust shards wrote, plus their end-of-run markers.

    A user record (one JSON line per repayment, written by :mod:`repaychaos.load.locustfile`):
    ``key``, ``account``, ``arrived`` (epoch of its arrival instant), ``attempts``,
    ``tries`` (``[epoch answered, status or "error", Retry-After s]``), ``ack`` (epoch the
    ok answer arrived), ``acked_at`` (the service's own ack instant, when its description
    names one), ``id``, ``reads`` (``[epoch, usable, as_of epoch or null, hold]``),
    ``read_errors``, ``done``, ``gave_up``, ``incomplete``; ``again``: the user's second
    payment (``key``, ``tries``, ``ack``, ``acked_at``, ``id``, ``gave_up`` as above), when
    the user paid again.

    A holder record (the holder of an account a fault wrote a debt on, who made no
    repayment: docs/explanation/semantics.md 10b) has ``holder`` (the account),
    ``written_at`` (scenario seconds), ``cause`` (the fault type), ``reads``, ``done``.
    """

    users: list[dict[str, Any]] = field(default_factory=list)
    done: list[dict[str, Any]] = field(default_factory=list)


def read_records(folder: str | Path) -> UserRecords:
    """Read every ``records-*.jsonl`` and ``done-*.json`` in ``folder`` (a truncated line is skipped)."""
    out = UserRecords()
    for path in sorted(Path(folder).glob("done-*.json")):
        try:
            out.done.append(json.loads(path.read_text(encoding="utf-8")))
        except ValueError:
            continue
    for path in sorted(Path(folder).glob("records-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            out.users.append(item)
    return out


def _touches(raw: Iterable[list[Any]]) -> list[Touch]:
    return [Touch(c, a, math.inf if d is None else d) for c, a, d in raw]


def trace_clock(trace: dict[str, Any]) -> Clock:
    """The run's clock from the service's trace: its t0 and its time scale's steps."""
    steps = trace.get("time_scales")
    return Clock(trace["t0"], TimeScale.from_json(steps) if steps else float(trace["time_scale"]))


def collect(scenario: Scenario, trace: dict[str, Any], users: list[dict[str, Any]],
            ledger_ids: set[str] | None = None, duplicates: int | None = None) -> tuple[MetricsCollector, dict[str, int]]:
    """A collector fed with every acked repayment (joined with the trace) and the backlog samples.

    ``ledger_ids``/``duplicates`` (read from the database file after the run) override what
    the trace says when given. Returns the collector and a few counts for the run record.
    """
    to_s = trace_clock(trace).scenario

    # a service that keeps shared accounts says so (the reference service: semantics 14)
    col = MetricsCollector.for_scenario(scenario, shares_accounts=bool(trace.get("accounts")))
    holders = [u for u in users if "holder" in u]
    if holders:
        users = [u for u in users if "holder" not in u]
    by_id = {r["id"]: r for r in trace["repayments"]}
    if ledger_ids is None:
        ledger_ids = set(by_id)
    counts = {"users": len(users), "acked": 0, "unacked": 0, "incomplete": 0, "lost": 0, "retried": 0,
              # status reads the users sent and those that got no usable answer (run.validity)
              "reads_sent": 0, "read_errors": 0}
    for user in (*users, *holders):
        errors = int(user.get("read_errors", 0))
        counts["read_errors"] += errors
        counts["reads_sent"] += len(user.get("reads") or ()) + errors
    if scenario.workload.check.pay_again is not None:
        counts["paid_again"] = 0  # second payments the ledger committed
    lost_outside = 0
    seen: set[str] = set()
    for user in users:
        if user.get("incomplete"):
            counts["incomplete"] += 1
        if user.get("attempts", 1) > 1:
            counts["retried"] += 1
        rep_id = user.get("id")
        if rep_id is None:
            counts["unacked"] += 1
            continue
        if rep_id in seen:  # the same id acked to two users would be a bug worth seeing, not hiding
            continue
        seen.add(rep_id)
        counts["acked"] += 1
        reads = [Read(to_s(t), bool(u), to_s(a) if a is not None else to_s(t)) for t, u, a, *_ in user.get("reads", ())]
        tr = by_id.get(rep_id)
        if tr is None or rep_id not in ledger_ids:
            counts["lost"] += 1
            rep = Repayment(acked_at=to_s(user["acked_at"]), in_ledger=False)
            if not (scenario.warmup <= rep.acked_at < scenario.duration):
                lost_outside += 1
        else:
            changes = [(t, bool(u)) for t, u in tr["changes"]]
            usable_at = next((t for t, u in changes if u), math.inf)
            rep = Repayment(acked_at=tr["acked_at"], held=bool(tr["held"]), view_usable_at=usable_at,
                            touches=_touches(tr["touches"]), view_changes=changes)
            if tr.get("regressed"):
                col.observe_regressions(rep.acked_at, tr["regressed"])
        col.observe(rep, reads)
        again = (user.get("again") or {}).get("id")
        if again is not None and again in ledger_ids and again != rep_id:
            counts["paid_again"] += 1
            col.observe_double(rep.acked_at)  # counted with the first repayment, as the model does
    if holders:
        counts["holders"] = len(holders)
        _observe_holders(col, holders, trace, to_s)
    if lost_outside:
        col.count("lost_repayments", lost_outside)  # docs/reference/metrics.md: lost at all, not only inside the window
    col.count("duplicate_repayments", trace.get("duplicates", 0) if duplicates is None else duplicates)
    if counts["unacked"]:
        col.count("unacked_repayments", counts["unacked"])
    for t, n in trace.get("backlog", ()):
        col.observe_backlog(t, n)
    return col, counts


def _observe_holders(col: MetricsCollector, holders: list[dict[str, Any]], trace: dict[str, Any],
                     to_s: Any) -> None:
    """Each holder's looks, with the instant the service's sweep repaired the account (its
    view's first usable change; inf if none did), through the collector's one rule."""
    repaired = {p["account"]: next((t for t, u in p["changes"] if u), math.inf) for p in trace.get("phantoms", ())}
    for holder in holders:
        reads = [Read(to_s(t), bool(u), to_s(a) if a is not None else to_s(t)) for t, u, a, *_ in holder["reads"]]
        col.observe_holder(holder["written_at"], repaired.get(holder["holder"], math.inf), reads, holder["cause"])


def write_user_reads(path: str | os.PathLike[str], scenario: Scenario, trace: dict[str, Any], users: list[dict[str, Any]]) -> Path:
    """The per-user read log (:mod:`repaychaos.core.readlog`) of a load run, in scenario seconds.

    A read of a repayment under a risk hold that showed unusable is ``h``, not stale."""
    from repaychaos.core.readlog import phase_of, write_read_log
    from repaychaos.core.result import fault_windows

    to_s = trace_clock(trace).scenario
    held = {r["id"]: bool(r["held"]) for r in trace["repayments"]}
    windows = fault_windows(scenario)
    lines = []
    for user in sorted((u for u in users if u.get("id") is not None), key=lambda u: u["acked_at"]):
        ack = to_s(user["acked_at"])
        hold = held.get(user["id"], False)
        reads = [(to_s(t), "u" if u else ("h" if hold else "s")) for t, u, *_ in user.get("reads", ())]
        lines.append({"ack": ack, "phase": phase_of(windows, ack), "reads": reads})
    header = {"source": "load", "scenario": scenario.name, "time_scale": trace["time_scale"], "duration": scenario.duration,
              "warmup": scenario.warmup, "check": scenario.normalised()["workload"]["check"]}
    return write_read_log(path, header, lines)
