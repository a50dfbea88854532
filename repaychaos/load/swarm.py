"""The Locust processes of a load run, live or black-box: start them, wait for their users, read their markers.

Locust runs as subprocesses (gevent's monkey-patching never touches the runner): one
local runner, or a master with N local workers (``--locust-workers N``), each worker
running a shard of the arrivals; the users' records come back to the master as Locust
messages and land in the run's ``records`` folder. Remote workers join the same way
(docs: ``locust --worker --master-host``), see :func:`worker_command`.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from repaychaos.load.launcher import free_port
from repaychaos.load.lateness import Lateness
from repaychaos.load.settings import LocustSettings

__all__ = ["LOCUSTFILE", "start_locust", "wait_for_shards", "done_count", "shard_facts", "worker_command",
           "remote_worker_line",
           "swarm_lead", "check_swarm", "REMOTE_JOIN_SECONDS"]

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


#: Wall seconds remote workers have to join before scenario time 0.
REMOTE_JOIN_SECONDS = 60.0


def swarm_lead(workers: int, remote_workers: int) -> float:
    """Wall seconds from starting Locust to scenario time 0: the processes start and connect."""
    return 4.0 + 1.5 * workers + (REMOTE_JOIN_SECONDS if remote_workers else 0.0)


def check_swarm(remote_workers: int, master_bind: str, allow_remote: bool) -> None:
    """Refuse a swarm the options cannot run (InvalidInput): negative counts, a master listening
    beyond loopback without ``--allow-remote``."""
    from repaychaos.core.errors import InvalidInput
    from repaychaos.core.safety import check_target

    if remote_workers < 0:
        raise InvalidInput(f"--locust-remote-workers must be >= 0, found {remote_workers}")
    check_target(f"http://{master_bind}", allow_remote, "--locust-master-bind")


def worker_command(master_host: str, master_port: int) -> list[str]:
    """The command line of one Locust worker (run it with the master's REPAYCHAOS_* environment)."""
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host", master_host,
            "--master-port", str(master_port), "--loglevel", "WARNING"]


def start_locust(settings: LocustSettings, host: str, workers: int, deadline: float, log: Any,
                 remote_workers: int = 0, master_bind: str = "127.0.0.1") -> list[subprocess.Popen[Any]]:
    """Locust headless: one local runner, or a master with ``workers`` local workers (the master
    first). ``remote_workers``: the master also waits for that many workers from other machines,
    listening on ``master_bind``; the command they run is printed on stderr."""
    env = dict(os.environ, **settings.to_env())
    run_time = max(5, math.ceil(deadline - time.time()))
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(settings.shards), "-r",
           str(settings.shards), "--host", host, "--run-time", f"{run_time}s", "--only-summary",
           "--stop-timeout", "5", "--exit-code-on-error", "0", "--loglevel", "WARNING"]
    popen: dict[str, Any] = dict(stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    if not workers and not remote_workers:
        return [subprocess.Popen(cmd, **popen)]
    mport = free_port()
    procs = [subprocess.Popen(cmd + ["--master", "--master-bind-host", master_bind, "--master-bind-port", str(mport),
                                     "--expect-workers", str(workers + remote_workers)], **popen)]
    for _ in range(workers):
        procs.append(subprocess.Popen(worker_command("127.0.0.1", mport), **popen))
    if remote_workers:
        sys.stderr.write(remote_worker_line(settings, master_bind, mport, remote_workers) + "\n")
        sys.stderr.flush()
    return procs


def remote_worker_line(settings: LocustSettings, master_host: str, master_port: int, count: int) -> str:
    """What to run on each of ``count`` other machines (repaychaos installed there) to join the run."""
    import dataclasses
    import shlex

    inline = dataclasses.replace(settings, record=None, parent_pid=None)
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in inline.to_env().items())
    return (f"load: waiting for {count} remote Locust worker(s); on each machine run:\n  env {env} locust -f "
            f"$(python -c 'import repaychaos.load.locustfile as m; print(m.__file__)') --worker "
            f"--master-host {master_host} --master-port {master_port}")


def done_count(records: Path) -> int:
    """Shards whose end-of-run marker has arrived."""
    return sum(1 for _ in records.glob("done-*.json"))


def wait_for_shards(shards: int, locusts: list[subprocess.Popen[Any]], records: Path, deadline: float,
                    tick: Callable[[], bool] | None = None, poll: float = 0.5,
                    next_at: Callable[[], float | None] | None = None) -> bool:
    """Until every shard's users are done (True), Locust stops, ``tick`` says stop, or the deadline
    passes. ``next_at``: the wall instant ``tick`` next has something to do (woken for it)."""
    while time.time() < deadline:
        if tick is not None and not tick():
            return False
        if done_count(records) >= shards:
            return True
        if locusts[0].poll() is not None:
            return done_count(records) >= shards
        wake = min(time.time() + poll, deadline)
        due = next_at() if next_at is not None else None
        if due is not None:
            wake = min(wake, due)
        time.sleep(max(0.0, wake - time.time()))
    return False


def shard_facts(done: list[dict[str, Any]], k: float) -> dict[str, Any]:
    """What the shards' end-of-run markers add up to: arrivals, requests, the lead they learnt and
    how late each kind of request left (``request_lateness_s``, scenario seconds = wall x K)."""
    kinds: dict[str, list[Lateness]] = {}
    for marker in done:
        for kind, data in (marker.get("lateness") or {}).items():
            kinds.setdefault(kind, []).append(Lateness.from_json(data))
    merged = {kind: Lateness.merged(parts) for kind, parts in kinds.items()}
    server = Lateness.merged(Lateness.from_json(d["read_server_lateness"]) for d in done
                             if d.get("read_server_lateness"))
    lead = {kind: round(max((d.get("lead", {}).get(kind, 0.0) for d in done), default=0.0), 6)
            for kind in merged}
    return {
        "arrivals": sum(int(d.get("arrivals", 0)) for d in done),
        # scenario seconds the latest shard's arrivals began at (past 0: the ones before were never sent)
        "arrivals_began_s": round(max((float(d.get("began_s", 0.0)) for d in done), default=0.0), 4),
        "requests": sum(int(d.get("requests", 0)) for d in done),
        "request_cap_hit": any(d.get("request_cap_hit") for d in done),
        "request_lateness_s": {kind: h.summary(k) for kind, h in sorted(merged.items())},
        "lead_wall_s": lead,
        "arrivals_late": merged.get("repay", Lateness()),
        "read_server_lateness_s": server.summary(k) if server.n else None,
    }
