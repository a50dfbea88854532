"""``repaychaos load SCENARIO --target TARGET.yaml``: drive someone else's service, black-box.

From the scenario: duration, warmup, workload (arrivals, check policy), faults (as a
schedule of fault actions) and SLOs; ``pipeline`` describes the model only. Everything is
measured at the client (docs/reference/target-file.md) and fed to the same collectors as the other sources:

- the ack is when the repay answer with an ``ok`` status arrived;
- a read is stale when it shows neither usable nor the target's ``hold``;
- ``time_to_usable`` is only known to lie between the last stale read (or the ack) and
  the first usable read: the collectors get the midpoint, and ``censoring`` in
  result.json gives the quantiles of both bounds (the true quantile lies between them);
  a user who never saw usable within their checks counts as ``never_usable``;
- attribution is by phase: a stale read belongs to the fault whose window held its
  repayment's ack (``stale_reads_by_cause`` under that fault's type, ``queueing``
  standing for ``baseline``; per fault label in ``attribution.stale_reads_by_phase``);
- ``lost_repayments`` comes from the target's ``lookup`` if it has one (else not
  observable, and said so); ``duplicate_repayments`` is not observable black-box.

Default time scale 1 (someone else's service runs in real time). With K > 1 the
scenario's arrivals and checks run K times faster and wall times are multiplied by K:
only meaningful for a service that itself runs K times faster (the reference service
with ``--time-scale K``).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repaychaos.core.errors import InvalidInput, RunFailed
from repaychaos.core.collector import MetricsCollector, finalize
from repaychaos.core.records import Read, Repayment, Touch
from repaychaos.core.readlog import BASELINE, phase_of, write_read_log
from repaychaos.core.result import build_result, fault_windows
from repaychaos.core.safety import check_target
from repaychaos.load.clock import Clock
from repaychaos.load.launcher import cpu_seconds, stop_process
from repaychaos.load.measure import read_records
from repaychaos.load.settings import LocustSettings
from repaychaos.load.swarm import WebUI, check_swarm, shard_facts, start_locust, stop_locust, swarm_lead, wait_for_shards
from repaychaos.load.validity import mark_invalid, time_resolution, validity
from repaychaos.target.actions import ActionRunner
from repaychaos.target.loader import check_against_scenario
from repaychaos.target.spec import Target
from repaychaos.target.render import missing_env
from repaychaos.core.types import ResultRecord
from repaychaos.scenarios.faults import target_refusal

if TYPE_CHECKING:
    from repaychaos.scenarios import Scenario

__all__ = ["run_target", "ActionFailed"]



class ActionFailed(RunFailed):
    """A fault action failed without ``on_error: continue`` (exit 3); carries the partial result."""

    def __init__(self, message: str, result: ResultRecord | None = None):
        super().__init__(message)
        self.result = result


def _check_budget(scenario: Scenario, target: Target) -> None:
    check = scenario.workload.check
    expected = scenario.workload.arrivals.expected_count(0.0, scenario.duration) * (1 + check.max_checks)
    if expected > target.max_requests:
        raise InvalidInput(f"{scenario.name}: about {expected:,.0f} requests (repayments x (1 + max_checks)) exceed "
                           f"the target file's max_requests {target.max_requests:,}; raise it or shorten the scenario")


def _tail_seconds(scenario: Scenario) -> float:
    """Scenario seconds after ``duration`` a user may still be checking (first read at p99.99)."""
    check = scenario.workload.check
    dist = check.first_after
    hi = 1.0
    while dist.survival(hi) > 1e-4 and hi < 1e9:
        hi *= 2
    return hi + check.every * (check.max_checks - 1)


def run_target(scenario: Scenario, target: Target, *, target_file: str = "TARGET", time_scale: float | None = None,
               allow_remote: bool = False, max_wall: float | None = None, read_log: Any = None,
               progress: bool | None = None, fail_on_inconclusive: bool = True,
               locust_workers: int = 0, remote_workers: int = 0, master_bind: str = "127.0.0.1",
               web: WebUI | None = None) -> ResultRecord:
    """Run ``scenario``'s users against ``target`` on the load engine; the result record (source ``target``).

    ``read_log``: where to write the per-user read log (``reads.jsonl.gz``), or None.
    ``locust_workers``: N > 0 runs Locust as a master with N local workers, each a shard of
    the arrivals (the request cap split evenly between them); ``remote_workers``: also wait
    for that many from other machines (the master listens on ``master_bind``; the command
    to run on them is printed on stderr). ``web``: Locust serves its web UI there, with the
    Staleness tab (:func:`repaychaos.load.swarm.web_ui`); the run is otherwise the same.
    Raises :class:`ActionFailed` (exit 3, partial result attached) when a fault action fails.
    """
    import requests

    base_url = check_target(target.base_url, allow_remote, "base_url")
    for index, fa in enumerate(target.faults):
        for act in (fa.start, fa.stop):
            if act is not None and act.url:
                check_target(act.url, allow_remote, f"faults[{index}] url")
    check_against_scenario(target, scenario, target_file)
    refused = target_refusal(scenario.faults)
    if refused is not None:
        raise InvalidInput(f"{scenario.name}: {refused}")
    missing = missing_env(target.model_dump(mode="json", by_alias=True))
    if missing:
        raise InvalidInput(f"{target_file}: environment variable(s) {', '.join(missing)} not set "
                           "(the file uses {env.NAME} placeholders)")
    k = 1.0 if time_scale is None else float(time_scale)
    if k <= 0:
        raise InvalidInput(f"--time-scale must be > 0, found {k}")
    if locust_workers < 0:
        raise InvalidInput(f"--locust-workers must be >= 0, found {locust_workers}")
    _check_budget(scenario, target)
    check_swarm(remote_workers, master_bind, allow_remote)
    shards = max(1, locust_workers + remote_workers)

    started = time.time()
    clock = Clock(started + swarm_lead(locust_workers, remote_workers), k)  # Locust is up before scenario time 0
    span = (scenario.duration + _tail_seconds(scenario)) / k
    deadline = clock.t0 + span + 10.0 + 0.2 * span
    if max_wall is not None:
        deadline = min(deadline, started + max_wall)
    run_id = uuid.uuid4().hex[:8]
    session = requests.Session()
    actions = ActionRunner(base_url, session, clock.now)
    by_label = {fa.fault: fa for fa in target.faults}
    windows = fault_windows(scenario)
    open_windows: dict[int, Any] = {}  # window index -> start answer (windows whose start ran)
    failure: list[str] = []

    def fault_values(w: dict[str, Any]) -> dict[str, Any]:
        end = scenario.duration if w["end"] is None else w["end"]
        return {"fault.name": w["fault"], "fault.type": w["type"], "fault.at": f"{w['start']:g}s",
                "fault.for": f"{max(0.0, end - w['start']):g}s", "run": run_id}

    def start(i: int) -> None:
        w = windows[i]
        fa = by_label[w["fault"]]
        open_windows[i] = None
        if fa.start is None:
            return
        out = actions.run(fa.start, fault=w["fault"], phase="start", reason="window", values=fault_values(w))
        open_windows[i] = out.answer
        if not out.ok and fa.start.on_error == "fail":
            failure.append(f"start action of fault '{w['fault']}' failed: {out.error}")

    def stop(i: int, reason: str) -> None:
        if i not in open_windows:
            return
        answer = open_windows.pop(i)
        w = windows[i]
        fa = by_label[w["fault"]]
        if fa.stop is None:
            return
        out = actions.run(fa.stop, fault=w["fault"], phase="stop", reason=reason, values=fault_values(w),
                          start_answer=answer)
        if not out.ok and fa.stop.on_error == "fail" and not failure:
            failure.append(f"stop action of fault '{w['fault']}' failed: {out.error}")

    timers: list[tuple[float, Any]] = []
    for i, w in enumerate(windows):
        if w["fault"] not in by_label:
            continue
        timers.append((clock.wall(w["start"]), lambda i=i: start(i)))
        if w["end"] is not None:
            timers.append((clock.wall(w["end"]), lambda i=i: stop(i, "window")))
    timers.sort(key=lambda x: x[0])

    def tick() -> bool:
        """The master's side of the run: fault actions at their instants; False stops the run."""
        while timers and timers[0][0] <= time.time() and not failure:
            timers.pop(0)[1]()
        return not failure

    complete = False
    cpu: float | None = None
    with tempfile.TemporaryDirectory(prefix="repaychaos-target-") as name, contextlib.ExitStack() as cleanup:
        work = Path(name)
        records = work / "records"
        records.mkdir()
        arrivals_end = clock.wall(scenario.duration)
        settings = LocustSettings(
            scenario=json.dumps(scenario.normalised()),
            api=json.dumps(target.model_dump(mode="json", by_alias=True)), time_scale=k, t0=clock.t0,
            record=str(records), shards=shards, quit_when_done=True,
            deadline=arrivals_end + 0.5 * max(0.0, deadline - arrivals_end), run_id=run_id,
            parent_pid=os.getpid(), allow_remote=allow_remote, max_requests=target.max_requests // shards)
        log = cleanup.enter_context(open(work / "locust.log", "w"))
        try:
            locusts = start_locust(settings, base_url, locust_workers, deadline, log, remote_workers, master_bind,
                                   web)
            for proc in locusts:
                cleanup.callback(stop_process, proc, 5.0)
            complete = wait_for_shards(shards, locusts, records, deadline, tick, poll=0.5,
                                       next_at=lambda: timers[0][0] if timers else None)
            cpu = round(sum(cpu_seconds(p) or 0.0 for p in locusts), 3)
            stop_locust(locusts, web)
        finally:  # rollbacks: every window that started gets its stop action, whatever happened
            for i in sorted(open_windows):
                stop(i, "rollback" if (failure or not complete or windows[i]["end"] is not None) else "end of run")
            session.close()
        recs = read_records(records)
        if not recs.users and not recs.done and not failure:
            raise RunFailed("Locust recorded no users:\n" + _tail(work / "locust.log"))
    facts = {**shard_facts(recs.done, k), "locust_workers": locust_workers, "cpu_seconds": {"locust": cpu}}
    users = sorted(recs.users, key=lambda u: u["arrived"])
    cap_left = max(0, target.max_requests - facts["requests"])
    lookups = (_lookups(users, target, base_url, cap_left)
               if target.lookup is not None and not failure else None)
    result = _result(scenario, target, users, facts, clock, windows, lookups, complete, started, actions.log,
                     fail_on_inconclusive, read_log)
    if failure:
        result["run"]["aborted"] = failure[0]
        raise ActionFailed(failure[0] + " (every started fault was rolled back; see run.actions)", result)
    return result


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _lookups(users: list[dict[str, Any]], target: Target, base_url: str, budget: int) -> dict[str, bool]:
    """key -> does the target's lookup find the acked repayment? (at most ``budget`` requests)"""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from repaychaos.target.render import render

    spec = target.lookup
    assert spec is not None
    local = threading.local()
    lock = threading.Lock()
    left = [budget]

    def one(user: dict[str, Any]) -> tuple[str, bool | None]:
        with lock:
            if ("{id}" in spec.path and user.get("id") is None) or left[0] <= 0:
                return user["key"], None  # unknown, not lost: no id to look up, or the request cap is reached
            left[0] -= 1
        session = getattr(local, "s", None) or requests.Session()
        local.s = session
        values = {"key": user["key"], "account": user["account"], "amount": target.repay.amount,
                  "id": user.get("id") or "", "read_at": "", "repay_at": ""}
        for _ in range(3):
            try:
                resp = session.request(spec.method, base_url + render(spec.path, values),
                                       headers=render(dict(spec.headers), values), timeout=spec.timeout)
            except requests.RequestException:
                continue
            if resp.status_code < 500:
                return user["key"], resp.status_code in spec.found
        return user["key"], None

    acked = [u for u in users if u.get("ack") is not None]
    with ThreadPoolExecutor(min(32, target.concurrency)) as pool:
        return {key: found for key, found in pool.map(one, acked) if found is not None}


def _quantiles(values: list[float]) -> dict[str, Any]:
    import numpy as np

    from repaychaos.core.catalog import QUANTILES

    if not values:
        return {key: None for key, _ in QUANTILES} | {"max": None}
    arr = np.asarray(values)
    out = {key: round(float(np.quantile(arr, q)), 6) for key, q in QUANTILES}
    out["max"] = round(float(arr.max()), 6)
    return out


def _result(scenario: Scenario, target: Target, users: list[dict[str, Any]], facts: dict[str, Any], clock: Clock,
            windows: list[dict[str, Any]], lookups: dict[str, bool] | None, complete: bool, started: float,
            action_log: list[dict[str, Any]], fail_on_inconclusive: bool, read_log: Any) -> ResultRecord:
    col = MetricsCollector.for_scenario(scenario, shares_accounts=False)  # semantics 14
    type_of = {w["fault"]: w["type"] for w in windows}
    by_phase: dict[str, int] = {BASELINE: 0, **{w["fault"]: 0 for w in windows}}
    lower: list[float] = []
    upper: list[float] = []
    right_censored = 0
    lines = []
    counts = {"users": len(users), "acked": 0, "unacked": 0, "incomplete": 0, "retried": 0,
              "read_errors": 0, "lost": 0}
    for user in users:
        counts["read_errors"] += int(user.get("read_errors", 0))
        tries = [[round(clock.scenario(t), 4), status, wait] for t, status, wait in user.get("tries") or ()]
        if len(tries) > 1:
            counts["retried"] += 1
        if user.get("ack") is None:
            counts["unacked"] += 1
            continue
        counts["acked"] += 1
        if user.get("incomplete") or not user.get("done"):
            counts["incomplete"] += 1
        # rounded as the read log writes them, so the metrics and the log count the same users
        ack = round(clock.scenario(user["ack"]), 4)
        reads = [(round(clock.scenario(r[0]), 4), "u" if r[1] else ("h" if len(r) > 3 and r[3] else "s"))
                 for r in user.get("reads") or ()]
        phase = phase_of(windows, ack)
        line: dict[str, Any] = {"ack": ack, "phase": phase, "reads": reads,
                                "arrived": round(clock.scenario(user["arrived"]), 4), "key": user["key"]}
        if len(tries) > 1:
            line["tries"] = tries
        lines.append(line)
        held = any(o == "h" for _, o in reads)
        last_stale, first_usable = ack, None
        for t, outcome in reads:
            if outcome == "u":
                first_usable = t
                break
            last_stale = t
        usable_at = math.inf if first_usable is None else (last_stale + first_usable) / 2
        in_window = scenario.warmup <= ack < scenario.duration
        if first_usable is not None and not held and in_window:
            lower.append(max(0.0, last_stale - ack))
            upper.append(max(0.0, first_usable - ack))
        elif not held and in_window:
            right_censored += 1
        touches = () if phase == BASELINE else (Touch(type_of[phase], ack, 0.0),)
        found = True if lookups is None else lookups.get(user["key"], True)
        if not found:
            counts["lost"] += 1
        if in_window:
            by_phase[phase] += sum(1 for _, o in reads if o == "s")
        col.observe(Repayment(acked_at=ack, held=held, view_usable_at=usable_at, touches=touches, in_ledger=found),
                    [Read(t, o == "u", t) for t, o in reads])
        if (user.get("again") or {}).get("ack") is not None:
            col.observe_double(ack)  # the target acknowledged the user's second payment
    if counts["unacked"]:
        col.count("unacked_repayments", counts["unacked"])
    finalized = finalize([col.state])
    resolution = time_resolution(scenario, users, clock.top)
    run = {
        "time_scale": clock.top,
        "t0": clock.t0,
        "wall_seconds": round(time.time() - started, 3),
        "target": target.base_url,
        "locust_workers": facts.get("locust_workers", 0),
        "cpu_seconds": facts.get("cpu_seconds"),
        "complete": complete,
        "requests": facts["requests"],
        "request_cap": target.max_requests,
        "request_cap_hit": facts["request_cap_hit"],
        "arrivals": facts["arrivals"],
        "arrivals_began_s": facts["arrivals_began_s"],
        # how late each kind of request left its instant at the client, in scenario seconds
        # (wall x K); the lead each kind learnt (wall seconds, at most LEAD_MAX)
        "request_lateness_s": facts["request_lateness_s"],
        "lead_wall_s": facts["lead_wall_s"],
        "time_resolution": resolution,
        "actions": action_log,
        "lost_repayments_observable": lookups is not None,
        "duplicate_repayments_observable": False,
        **counts,
    }
    run["validity"] = validity(arrivals_late=facts["arrivals_late"], users=counts["users"], acked=counts["acked"],
                               unacked=counts["unacked"], incomplete=counts["incomplete"], complete=complete,
                               cap_hit=bool(facts["request_cap_hit"]), resolution=resolution,
                               began_late_s=facts["arrivals_began_s"], k=clock.top,
                               reads_sent=counts["read_errors"] + sum(len(u.get("reads") or ()) for u in users),
                               read_errors=counts["read_errors"])
    if read_log is not None:
        path = write_read_log(read_log, {"source": "target", "scenario": scenario.name, "time_scale": clock.top,
                                         "duration": scenario.duration, "warmup": scenario.warmup,
                                         "check": scenario.normalised()["workload"]["check"]}, lines)
        run["read_log"] = path.name
    extra = {
        "censoring": {
            "time_to_usable": "interval",
            "estimate": "midpoint of the last stale read (or the ack) and the first usable read",
            "lower": _quantiles(lower),
            "upper": _quantiles(upper),
            "right_censored": right_censored,
            "note": "black-box: each user's time to usable is only known between two reads; the true "
                    "quantile lies between 'lower' and 'upper'; users who never saw usable within their "
                    "checks are counted in never_usable (right-censored)",
        },
        "attribution": {
            "method": "phase",
            "stale_reads_by_phase": by_phase,
            "note": "a stale read is attributed to the fault whose window held its repayment's ack, else "
                    "to 'baseline'; in stale_reads_by_cause the fault's type stands for its phase and "
                    "'queueing' for baseline",
        },
    }
    return mark_invalid(build_result(scenario, "target", scenario.seed, finalized, replications=1, run=run,
                                     fail_on_inconclusive=fail_on_inconclusive, extra=extra))
