"""Fault actions: an HTTP request or a command (argv, no shell), with a timeout, recorded.

Start actions run at a fault window's start, stop actions at its end and, like Chaos
Toolkit rollbacks, always on the way out for every window that started (after an
error, Ctrl-C or the wall-clock limit). Each run of an action becomes one row of
``run.actions`` in result.json: fault, start/stop, why, scenario time, status, ok,
output excerpt, duration.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from typing import Any, Callable

from repaychaos.core.errors import RepaychaosError
from repaychaos.target.spec import Action
from repaychaos.target.render import render

__all__ = ["ActionRunner", "ActionOutcome", "EXCERPT"]

#: Characters of an action's output kept in result.json.
EXCERPT = 400


@dataclass
class ActionOutcome:
    ok: bool
    status: int | None
    output: str
    error: str | None
    answer: Any = None  # the JSON answer of an HTTP action (for the stop action's {start./pointer})


class ActionRunner:
    """Runs actions against ``base_url`` and records every run in :attr:`log`."""

    def __init__(self, base_url: str, session: Any, now_s: Callable[[], float]):
        self.base_url = base_url
        self.session = session
        self.now_s = now_s
        self.log: list[dict[str, Any]] = []

    def run(self, action: Action, *, fault: str, phase: str, reason: str, values: dict[str, Any],
            start_answer: Any = None) -> ActionOutcome:
        began_wall, began_s = time.time(), self.now_s()
        try:
            if action.kind == "command":
                outcome = self._command(action, values, start_answer)
            else:
                outcome = self._http(action, values, start_answer)
        except RepaychaosError as exc:  # a placeholder that cannot be filled
            outcome = ActionOutcome(False, None, "", str(exc))
        self.log.append({
            "fault": fault, "action": phase, "reason": reason, "kind": action.kind,
            "at": round(began_s, 4), "wall": round(began_wall, 4), "seconds": round(time.time() - began_wall, 4),
            "status": outcome.status, "ok": outcome.ok, "on_error": action.on_error,
            "output": outcome.output[:EXCERPT], "error": outcome.error,
        })
        return outcome

    def _command(self, action: Action, values: dict[str, Any], start: Any) -> ActionOutcome:
        argv = [str(a) for a in render(list(action.command or ()), values, start)]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=action.timeout, shell=False)
        except subprocess.TimeoutExpired as exc:
            out = (exc.stdout or b"")
            text = out.decode(errors="replace") if isinstance(out, bytes) else str(out)
            return ActionOutcome(False, None, text, f"timed out after {action.timeout:g}s")
        except OSError as exc:
            return ActionOutcome(False, None, "", f"could not run {argv[0]!r}: {exc.strerror or exc}")
        output = (proc.stdout + proc.stderr).strip()
        ok = proc.returncode == 0 if action.ok is None else proc.returncode in action.ok
        return ActionOutcome(ok, proc.returncode, output, None if ok else f"exit status {proc.returncode}")

    def _http(self, action: Action, values: dict[str, Any], start: Any) -> ActionOutcome:
        import requests

        url = render(action.url, values, start) if action.url else self.base_url + render(action.path, values, start)
        headers = render(dict(action.headers), values, start)
        body = render(action.json_body, values, start)
        try:
            resp = self.session.request(action.method or ("POST" if body is not None else "GET"), url,
                                        headers=headers, json=body, timeout=action.timeout)
        except requests.RequestException as exc:
            return ActionOutcome(False, None, "", f"{type(exc).__name__}: {exc}")
        ok = resp.status_code in action.ok if action.ok else 200 <= resp.status_code < 300
        try:
            answer = resp.json()
        except ValueError:
            answer = None
        return ActionOutcome(ok, resp.status_code, resp.text.strip(), None if ok else f"HTTP {resp.status_code}",
                             answer)
