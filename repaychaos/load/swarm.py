"""The Locust processes of a load run, live or black-box: start them, wait for their users, read their markers.

Locust runs as subprocesses (gevent's monkey-patching never touches the runner): one
local runner, or a master with N local workers (``--locust-workers N``), each worker
running a shard of the arrivals; the users' records come back to the master as Locust
messages and land in the run's ``records`` folder. Remote workers join the same way
(docs: ``locust --worker --master-host``), see :func:`worker_command`.
"""

from __future__ import annotations

import json
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
           "write_api"]

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


def worker_command(master_host: str, master_port: int) -> list[str]:
    """The command line of one Locust worker (run it with the master's REPAYCHAOS_* environment)."""
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker", "--master-host", master_host,
            "--master-port", str(master_port), "--loglevel", "WARNING"]


def start_locust(settings: LocustSettings, host: str, workers: int, deadline: float,
                 log: Any) -> list[subprocess.Popen[Any]]:
    """Locust headless: one local runner, or a master with ``workers`` local workers (the master first)."""
    env = dict(os.environ, **settings.to_env())
    run_time = max(5, math.ceil(deadline - time.time()))
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", str(settings.shards), "-r",
           str(settings.shards), "--host", host, "--run-time", f"{run_time}s", "--only-summary",
           "--stop-timeout", "5", "--exit-code-on-error", "0", "--loglevel", "WARNING"]
    popen: dict[str, Any] = dict(stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    if not workers:
        return [subprocess.Popen(cmd, **popen)]
    mport = free_port()
    procs = [subprocess.Popen(cmd + ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(mport),
                                     "--expect-workers", str(workers)], **popen)]
    for _ in range(workers):
        procs.append(subprocess.Popen(worker_command("127.0.0.1", mport), **popen))
    return procs


def done_count(records: Path) -> int:
    """Shards whose end-of-run marker has arrived."""
    return sum(1 for _ in records.glob("done-*.json"))


def wait_for_shards(shards: int, locusts: list[subprocess.Popen[Any]], records: Path, deadline: float,
                    tick: Callable[[], bool] | None = None, poll: float = 0.5) -> bool:
    """Until every shard's users are done (True), Locust stops, ``tick`` says stop, or the deadline passes."""
    while time.time() < deadline:
        if tick is not None and not tick():
            return False
        if done_count(records) >= shards:
            return True
        if locusts[0].poll() is not None:
            return done_count(records) >= shards
        time.sleep(min(poll, max(0.0, deadline - time.time())))
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
        "requests": sum(int(d.get("requests", 0)) for d in done),
        "request_cap_hit": any(d.get("request_cap_hit") for d in done),
        "request_lateness_s": {kind: h.summary(k) for kind, h in sorted(merged.items())},
        "lead_wall_s": lead,
        "arrivals_late": merged.get("repay", Lateness()),
        "read_server_lateness_s": server.summary(k) if server.n else None,
    }


def write_api(path: Path, api: Any) -> str:
    """The service's description as the JSON file the Locust users read (REPAYCHAOS_API)."""
    path.write_text(json.dumps(api.model_dump(mode="json", by_alias=True)), encoding="utf-8")
    return str(path)
