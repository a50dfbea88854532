"""Run the reference service: ``repaychaos serve`` and ``python -m repaychaos.service.serve``.

uvicorn on one event loop (uvloop and httptools when installed), binding 127.0.0.1
unless told otherwise. The chaos token comes from ``REPAYCHAOS_TOKEN`` or is generated
and printed once. SIGTERM/SIGINT stop it gracefully (queued writes are committed);
SIGKILL loses nothing that was acknowledged.
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from repaychaos.core.errors import InvalidInput, RepaychaosError
from repaychaos.core.timescale import TimeScale

__all__ = ["serve", "build_service", "main"]


def _resolve(scenario: Any) -> Any:
    from repaychaos.service.domain import default_scenario

    if scenario is None:
        return default_scenario()
    if isinstance(scenario, (str, os.PathLike)):
        from repaychaos.scenarios import resolve_scenario

        return resolve_scenario(str(scenario))
    return scenario


def build_service(scenario: Any = None, *, db: str | os.PathLike[str] | None = None,
                  time_scale: "float | str | TimeScale" = 1.0,
                  token: str | None = None, t0: float | None = None, synchronous: str = "FULL",
                  max_backlog: int | None = None) -> Any:
    """The :class:`~repaychaos.service.domain.Service` that :func:`serve` runs (also used by tests)."""
    from repaychaos.service.domain import Service

    if isinstance(time_scale, (int, float)) and not time_scale > 0:
        raise InvalidInput(f"time_scale must be > 0, found {time_scale}")
    time_scale = TimeScale.of(time_scale)
    if max_backlog is not None and max_backlog < 1:
        raise InvalidInput(f"max_backlog must be >= 1, found {max_backlog}")
    scenario = _resolve(scenario)
    if db is None:
        # A throwaway ledger for a throwaway service: removed when the process exits (and on
        # SIGTERM, which serve() turns into a normal exit).
        folder = tempfile.mkdtemp(prefix="repaychaos-")
        atexit.register(shutil.rmtree, folder, True)
        db = Path(folder) / "service.db"
    token = token or os.environ.get("REPAYCHAOS_TOKEN") or None
    return Service(scenario, db=db, time_scale=time_scale, t0=t0, token=token, synchronous=synchronous,
                   max_backlog=max_backlog)


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serve(scenario: Any = None, *, host: str = "127.0.0.1", port: int = 8000, db: str | os.PathLike[str] | None = None,
          time_scale: "float | str | TimeScale" = 1.0, token: str | None = None, t0: float | None = None,
          synchronous: str = "FULL", quiet: bool = False, parent_pid: int | None = None,
          max_backlog: int | None = None, client_timeout: float | None = None) -> None:
    """Serve docs/reference/http-api.md until interrupted (blocks). ``scenario``: a Scenario, a name or path, or None
    (the default pipeline without faults). ``t0``: epoch second of scenario time 0 (default: now,
    or the one stored in ``db`` when restarting on the same file). ``parent_pid``: stop
    gracefully when that process is gone (a load runner killed hard leaves no server behind).
    ``client_timeout``: wall seconds a client has to send a request head, and then its body,
    before a 408 closes the connection (default 10, :data:`repaychaos.service.edge.BODY_TIMEOUT`)."""
    import uvicorn

    from repaychaos.service import edge

    from repaychaos.service.app import create_app
    from repaychaos.service.fastpath import FastPath

    # The writer thread re-takes the GIL after every SQLite step; a short switch interval keeps
    # it from waiting 5 ms each time behind the event loop (the classic convoy).
    sys.setswitchinterval(0.0005)
    generated = not (token or os.environ.get("REPAYCHAOS_TOKEN"))
    if client_timeout is not None and not client_timeout > 0:
        raise InvalidInput(f"client_timeout must be > 0 seconds, found {client_timeout}")
    limit = edge.BODY_TIMEOUT if client_timeout is None else float(client_timeout)
    service = build_service(scenario, db=db, time_scale=time_scale, token=token, t0=t0, synchronous=synchronous,
                            max_backlog=max_backlog)
    if not _is_loopback(host):
        print(f"repaychaos: WARNING: binding {host}, not loopback: POST /repayments, the status reads and the "
              f"chaos API (/chaos/faults, /chaos/trace; anyone with the token can inject faults and read every "
              f"repayment) are reachable from the network", file=sys.stderr, flush=True)
    if generated:
        print(f"repaychaos: chaos token (Authorization: Bearer ...): {service.token}", flush=True)
    if not quiet:
        print(f"repaychaos: serving scenario '{service.scenario.name}' on http://{_hostport(host, port)} "
              f"(db {service.store.path}, time scale {service.clock.scale.text()})", flush=True)
    config = uvicorn.Config(FastPath(create_app(service), service, body_timeout=limit), host=host, port=port,
                            log_level="warning", access_log=False,
                            loop=_pick("uvloop", "auto"), http=_http_protocol(service, limit), lifespan="on",
                            timeout_graceful_shutdown=5)
    server = _server_class()(config)
    if parent_pid:
        threading.Thread(target=_watch_parent, args=(server, parent_pid), daemon=True).start()
    try:
        server.run()
    except OSError as exc:
        raise InvalidInput(f"cannot listen on {_hostport(host, port)}: {exc.strerror or exc}") from None
    if server.started is False and not server.should_exit:
        raise InvalidInput(f"cannot listen on {_hostport(host, port)}")


def _server_class() -> Any:
    import contextlib
    import signal

    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn, except that SIGTERM/SIGINT end it like a normal exit (0, atexit cleanup runs)
        instead of being re-raised after the graceful shutdown (exit 143 and a temp db left behind)."""

        @contextlib.contextmanager
        def capture_signals(self):
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for sig, handler in original.items():
                    signal.signal(sig, handler)

    return Server


