"""``repaychaos load``: start the service, drive it with Locust, measure, stop everything.

The service and Locust run as subprocesses (gevent's monkey-patching never touches the
caller), on a free loopback port with a temporary database, on one shared scenario
clock: both get the same ``t0`` (a few seconds ahead, so Locust is up before scenario
time 0) and time scale K. The run is bounded: arrivals stop at the scenario's
``duration``, users stop after their last check, and a wall-clock deadline ends
whatever is left. The metrics come from :mod:`repaychaos.load.measure` through the shared
collectors, in scenario seconds.

Default time scale: K = duration / 60 s (a run of about a minute of arrivals), but never
above :data:`MAX_TIME_SCALE`, never so fast that the arrivals exceed :data:`MAX_WALL_RATE`
repayments per wall second, and, when the model's expected reads are given
(:class:`ReadProfile`: ``repaychaos load`` and ``run`` compute them with one fast model
replication), never so fast that repayments plus reads exceed :data:`MAX_WALL_REQUESTS`
requests per wall second. K then steps with the load (:class:`~repaychaos.core.timescale.TimeScale`):
each hour of a profile, and each stretch where users re-check through a fault, runs as
fast as its own load allows, not at the busiest moment's pace. The limits are chosen by
measurement on the reference machine (2 cores), not by formula:

- ``MAX_WALL_RATE`` and ``MAX_WALL_REQUESTS`` are what the service and Locust sustain side
  by side with room to spare: at 420 repayments/s with their reads (890 requests/s) every
  request left on time (lateness p99 3.5 wall ms), the service at half a core; the
  service's highest sustained rate in ``bench/bench_target.py`` was 1,306 requests/s.
- ``MAX_TIME_SCALE`` bounds time resolution (every wall millisecond the event loops run
  late is K scenario milliseconds): the bundled scenarios agree with the model at K = 25.

Each run checks both itself: a run that cannot keep up, or whose reads land too late,
says so (``run.validity``, exit 3) instead of passing. Measure before raising either:
``repaychaos run SCENARIO`` for each bundled scenario, and keep the highest values at which
all agree.

Time resolution: the event loops wake sleepers a fraction of a millisecond late, and K
multiplies that into scenario time. The service schedules each stage from the previous
stage's *intended* end (no accumulation) and makes a view write *due* at its intended
instant (a read applies it first), so the view's timeline carries no timer lateness; the
users learn their typical lateness and wake that much earlier; and the run record reports
what remained (``run.overhead``, ``run.write_lateness_s``, ``run.read_lateness_s``,
scenario seconds). Read instants are the service's own, so a late read is measured when
it happened, not when it was meant to.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from repaychaos.core.errors import InvalidInput, RunFailed
from repaychaos.core.safety import check_target
from repaychaos.core.timescale import TimeScale
from repaychaos.load.clock import Clock
from repaychaos.load.launcher import ServiceProcess, cpu_seconds, stop_process
from repaychaos.load.settings import LocustSettings
from repaychaos.load.swarm import (WebUI, check_swarm, done_count, shard_facts, start_locust, stop_locust, swarm_lead,
                                  wait_for_shards)
from repaychaos.scenarios import Scenario
from repaychaos.scenarios.distributions import Distribution
from repaychaos.core.types import ResultRecord

__all__ = ["run_load", "plan_load", "LoadPlan", "default_time_scale", "wall_time_scale", "plan_line", "check_target",
           "MAX_WALL_RATE", "MAX_WALL_REQUESTS", "MAX_TIME_SCALE", "TARGET_WALL_SECONDS", "STATUS_EVERY",
           "ReadProfile"]

#: Repayments per wall second the default time scale never exceeds (see the module docstring).
MAX_WALL_RATE = 500.0
#: Requests (repayments and status reads) per wall second the default time scale never exceeds
#: where the model's expected reads are known (see the module docstring).
MAX_WALL_REQUESTS = 1200.0
#: The default time scale's largest K (see the module docstring).
MAX_TIME_SCALE = 25.0
#: Wall seconds of arrivals the default time scale aims at.
TARGET_WALL_SECONDS = 60.0
#: Refuse runs with more expected repayments than this (use with_overrides to shorten them).
MAX_REPAYMENTS = 3_000_000
#: After the users are done, wall seconds to wait for in-flight messages and a due reconcile sweep.
DRAIN_WALL_SECONDS = 30.0



@dataclass(frozen=True)
class ReadProfile:
    """Status reads per scenario second a model run expects, in bins of ``width`` scenario
    seconds from 0 (after the last bin: none)."""

    width: float
    rates: tuple[float, ...]

    @classmethod
    def from_series(cls, series: dict[str, Any]) -> "ReadProfile":
        """From a model result's ``series`` (reads per bin, summed over its replications)."""
        n, width = max(1, int(series.get("replications") or 1)), float(series["bin_width"])
        return cls(width, tuple(float(r) / n / width for r in series["reads"]))

    def at(self, t: float) -> float:
        i = int(t // self.width)
        return self.rates[i] if 0 <= i < len(self.rates) else 0.0


def default_time_scale(scenario: Scenario, reads: ReadProfile | None = None) -> TimeScale:
    """K so the arrivals last about a minute, at most MAX_TIME_SCALE; at each step of the
    arrival rate (and, given ``reads``, each bin of expected reads) capped so the wall rate
    stays under MAX_WALL_RATE repayments and MAX_WALL_REQUESTS requests per second. One K
    when nothing steps; K to 3 significant digits, so near-equal neighbours merge."""
    base = min(MAX_TIME_SCALE, max(1.0, scenario.duration / TARGET_WALL_SECONDS))
    arrivals = scenario.workload.arrivals.steps
    instants = {max(0.0, at) for at, _ in arrivals} | {0.0}
    if reads is not None:
        instants |= {i * reads.width for i in range(len(reads.rates) + 1)}

    def rate_at(t: float) -> float:
        rate = 0.0
        for at, r in arrivals:
            if at <= t:
                rate = r
        return rate

    steps: list[tuple[float, float]] = []
    for at in sorted(instants):
        rate = rate_at(at)
        k = base if rate <= 0 else min(base, MAX_WALL_RATE / rate)
        requests = rate + (reads.at(at) if reads is not None else 0.0)
        if reads is not None and requests > 0:
            k = min(k, MAX_WALL_REQUESTS / requests)
        k = float(f"{k:.3g}")
        if not steps or steps[-1][1] != k:
            steps.append((at, k))
    return TimeScale(tuple(steps))


def _tail_quantile(dist: Distribution, p: float = 1e-4) -> float:
    """The smallest t with P(X > t) <= p (bisection on the survival function)."""
    lo, hi = 0.0, 1.0
    while dist.survival(hi) > p and hi < 1e9:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        if dist.survival(mid) > p:
            lo = mid
        else:
            hi = mid
    return hi


def _http(method: str, url: str, token: str | None = None, timeout: float = 10.0) -> Any:
    import requests

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, url, headers=headers, timeout=timeout)


