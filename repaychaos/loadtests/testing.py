"""Start and stop a reference service subprocess on a free loopback port (tests, benches, demos)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from repaychaos.core.errors import RunFailed

__all__ = ["ServiceProcess", "free_port"]


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServiceProcess:
    """``python -m repaychaos.loadtests.service`` on ``db``; use as a context manager or call start/kill/stop."""

    scenario: Any
    db: Path
    time_scale: float = 1.0
    token: str = "test-token"
    t0: float | None = None
    max_backlog: int | None = None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> "ServiceProcess":
        path = Path(self.db).with_suffix(".scenario.json")
        path.write_text(json.dumps(self.scenario.normalised()), encoding="utf-8")
        cmd = [sys.executable, "-m", "repaychaos.loadtests.service", "--scenario", str(path), "--port", str(self.port),
               "--db", str(self.db), "--time-scale", repr(self.time_scale), "--parent-pid", str(os.getpid())]
        if self.t0 is not None:
            cmd += ["--t0", repr(self.t0)]
        if self.max_backlog is not None:
            cmd += ["--max-backlog", str(self.max_backlog)]
        self._log = open(Path(self.db).with_suffix(".log"), "a")
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, REPAYCHAOS_TOKEN=self.token), start_new_session=True)
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RunFailed(f"service exited with {self.proc.returncode}: {self.log_text()[-2000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        self.kill()
        raise RunFailed("service did not become healthy")

    def log_text(self) -> str:
        return Path(self.db).with_suffix(".log").read_text(errors="replace")

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def kill(self) -> None:
        """SIGKILL: no chance to flush anything."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> int | None:
        """SIGTERM and wait: the graceful path."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> "ServiceProcess":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