def _watch_parent(server: Any, parent_pid: int) -> None:
    while not server.should_exit:
        if os.getppid() != parent_pid:
            server.should_exit = True  # uvicorn checks this flag on its next tick
            return
        time.sleep(0.5)


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _http_protocol(service: Any, head_timeout: float) -> Any:
    """The bounded httptools protocol (:mod:`repaychaos.service.protocol`), its answers counted
    in /metrics under the route ``(http)``; uvicorn's h11 without httptools."""
    try:
        from repaychaos.service.protocol import for_service
    except ImportError:
        return "auto"
    return for_service(lambda status: service.m_requests.labels("(http)", str(status)).inc(), head_timeout)


def _pick(module: str, fallback: str) -> str:
    try:
        __import__(module)
    except ImportError:
        return fallback
    return module


def main(argv: list[str] | None = None) -> int:
    """``python -m repaychaos.service.serve``: what the load runner starts as a subprocess."""
    parser = argparse.ArgumentParser(prog="python -m repaychaos.service.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=None, help="bundled name or path (JSON works: it is YAML)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--db", default=None)
    parser.add_argument("--time-scale", default="1", help="K, or steps of K: K,AT:K,... (scenario seconds)")
    parser.add_argument("--t0", type=float, default=None, help="epoch second of scenario time 0")
    parser.add_argument("--parent-pid", type=int, default=None, help="stop when this process is gone")
    parser.add_argument("--max-backlog", type=int, default=None, help="events held before repayments are shed")
    parser.add_argument("--client-timeout", type=float, default=None,
                        help="seconds a client has to send a request head, then its body (default 10)")
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"],
                        default=os.environ.get("REPAYCHAOS_SQLITE_SYNC", "FULL").upper(),
                        help="SQLite synchronous mode; NORMAL in WAL mode still survives kill -9 (not power loss)")
    args = parser.parse_args(argv)
    try:
        serve(args.scenario, host=args.host, port=args.port, db=args.db, time_scale=args.time_scale, t0=args.t0,
              synchronous=args.synchronous, parent_pid=args.parent_pid, max_backlog=args.max_backlog,
              client_timeout=args.client_timeout)
    except RepaychaosError as exc:
        print(f"repaychaos: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