#: Without a terminal, a status line on stderr at least this often (wall seconds).
STATUS_EVERY = 10.0


def wall_time_scale(scenario: Scenario, wall: float, tail: float) -> tuple[float, str | None]:
    """K so arrivals plus the late users' checks take about ``wall`` seconds; capped by
    :data:`MAX_WALL_RATE` (then the second value says why the target cannot be met)."""
    k = (scenario.duration + tail) / wall
    peak = max(rate for _, rate in scenario.workload.arrivals.steps)
    cap = MAX_WALL_RATE / peak if peak > 0 else math.inf
    if k <= cap:
        return k, None
    return cap, (f"--wall {_clock(wall)}: at the peak rate {peak:g}/s the service's cap of {MAX_WALL_RATE:g} "
                 f"repayments per wall second allows at most time scale {cap:.3g}; the run takes about "
                 f"{_clock((scenario.duration + tail) / cap)} instead")


def _clock(seconds: float) -> str:
    """Wall seconds as people read them, in whole seconds (the one duration formatter)."""
    from repaychaos.scenarios.units import format_duration

    return format_duration(max(0, round(seconds)))


def scale_words(scale: TimeScale) -> str:
    """A time scale as the run's first line says it: ``25``, or its steps."""
    from repaychaos.scenarios.units import format_duration

    if scale.is_constant:
        return f"{scale.top:.3g}"
    if len(scale.steps) > 4:
        low = min(k for _, k in scale.steps)
        return f"{low:.3g} to {scale.top:.3g} in {len(scale.steps)} steps (following the expected load)"
    first, *rest = scale.steps
    return (f"{first[1]:.3g}, " + ", ".join(f"{k:.3g} from {format_duration(round(at))}" for at, k in rest)
            + " (stepping with the arrival rate)")


