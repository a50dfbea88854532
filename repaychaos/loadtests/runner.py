"""``repaychaos load``: start the service, drive it with Locust, measure, stop everything.

The service and Locust run as subprocesses (gevent's monkey-patching never touches the
caller), on a free loopback port with a temporary database, on one shared scenario
clock: both get the same ``t0`` (a few seconds ahead, so Locust is up before scenario
time 0) and time scale K. The run is bounded: arrivals stop at the scenario's
``duration``, users stop after their last check, and a wall-clock deadline ends
whatever is left. The metrics come from :mod:`repaychaos.loadtests.measure` through the shared
collectors, in scenario seconds.

Default time scale: K = duration / 60 s (a run of about a minute of arrivals), but never
so fast that the arrivals exceed :data:`MAX_WALL_RATE` repayments per wall second (half
of what bench/bench_service.py sustained with ack p99 < 100 ms on a 2-core machine, as a
margin for other work on it), so long busy scenarios take longer than a minute.

Time resolution: the event loops wake sleepers a fraction of a millisecond late, and K
multiplies that into scenario time. The service schedules each stage from the previous
stage's *intended* end (no accumulation), both sides learn their typical lateness and
wake that much earlier, and the run record reports what remained
(``run.write_lateness_s``, ``run.read_lateness_s``, scenario seconds). Delays in the
scenario much shorter than those numbers are not resolved: lower K for them.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from repaychaos.loadtests.safety import check_target
from repaychaos.core.errors import InvalidInput, RunFailed

__all__ = ["run_load", "default_time_scale", "check_target", "MAX_WALL_RATE", "TARGET_WALL_SECONDS"]

#: Repayments per wall second the default time scale never exceeds (bench: 500/s sustained).
MAX_WALL_RATE = 250.0
#: Wall seconds of arrivals the default time scale aims at.
TARGET_WALL_SECONDS = 60.0
#: Refuse runs with more expected repayments than this (use with_overrides to shorten them).
MAX_REPAYMENTS = 3_000_000
#: After the users are done, wall seconds to wait for in-flight messages and a due reconcile sweep.
DRAIN_WALL_SECONDS = 30.0

_LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def default_time_scale(scenario: Any) -> float:
    """K so the arrivals last about a minute, capped so the wall rate stays under MAX_WALL_RATE."""
    peak = max(rate for _, rate in scenario.workload.arrivals.steps)
    k = max(1.0, scenario.duration / TARGET_WALL_SECONDS)
    if peak > 0:
        k = min(k, MAX_WALL_RATE / peak)
    return k


def _tail_quantile(dist: Any, p: float = 1e-4) -> float:
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


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _http(method: str, url: str, token: str | None = None, timeout: float = 10.0) -> Any:
    import requests

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, url, headers=headers, timeout=timeout)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(proc: subprocess.Popen | None, timeout: float = 15.0) -> int | None:
    """SIGTERM, then SIGKILL after ``timeout``; returns the exit code."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


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
            self.bar.n = max(0, min(round(t), self.bar.total))
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_load(scenario: Any, *, time_scale: float | None = None, allow_remote: bool = False, host: str | None = None,
             locust_workers: int = 0, progress: bool | None = None, fail_on_inconclusive: bool = True,
             max_wall: float | None = None, keep_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Run ``scenario`` against the reference service with Locust; the result record (source ``load``).

    ``host``: drive an already running service instead of starting one (loopback always;
    anything else only with ``allow_remote``); its chaos token must be in REPAYCHAOS_TOKEN.
    ``locust_workers``: N > 0 runs Locust as a master with N local workers.
    ``max_wall``: wall-clock bound of the whole run (default: the scenario's own length plus
    slack). ``keep_dir``: keep the database, records and logs there instead of a temp folder.
    """
    from repaychaos.core.metrics import finalize
    from repaychaos.core.result import build_result

    base_url = check_target(host, allow_remote) if host is not None else None
    if time_scale is not None and time_scale <= 0:
        raise InvalidInput(f"--time-scale must be > 0, found {time_scale}")
    if locust_workers < 0:
        raise InvalidInput(f"--locust-workers must be >= 0, found {locust_workers}")
    expected = scenario.workload.arrivals.expected_count(0.0, scenario.duration)
    if expected > MAX_REPAYMENTS:
        raise InvalidInput(f"{scenario.name}: about {expected:,.0f} repayments in one load run (limit "
                           f"{MAX_REPAYMENTS:,}); shorten 'duration' or lower the rate for the load test")
    check = scenario.workload.check
    tail = _tail_quantile(check.first_after) + check.every * (check.max_checks - 1)

    if keep_dir is not None:
        work = Path(keep_dir)
        work.mkdir(parents=True, exist_ok=True)
        cleanup = None
    else:
        cleanup = tempfile.TemporaryDirectory(prefix="repaychaos-load-")
        work = Path(cleanup.name)
    service = None
    locusts: list[subprocess.Popen] = []
    logs: list[Any] = []
    bar = None
    started = time.time()
    try:
        scenario_path = work / "scenario.json"
        scenario_path.write_text(json.dumps(scenario.normalised()), encoding="utf-8")
        records = work / "records"
        records.mkdir(exist_ok=True)
        for old in [*records.glob("records-*.jsonl"), *records.glob("done-*.json")]:
            old.unlink()
        db = work / "service.db"
        for old in (db, db.with_name("service.db-wal"), db.with_name("service.db-shm")):
            old.unlink(missing_ok=True)  # a kept folder must not restart on an earlier run's ledger

        if base_url is None:
            k = time_scale or default_time_scale(scenario)
            token = secrets.token_urlsafe(24)
            port = _free_port()
            base_url = f"http://127.0.0.1:{port}"
            lead = 4.0 + 1.5 * locust_workers
            t0 = time.time() + lead
            env = dict(os.environ, REPAYCHAOS_TOKEN=token)
            logs.append(open(work / "service.log", "w"))
            service = subprocess.Popen(
                [sys.executable, "-m", "repaychaos.loadtests.service", "--scenario", str(scenario_path), "--port", str(port),
                 "--db", str(db), "--time-scale", repr(k), "--t0", repr(t0), "--parent-pid", str(os.getpid())],
                stdout=logs[-1], stderr=subprocess.STDOUT, env=env, start_new_session=True)
            _wait_healthy(base_url, service, work / "service.log")
        else:
            token = os.environ.get("REPAYCHAOS_TOKEN")
            if not token:
                raise InvalidInput("--host: the service's chaos token is needed in REPAYCHAOS_TOKEN to read its trace")
            try:
                health = _http("GET", base_url + "/healthz").json()
            except Exception as exc:  # noqa: BLE001 - any failure here means: not a usable target
                raise RunFailed(f"--host {host}: GET /healthz failed ({exc})") from None
            k = float(health["time_scale"])
            if time_scale is not None and abs(time_scale - k) > 1e-9 * k:
                raise InvalidInput(f"--time-scale {time_scale:g}: the service at {host} runs at {k:g}; "
                                   "the time scale of a running service is set when it starts")
            t0 = float(health["t0"])  # one timeline: scenario time 0 is the service's
            if (time.time() - t0) * k >= scenario.duration:
                raise InvalidInput(f"--host {host}: the service's clock is past the scenario's duration; restart it")
        span = (scenario.duration + tail) / k
        deadline = t0 + span + 30.0 + 0.2 * span
        if max_wall is not None:
            deadline = min(deadline, started + max_wall)
        shards = max(1, locust_workers)
        lenv = dict(os.environ, REPAYCHAOS_SCENARIO=str(scenario_path), REPAYCHAOS_TIME_SCALE=repr(k),
                    REPAYCHAOS_T0=repr(t0), REPAYCHAOS_RECORD=str(records), REPAYCHAOS_SHARDS=str(shards),
                    REPAYCHAOS_QUIT_WHEN_DONE="1" if locust_workers == 0 else "0",
                    REPAYCHAOS_DEADLINE=repr(t0 + scenario.duration / k + 0.5 * (deadline - t0 - scenario.duration / k)),
                    REPAYCHAOS_RUN_ID=uuid.uuid4().hex[:8], REPAYCHAOS_PARENT_PID=str(os.getpid()),
                    REPAYCHAOS_ALLOW_REMOTE="1" if allow_remote else "0")
        run_time = max(5, math.ceil(deadline - time.time()))
        cmd = [sys.executable, "-m", "locust", "-f", str(_LOCUSTFILE), "--headless", "-u", str(shards), "-r",
               str(shards), "--host", base_url, "--run-time", f"{run_time}s", "--only-summary", "--stop-timeout", "5",
               "--exit-code-on-error", "0", "--loglevel", "WARNING"]
        logs.append(open(work / "locust.log", "w"))
        llog = logs[-1]
        if locust_workers:
            mport = _free_port()
            locusts.append(subprocess.Popen(cmd + ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port",
                                                   str(mport), "--expect-workers", str(locust_workers)],
                                            stdout=llog, stderr=subprocess.STDOUT, env=lenv, start_new_session=True))
            for _ in range(locust_workers):
                locusts.append(subprocess.Popen(
                    [sys.executable, "-m", "locust", "-f", str(_LOCUSTFILE), "--worker", "--master-host", "127.0.0.1",
                     "--master-port", str(mport), "--loglevel", "WARNING"],
                    stdout=llog, stderr=subprocess.STDOUT, env=lenv, start_new_session=True))
        else:
            locusts.append(subprocess.Popen(cmd, stdout=llog, stderr=subprocess.STDOUT, env=lenv, start_new_session=True))

        bar = _Progress(progress, scenario.duration + tail)
        from repaychaos.loadtests.measure import read_records

        complete = False
        while time.time() < deadline:
            time.sleep(0.5)
            bar.update((time.time() - t0) * k)
            if service is not None and service.poll() is not None:
                raise RunFailed(f"the reference service exited with code {service.returncode} during the run:\n"
                                + _tail(work / "service.log"))
            if _done_count(records) >= shards:
                complete = True
                break
            if locusts[0].poll() is not None:
                break
        cpu = {"locust": sum(_cpu_seconds(p) or 0.0 for p in locusts)}
        locust_codes = [_stop(p, 20.0) for p in locusts]
        locusts = []
        drained = _drain(base_url, min(DRAIN_WALL_SECONDS, max(1.0, deadline + DRAIN_WALL_SECONDS - time.time())),
                         scenario.pipeline.reconcile.every is not None)
        if not complete:
            complete = _done_count(records) >= shards
        try:
            resp = _http("GET", base_url + "/chaos/trace", token, timeout=300.0)
        except Exception as exc:  # noqa: BLE001
            raise RunFailed(f"GET /chaos/trace failed ({exc})") from None
        if resp.status_code != 200:
            raise RunFailed(f"GET /chaos/trace answered {resp.status_code}: {resp.text[:200]}")
        trace = resp.json()
        ledger_ids = duplicates = None
        if service is not None:
            cpu["service"] = _cpu_seconds(service)
            code = _stop(service)
            service = None
            if code not in (0, -signal.SIGTERM):
                raise RunFailed(f"the reference service exited with code {code}:\n" + _tail(work / "service.log"))
            ledger_ids, duplicates = _ledger_facts(db)
        recs = read_records(records)
        if not recs.users and not recs.done:
            raise RunFailed("Locust recorded no users:\n" + _tail(work / "locust.log"))

        from repaychaos.loadtests.measure import collect

        col, counts = collect(scenario, trace, recs.users, ledger_ids, duplicates)
        finalized = finalize([col.state])
        lag_p99 = max((d.get("lag_p99", 0.0) for d in recs.done), default=None)
        run = {
            "time_scale": k,
            "t0": t0,
            "wall_seconds": round(time.time() - started, 3),
            "target": base_url,
            "locust_workers": locust_workers,
            "complete": complete,
            "drained": drained,
            "arrivals": sum(d.get("arrivals", 0) for d in recs.done),
            "arrival_lag_p99_wall": lag_p99,
            "arrival_lag_max_wall": max((d.get("lag_max", 0.0) for d in recs.done), default=None),
            "locust_exit_codes": locust_codes,
            "cpu_seconds": cpu,
            "service_stage_errors": trace.get("stage_errors", 0),
            # how late view writes happened vs their intended instant, in scenario seconds
            # (event-loop lateness times K): the load test's own time resolution
            "write_lateness_s": trace.get("write_lateness"),
            # what the live service adds to the scenario's stage times (scenario seconds); it is
            # measured, never added to the model (issue 8)
            "overhead": trace.get("overhead"),
            # how far the server's read instants fell from the check policy's (scenario seconds)
            "read_lateness_s": _scaled(recs.done, "read_late", k),
            "republished_after_restart": trace.get("recovered", 0),
            **counts,
        }
        return build_result(scenario, "load", scenario.seed, finalized, replications=1, run=run,
                            fail_on_inconclusive=fail_on_inconclusive)
    finally:
        if bar is not None:
            bar.close()
        for proc in locusts:
            _stop(proc, 5.0)
        _stop(service)
        for fh in logs:
            fh.close()
        if cleanup is not None:
            cleanup.cleanup()


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


def _cpu_seconds(proc: subprocess.Popen) -> float | None:
    """User + system CPU seconds a child has used so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _scaled(done: list[dict[str, Any]], key: str, k: float) -> dict[str, float | None] | None:
    """The worst shard's quantiles of a wall-second statistic, in scenario seconds."""
    rows = [d[key] for d in done if d.get(key)]
    if not rows:
        return None
    out: dict[str, float | None] = {}
    for q in ("p50", "p99"):
        values = [r[q] for r in rows if r.get(q) is not None]
        out[q] = max(values) * k if values else None
    return out


def _done_count(records: Path) -> int:
    return sum(1 for _ in records.glob("done-*.json"))


def _wait_healthy(base_url: str, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    import requests

    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RunFailed(f"the reference service did not start (exit {proc.returncode}):\n" + _tail(log))
        try:
            if requests.get(base_url + "/healthz", timeout=1.0).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RunFailed(f"the reference service did not become healthy within {timeout:.0f}s:\n" + _tail(log))


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
