"""Start and stop the reference service as a subprocess on a free loopback port.

The one launcher: ``repaychaos load`` starts its service with it, and so do the tests
and benches. A subprocess, not a thread, so the service's event loop and SQLite writer
never share the caller's interpreter (and Locust's gevent patching never reaches it).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import requests

from repaychaos.core.errors import RunFailed
from repaychaos.core.timescale import TimeScale
from repaychaos.scenarios import Scenario

__all__ = ["ServiceProcess", "free_port", "stop_process", "cpu_seconds"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen[Any] | None, timeout: float = 15.0) -> int | None:
    """SIGTERM, then SIGKILL after ``timeout``; the exit code (None for no process)."""
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


def cpu_seconds(proc: subprocess.Popen[Any]) -> float | None:
    """User + system CPU seconds a child has used so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


@dataclass
class ServiceProcess:
    """``python -m repaychaos.service.serve`` on ``db``; a context manager, or call start/kill/stop.

    ``t0``: epoch second of scenario time 0 (default: when the service starts).
    ``max_backlog``: outbox events beyond which repayments are shed with 503 (default: the service's).
    ``client_timeout``: seconds a client has to send a request head, then its body (default: the service's).
    ``watch_parent``: the service stops by itself when this process is gone.
    """

    scenario: Scenario
    db: Path
    time_scale: float | TimeScale = 1.0
    token: str = "test-token"
    t0: float | None = None
    max_backlog: int | None = None
    client_timeout: float | None = None
    port: int = field(default_factory=free_port)
    log: Path | None = None
    watch_parent: bool = True
    proc: subprocess.Popen[Any] | None = None
    _log_file: IO[str] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log if self.log is not None else Path(self.db).with_suffix(".log")

    def start(self, timeout: float = 30.0) -> "ServiceProcess":
        """Start the service and wait until /healthz answers 200 (RunFailed with its log's tail if not)."""
        path = Path(self.db).with_suffix(".scenario.json")
        path.write_text(json.dumps(self.scenario.normalised()), encoding="utf-8")
        cmd = [sys.executable, "-m", "repaychaos.service.serve", "--scenario", str(path), "--port", str(self.port),
               "--db", str(self.db), "--time-scale", TimeScale.of(self.time_scale).text()]
        if self.watch_parent:
            cmd += ["--parent-pid", str(os.getpid())]
        if self.t0 is not None:
            cmd += ["--t0", repr(self.t0)]
        if self.max_backlog is not None:
            cmd += ["--max-backlog", str(self.max_backlog)]
        if self.client_timeout is not None:
            cmd += ["--client-timeout", repr(self.client_timeout)]
        self._log_file = open(self.log_path, "a")
        self.proc = subprocess.Popen(cmd, stdout=self._log_file, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, REPAYCHAOS_TOKEN=self.token), start_new_session=True)
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RunFailed(f"the reference service did not start (exit {self.proc.returncode}):\n"
                                + self.log_tail())
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.kill()
        raise RunFailed(f"the reference service did not become healthy within {timeout:.0f}s:\n" + self.log_tail())

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_text().splitlines()[-lines:])
        except OSError:
            return ""

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cpu_seconds(self) -> float | None:
        return None if self.proc is None else cpu_seconds(self.proc)

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> int | None:
        """SIGTERM and wait: the graceful path. The exit code."""
        code = stop_process(self.proc)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return code

    def __enter__(self) -> "ServiceProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