def plan_line(scenario: Scenario, k: float | TimeScale, tail: float, why: str) -> str:
    """The first line of a live run: how long it will take in wall time, and why."""
    from repaychaos.scenarios.units import format_duration

    check = scenario.workload.check
    scale = TimeScale.of(k)
    arrivals = scale.wall_span(scenario.duration)
    late = scale.wall_span(scenario.duration + tail) - arrivals
    users = _users_tail(scenario)
    holders = (f"; holders look up to {format_duration(round(tail))} after a write" if tail > users else "")
    return (f"load {scenario.name}: about {_clock(arrivals + late)} wall (at most {_clock(arrivals + late + DRAIN_WALL_SECONDS)}"
            f" with the final drain): {format_duration(scenario.duration)} of arrivals at time scale {scale_words(scale)} "
            f"({why}) take {_clock(arrivals)}, then up to {_clock(late)} waiting for late users "
            f"(first looks up to {format_duration(round(users - check.every * (check.max_checks - 1)))} after the ack, "
            f"the 1e-4 tail of first_after, plus {check.max_checks - 1} re-checks every {format_duration(check.every)}"
            f"{holders})")


def _users_tail(scenario: Scenario) -> float:
    """Scenario seconds after ``duration`` the last repaying user may still be checking."""
    check = scenario.workload.check
    return _tail_quantile(check.first_after) + check.every * (check.max_checks - 1)


def _lookers_tail(scenario: Scenario) -> float:
    """Scenario seconds after ``duration`` anyone may still be looking: the repaying users, and
    the holders of accounts a fault writes on (up to their last delay after a write)."""
    looks = [max(fault.holder_looks) for fault in scenario.faults if getattr(fault, "holder_looks", None)]
    return max([_users_tail(scenario), *looks])


class _Status:
    """Where a live run is, on stderr every :data:`STATUS_EVERY` s when no progress bar shows it.

    Reads only the new lines of Locust's record files each time (users are recorded when
    they finish, so repayments and the unusable share are those of finished users)."""

    def __init__(self, records: Path, clock: Clock, total: float, duration: float):
        self.records, self.clock, self.total, self.duration = records, clock, total, duration
        self.offsets: dict[Path, int] = {}
        self.repayments = self.reads = self.unusable = 0
        self.last = time.time()

    def _scan(self) -> None:
        for path in sorted(self.records.glob("records-*.jsonl")):
            try:
                with open(path, "rb") as fh:
                    fh.seek(self.offsets.get(path, 0))
                    chunk = fh.read()
            except OSError:
                continue
            end = chunk.rfind(b"\n") + 1
            self.offsets[path] = self.offsets.get(path, 0) + end
            for line in chunk[:end].splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if rec.get("id") is None:
                    continue
                self.repayments += 1
                reads = rec.get("reads") or []
                self.reads += len(reads)
                self.unusable += sum(1 for r in reads if not r[1])

    def line(self, now: float) -> str:
        from repaychaos.scenarios.units import format_duration

        self._scan()
        t = max(0.0, self.clock.scenario(now))
        share = f"{100 * self.unusable / self.reads:.2f}%" if self.reads else "n/a"
        eta = max(0.0, self.clock.wall(self.total) - now)
        return (f"load: {min(100.0, 100 * t / self.total):3.0f}% | scenario {format_duration(round(min(t, self.total)))}"
                f" of {format_duration(round(self.duration))} (+{format_duration(round(self.total - self.duration))}"
                f" for late users) | {self.repayments:,} repayments done, unusable reads {share} (risk holds"
                f" included; stale share after the run) | ETA {_clock(eta)}")

    def tick(self, now: float) -> None:
        if now - self.last >= STATUS_EVERY:
            self.last = now
            sys.stderr.write(self.line(now) + "\n")
            sys.stderr.flush()


