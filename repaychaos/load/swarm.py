"""The Locust processes of a load run, live or black-box: start them, wait for their users, read their markers.

Locust runs as subprocesses (gevent's monkey-patching never touches the runner): one
local runner, or a master with N local workers (``--locust-workers N``), each worker
running a shard of the arrivals; the users' records come back to the master as Locust
messages and land in the run's ``records`` folder. Remote workers join the same way
(docs: ``locust --worker --master-host``), see :func:`worker_command`.

With :class:`WebUI` the master (or the one runner) serves Locust's web UI instead of
running headless, with the staleness plugin loaded (a Staleness tab and a chart,
docs/how-to/locust-web-ui.md); the test starts by itself, ends when the users are done
as a headless one does, and the page closes :data:`WEB_UI_LINGER` seconds later.
"""

from __future__ import annotations

import math
import os
import subprocess
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from repaychaos.load.launcher import free_port, stop_process
from repaychaos.load.lateness import Lateness
from repaychaos.load.settings import LocustSettings

__all__ = ["LOCUSTFILE", "start_locust", "stop_locust", "wait_for_shards", "WebUI", "web_ui", "WEB_UI_PORT",
           "WEB_UI_LINGER", "STALENESS_PLUGIN", "done_count", "shard_facts", "worker_command",
           "remote_worker_line",
           "swarm_lead", "check_swarm", "REMOTE_JOIN_SECONDS"]

LOCUSTFILE = Path(__file__).with_name("locustfile.py")


#: Wall seconds remote workers have to join before scenario time 0.
REMOTE_JOIN_SECONDS = 60.0

#: The Locust plugin that shows a run's staleness (a Staleness tab and chart in the web UI,
#: Prometheus /metrics); the locustfile imports the modules named in REPAYCHAOS_LOCUST_PLUGINS.
STALENESS_PLUGIN = "repaychaos.integrations.locust_plugin"
#: The web UI's default port: Locust's own.
WEB_UI_PORT = 8089
#: Wall seconds the web UI goes on showing the final numbers after the users are done
#: (Locust's ``--autoquit``): at least two of its 2-second refreshes.
WEB_UI_LINGER = 5


@dataclass(frozen=True)
class WebUI:
    """Where a run's Locust web UI listens (see :func:`web_ui`)."""

    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://[{self.host}]:{self.port}" if ":" in self.host else f"http://{self.host}:{self.port}"


def web_ui(port: int = WEB_UI_PORT, host: str = "127.0.0.1", allow_remote: bool = False) -> WebUI:
    """The web UI of a run on ``host:port`` (port 0: a free one), checked before anything starts:
    a host beyond loopback only with ``allow_remote`` (UnsafeTarget); a port that cannot be
    listened on (taken, or an unknown address) is an InvalidInput rather than a failure inside Locust."""
    import ipaddress

    from repaychaos.core.errors import InvalidInput, UnsafeTarget

    if not 0 <= port <= 65535:
        raise InvalidInput(f"--web-port must be 0..65535, found {port}")
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not allow_remote:
        raise UnsafeTarget(f"--web-host {host} is not a loopback address; the web UI listens beyond this machine "
                           "only with --allow-remote")
    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            port = int(sock.getsockname()[1])
    except OSError as exc:
        raise InvalidInput(f"--web-host {host} --web-port {port}: the web UI cannot listen there "
                           f"({exc.strerror or exc}); pass another port, or --web-port 0 for a free one") from None
    return WebUI(host, port)


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
                 remote_workers: int = 0, master_bind: str = "127.0.0.1",
                 web: WebUI | None = None) -> list[subprocess.Popen[Any]]:
    """Locust headless: one local runner, or a master with ``workers`` local workers (the master
    first). ``remote_workers``: the master also waits for that many workers from other machines,
    listening on ``master_bind``; the command they run is printed on stderr. ``web``: the runner
    or master serves the web UI there instead (``--autostart --autoquit``, the same users, run
    time and end), every process loads :data:`STALENESS_PLUGIN`, and the URL is printed."""
    env = dict(os.environ, **settings.to_env())
    run_time = max(5, math.ceil(deadline - time.time()))
    mode = ["--headless"]
    if web is not None:
        mode = ["--autostart", "--autoquit", str(WEB_UI_LINGER), "--web-host", web.host, "--web-port", str(web.port)]
        plugins = [p for p in env.get("REPAYCHAOS_LOCUST_PLUGINS", "").split(",") if p]
        env["REPAYCHAOS_LOCUST_PLUGINS"] = ",".join([*plugins, *([] if STALENESS_PLUGIN in plugins
                                                                 else [STALENESS_PLUGIN])])
        env["REPAYCHAOS_METRICS_SOURCE"] = "target" if settings.api is not None else "load"
    cmd = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *mode, "-u", str(settings.shards), "-r",
           str(settings.shards), "--host", host, "--run-time", f"{run_time}s", "--only-summary",
           "--stop-timeout", "5", "--exit-code-on-error", "0", "--loglevel", "WARNING"]
    popen: dict[str, Any] = dict(stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    if web is not None:
        sys.stderr.write(f"load: Locust web UI at {web.url} while the run goes on (Staleness tab; chart at "
                         f"{web.url}/staleness); it closes {WEB_UI_LINGER} s after the users are done\n")
        sys.stderr.flush()
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


def stop_locust(locusts: list[subprocess.Popen[Any]], web: WebUI | None = None) -> list[int | None]:
    """Stop a run's Locust processes (SIGTERM, then SIGKILL); their exit codes. With the web UI
    the first waits up to :data:`WEB_UI_LINGER` (plus a margin) to close by itself first."""
    if web is not None and locusts and locusts[0].poll() is None:
        try:
            locusts[0].wait(WEB_UI_LINGER + 5.0)
        except subprocess.TimeoutExpired:
            pass
    return [stop_process(p, 20.0) for p in locusts]


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