class _Progress:
    def __init__(self, enabled: bool | None, total: float):
        if enabled is None:
            enabled = sys.stderr.isatty()
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=round(total), unit="s", desc="load (scenario s)", leave=False)

    def update(self, t: float) -> None:
        if self.bar is not None:
            self.bar.n = max(0, min(round(t), self.bar.total or 0))
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@dataclass(frozen=True)
class LoadPlan:
    """What a load run will do, decided (and checked) before anything starts."""

    scenario: Scenario
    #: K (constant, or stepping with the arrival rate), or None to take the running service's (``--host``)
    time_scale: TimeScale | None
    #: scenario seconds after ``duration`` that the latest users may still be checking
    tail: float
    locust_workers: int
    allow_remote: bool
    #: why the time scale is what it is (the first line of the run says it)
    why: str
    #: Locust workers expected from other machines, and the address the master listens on for them
    remote_workers: int = 0
    master_bind: str = "127.0.0.1"

    @property
    def shards(self) -> int:
        return max(1, self.locust_workers + self.remote_workers)

    def deadline(self, t0: float, scale: TimeScale, started: float, max_wall: float | None) -> float:
        """The wall-clock instant the run ends at the latest: its own length plus slack, or ``max_wall``."""
        span = scale.wall_span(self.scenario.duration + self.tail)
        deadline = t0 + span + 30.0 + 0.2 * span
        return deadline if max_wall is None else min(deadline, started + max_wall)


def plan_load(scenario: Scenario, *, time_scale: float | TimeScale | None = None, host: str | None = None,
              locust_workers: int = 0, allow_remote: bool = False, wall: float | None = None,
              remote_workers: int = 0, master_bind: str = "127.0.0.1",
              expected_reads: ReadProfile | None = None) -> LoadPlan:
    """Check the options against the scenario (InvalidInput if they cannot run) and fix the plan."""
    if isinstance(time_scale, (int, float)) and not time_scale > 0:
        raise InvalidInput(f"--time-scale must be > 0, found {time_scale}")
    if locust_workers < 0:
        raise InvalidInput(f"--locust-workers must be >= 0, found {locust_workers}")
    expected = scenario.workload.arrivals.expected_count(0.0, scenario.duration)
    if expected > MAX_REPAYMENTS:
        raise InvalidInput(f"{scenario.name}: about {expected:,.0f} repayments in one load run (limit "
                           f"{MAX_REPAYMENTS:,}); shorten 'duration' or lower the rate for the load test")
    tail = _lookers_tail(scenario)
    if wall is not None and (time_scale is not None or host is not None):
        raise InvalidInput("--wall picks the time scale: give it without --time-scale and --host")
    if wall is not None and wall <= 0:
        raise InvalidInput(f"--wall must be > 0, found {wall}")
    k: TimeScale | None
    if host is not None:
        k, why = None if time_scale is None else TimeScale.of(time_scale), f"the running service's at {host}"
    elif time_scale is not None:
        k, why = TimeScale.of(time_scale), "--time-scale"
    elif wall is not None:
        constant, warning = wall_time_scale(scenario, wall, tail)
        k = TimeScale.constant(constant)
        why = f"--wall {_clock(wall)}" if warning is None else "capped by the rate limit"
        if warning is not None:
            sys.stderr.write(f"repaychaos: warning: {warning}\n")
    else:
        k = default_time_scale(scenario, expected_reads)
        if k.top >= scenario.duration / TARGET_WALL_SECONDS - 1e-9 and k.is_constant:
            why = "the default: arrivals in about a minute"
        elif k.top >= MAX_TIME_SCALE - 1e-9 and k.is_constant:
            why = f"the default, at most K = {MAX_TIME_SCALE:g}"
        else:
            why = (f"the default: at most K = {MAX_TIME_SCALE:g}, and under {MAX_WALL_RATE:g} repayments per wall "
                   "second at every arrival rate" + ("" if expected_reads is None else
                                                     f" and {MAX_WALL_REQUESTS:g} requests with the reads the model "
                                                     "expects"))
    check_swarm(remote_workers, master_bind, allow_remote)
    return LoadPlan(scenario, k, tail, locust_workers, allow_remote, why, remote_workers, master_bind)


@dataclass
class _Target:
    """The service under load: one we started, or one already running (``--host``)."""

    base_url: str
    token: str
    scale: TimeScale
    t0: float
    service: ServiceProcess | None = None

    @property
    def clock(self) -> Clock:
        return Clock(self.t0, self.scale)


def _start_service(plan: LoadPlan, work: Path) -> _Target:
    """The reference service on a free loopback port, its scenario time 0 a few seconds ahead."""
    assert plan.time_scale is not None
    lead = swarm_lead(plan.locust_workers, plan.remote_workers)  # so Locust is up before scenario time 0
    t0 = time.time() + lead
    service = ServiceProcess(plan.scenario, work / "service.db", time_scale=plan.time_scale,
                             token=secrets.token_urlsafe(24), t0=t0, log=work / "service.log")
    service.start()
    return _Target(service.url, service.token, plan.time_scale, t0, service)


def _attach(plan: LoadPlan, host: str) -> _Target:
    """An already running service: its clock and time scale are the run's (one timeline)."""
    base_url = check_target(host, plan.allow_remote)
    token = os.environ.get("REPAYCHAOS_TOKEN")
    if not token:
        raise InvalidInput("--host: the service's chaos token is needed in REPAYCHAOS_TOKEN to read its trace")
    try:
        health = _http("GET", base_url + "/healthz").json()
    except Exception as exc:  # noqa: BLE001 - any failure here means: not a usable target
        raise RunFailed(f"--host {host}: GET /healthz failed ({exc})") from None
    scale = (TimeScale.from_json(health["time_scales"]) if health.get("time_scales")
             else TimeScale.constant(float(health["time_scale"])))
    if plan.time_scale is not None and plan.time_scale.text() != scale.text():
        raise InvalidInput(f"--time-scale {plan.time_scale.text()}: the service at {host} runs at {scale.text()}; "
                           "the time scale of a running service is set when it starts")
    t0 = float(health["t0"])
    if Clock(t0, scale).now() >= plan.scenario.duration:
        raise InvalidInput(f"--host {host}: the service's clock is past the scenario's duration; restart it")
    return _Target(base_url, token, scale, t0)


def _start_locust(plan: LoadPlan, target: _Target, work: Path, records: Path, deadline: float,
                  log: Any, web: WebUI | None = None) -> list[subprocess.Popen[Any]]:
    """Locust with the reference service's built-in description (one local runner, or a master
    with ``locust_workers`` local workers), headless or serving ``web``."""
    arrivals_end = target.clock.wall(plan.scenario.duration)
    constant = target.scale.is_constant
    settings = LocustSettings(
        scenario=json.dumps(plan.scenario.normalised()), time_scale=target.scale.top if constant else None,
        time_scales=None if constant else target.scale.text(), t0=target.t0, record=str(records), shards=plan.shards,
        quit_when_done=True, deadline=arrivals_end + 0.5 * (deadline - arrivals_end),
        run_id=uuid.uuid4().hex[:8], parent_pid=os.getpid(), allow_remote=plan.allow_remote)
    return start_locust(settings, target.base_url, plan.locust_workers, deadline, log, plan.remote_workers,
                        plan.master_bind, web)


def _wait_for_users(plan: LoadPlan, target: _Target, locusts: list[subprocess.Popen[Any]], records: Path,
                    deadline: float, bar: _Progress, status: _Status | None) -> bool:
    """Until every shard's users are done (True), Locust stops, or the deadline passes."""

    clock = target.clock

    def tick() -> bool:
        bar.update(clock.scenario(time.time()))
        if status is not None:
            status.tick(time.time())
        if target.service is not None and not target.service.running():
            code = target.service.proc.returncode if target.service.proc else None
            raise RunFailed(f"the reference service exited with code {code} during the run:\n"
                            + target.service.log_tail())
        return True

    return wait_for_shards(plan.shards, locusts, records, deadline, tick)


def _fetch_trace(target: _Target) -> dict[str, Any]:
    """The service's per-repayment trace (the truth the load test judges reads against)."""
    try:
        resp = _http("GET", target.base_url + "/chaos/trace", target.token, timeout=300.0)
    except Exception as exc:  # noqa: BLE001
        raise RunFailed(f"GET /chaos/trace failed ({exc})") from None
    if resp.status_code != 200:
        raise RunFailed(f"GET /chaos/trace answered {resp.status_code}: {resp.text[:200]}")
    trace: dict[str, Any] = resp.json()
    return trace


@contextlib.contextmanager
def _workdir(keep_dir: str | os.PathLike[str] | None) -> Iterator[Path]:
    """The run's folder: ``keep_dir`` (emptied of an earlier run's ledger and records), or a temporary one."""
    if keep_dir is None:
        with tempfile.TemporaryDirectory(prefix="repaychaos-load-") as name:
            yield Path(name)
        return
    work = Path(keep_dir)
    work.mkdir(parents=True, exist_ok=True)
    for name in ("service.db", "service.db-wal", "service.db-shm"):
        (work / name).unlink(missing_ok=True)  # a kept folder must not restart on an earlier run's ledger
    records = work / "records"
    if records.is_dir():
        for old in [*records.glob("records-*.jsonl"), *records.glob("done-*.json")]:
            old.unlink()
    yield work


def run_load(scenario: Scenario, *, time_scale: float | TimeScale | None = None, allow_remote: bool = False,
             host: str | None = None, locust_workers: int = 0, progress: bool | None = None,
             fail_on_inconclusive: bool = True, max_wall: float | None = None,
             keep_dir: str | os.PathLike[str] | None = None,
             read_log: str | os.PathLike[str] | None = None, wall: float | None = None,
             remote_workers: int = 0, master_bind: str = "127.0.0.1", web: WebUI | None = None,
             expected_reads: ReadProfile | None = None) -> ResultRecord:
    """Run ``scenario`` against the reference service with Locust; the result record (source ``load``).

    plan -> service -> load -> drain -> collect. ``host``: drive an already running service
    instead of starting one (loopback always; anything else only with ``allow_remote``);
    its chaos token must be in REPAYCHAOS_TOKEN. ``locust_workers``: N > 0 runs Locust as a
    master with N local workers. ``max_wall``: wall-clock bound of the whole run (default:
    the scenario's own length plus slack). ``keep_dir``: keep the database, records and logs
    there instead of a temporary folder. ``read_log``: also write every user's reads there
    (the :mod:`repaychaos.core.readlog` format, for re-analysis and calibration). ``wall``:
    pick the time scale so the run takes about this many wall seconds. ``remote_workers``:
    also wait for that many Locust workers from other machines (the master listens on
    ``master_bind``; the command to run on them is printed on stderr). ``web``: Locust serves
    its web UI there, with the Staleness tab (:func:`repaychaos.load.swarm.web_ui`); the run is
    otherwise the same and ends by itself. ``expected_reads``: the model's reads per scenario
    second, which the default time scale keeps under MAX_WALL_REQUESTS.
    """
    plan = plan_load(scenario, time_scale=time_scale, host=host, locust_workers=locust_workers,
                     allow_remote=allow_remote, wall=wall, remote_workers=remote_workers, master_bind=master_bind,
                     expected_reads=expected_reads)
    started = time.time()
    with _workdir(keep_dir) as work, contextlib.ExitStack() as cleanup:
        records = work / "records"
        records.mkdir(exist_ok=True)
        target = _attach(plan, host) if host is not None else _start_service(plan, work)
        if target.service is not None:
            cleanup.callback(target.service.stop)
        sys.stderr.write(plan_line(scenario, target.scale, plan.tail, plan.why) + "\n")
        sys.stderr.flush()
        deadline = plan.deadline(target.t0, target.scale, started, max_wall)
        log = cleanup.enter_context(open(work / "locust.log", "w"))
        locusts = _start_locust(plan, target, work, records, deadline, log, web)
        for proc in locusts:
            cleanup.callback(stop_process, proc, 5.0)
        bar = _Progress(progress, scenario.duration + plan.tail)
        cleanup.callback(bar.close)
        status = (_Status(records, target.clock, scenario.duration + plan.tail, scenario.duration)
                  if bar.bar is None and progress is not False else None)

        complete = _wait_for_users(plan, target, locusts, records, deadline, bar, status)
        cpu: dict[str, float | None] = {"locust": sum(cpu_seconds(p) or 0.0 for p in locusts)}
        locust_codes = stop_locust(locusts, web)
        drained = _drain(target.base_url, min(DRAIN_WALL_SECONDS, max(1.0, deadline + DRAIN_WALL_SECONDS - time.time())),
                         scenario.pipeline.reconcile.every is not None)
        complete = complete or done_count(records) >= plan.shards
        trace = _fetch_trace(target)
        ledger_ids = duplicates = None
        if target.service is not None:
            cpu["service"] = target.service.cpu_seconds()
            code = target.service.stop()
            if code not in (0, -signal.SIGTERM):
                raise RunFailed(f"the reference service exited with code {code}:\n" + target.service.log_tail())
            ledger_ids, duplicates = _ledger_facts(target.service.db)
        run = {
            # K; when it steps with the arrival rate, the largest, and its steps in time_scales
            "time_scale": target.scale.top,
            **({} if target.scale.is_constant else {"time_scales": target.scale.as_json()}),
            "t0": target.t0,
            "wall_seconds": round(time.time() - started, 3),
            "target": target.base_url,
            # a service already running (--host): its clock started before this run
            "attached": target.service is None,
            "locust_workers": locust_workers,
            "remote_workers": remote_workers,
            "complete": complete,
            "drained": drained,
            "locust_exit_codes": locust_codes,
            "cpu_seconds": cpu,
        }
        return _collect(plan, work, records, trace, ledger_ids, duplicates, run, fail_on_inconclusive, read_log)


def _collect(plan: LoadPlan, work: Path, records: Path, trace: dict[str, Any], ledger_ids: set[str] | None,
             duplicates: int | None, run: dict[str, Any], fail_on_inconclusive: bool,
             read_log: str | os.PathLike[str] | None = None) -> ResultRecord:
    """Join every user's reads with the service's trace through the shared collectors: the result record."""
    from repaychaos.core.collector import finalize
    from repaychaos.core.result import build_result
    from repaychaos.load.measure import collect, read_records
    from repaychaos.load.validity import mark_invalid, time_resolution, validity

    recs = read_records(records)
    if not recs.users and not recs.done:
        raise RunFailed("Locust recorded no users:\n" + _tail(work / "locust.log"))
    col, counts = collect(plan.scenario, trace, recs.users, ledger_ids, duplicates)
    k = run["time_scale"]
    facts = shard_facts(recs.done, k)
    resolution = time_resolution(plan.scenario, recs.users, k)
    run = {
        **run,
        "arrivals": facts["arrivals"],
        "requests": facts["requests"],
        "arrivals_began_s": facts["arrivals_began_s"],
        "service_stage_errors": trace.get("stage_errors", 0),
        # how late view writes happened vs their intended instant, in scenario seconds
        # (event-loop lateness times K): the load test's own time resolution
        "write_lateness_s": trace.get("write_lateness"),
        # what the live service adds to the scenario's stage times (scenario seconds); it is
        # measured, never added to the model (docs/explanation/semantics.md, time compression)
        "overhead": trace.get("overhead"),
        # how late each kind of request left its instant at the client (scenario seconds)
        "request_lateness_s": facts["request_lateness_s"],
        "lead_wall_s": facts["lead_wall_s"],
        # how far the server's read instants fell from the check policy's (scenario seconds)
        "read_lateness_s": facts["read_server_lateness_s"],
        "time_resolution": resolution,
        "republished_after_restart": trace.get("recovered", 0),
        **counts,
    }
    run["validity"] = validity(arrivals_late=facts["arrivals_late"], users=counts["users"], acked=counts["acked"],
                               unacked=counts["unacked"], incomplete=counts["incomplete"],
                               complete=bool(run["complete"]), cap_hit=facts["request_cap_hit"],
                               resolution=resolution, k=k, reads_sent=counts["reads_sent"],
                               read_errors=counts["read_errors"],
                               began_late_s=None if run.get("attached") else facts["arrivals_began_s"])
    if read_log is not None:
        from repaychaos.load.measure import write_user_reads

        run["read_log"] = write_user_reads(read_log, plan.scenario, trace, recs.users).name
    return mark_invalid(build_result(plan.scenario, "load", plan.scenario.seed, finalize([col.state]),
                                     replications=1, run=run, fail_on_inconclusive=fail_on_inconclusive))


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _drain(base_url: str, bound: float, sweeps: bool) -> bool:
    """Wait (at most ``bound`` wall seconds) until no outbox event is in flight and no view is
    wrong, so late view writes and a due reconcile sweep still count. True if it got there."""
    end = time.time() + bound
    while True:
        try:
            health = _http("GET", base_url + "/healthz", timeout=5.0).json()
            if health.get("outbox_backlog", 0) == 0 and (not sweeps or health.get("unsettled_accounts", 0) == 0):
                return True
        except Exception:  # noqa: BLE001 - a busy service: try again until the bound
            pass
        if time.time() >= end:
            return False
        time.sleep(0.25)


def _ledger_facts(db: Path) -> tuple[set[str], int]:
    """Ledger ids and duplicate rows per key, read from the database file after the service stopped."""
    import sqlite3

    conn = sqlite3.connect(str(db))
    try:
        ids = {row[0] for row in conn.execute("SELECT id FROM ledger")}
        dup = conn.execute("SELECT COUNT(*) - COUNT(DISTINCT idem_key) FROM ledger").fetchone()[0]
    finally:
        conn.close()
    return ids, int(dup)
