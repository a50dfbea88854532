"""A minimal loopback target that answers at once: the load engine's ceiling without a real service.

A raw ASGI app (no framework): ``POST /repayments`` acknowledges at once (201 with
``{"id": <Idempotency-Key>}``), ``GET /accounts/{account}/status`` always says
``unusable`` (so every user makes all of its checks), anything else is 404. The
bench (bench/bench_target.py) starts it with :func:`start`; by hand:

    .venv/bin/python bench/stub_target.py --port 8001
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Any

__all__ = ["app", "start", "TARGET_YAML"]

_HEADERS = [(b"content-type", b"application/json")]
_STATUS = b'{"status":"unusable"}'

#: The stub described in the target file format ({url} filled in by the bench).
TARGET_YAML = """\
base_url: {url}
max_requests: 100000000
concurrency: 1024
repay:
  path: /repayments
  headers: {{Idempotency-Key: "{{key}}"}}
  json: {{account: "{{account}}", amount: "{{amount}}"}}
  id: /id
status:
  path: /accounts/{{account}}/status
  usable: {{pointer: /status, equals: usable}}
"""


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if scope["method"] == "POST" and path == "/repayments":
        while (await receive()).get("more_body"):
            pass
        key = dict(scope["headers"]).get(b"idempotency-key", b"?")
        body, status = b'{"id":"' + key.replace(b'"', b"") + b'"}', 201
    elif scope["method"] == "GET" and path.startswith("/accounts/") and path.endswith("/status"):
        body, status = _STATUS, 200
    else:
        body, status = b'{"detail":"not found"}', 404
    await send({"type": "http.response.start", "status": status, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": body})


def start(port: int) -> subprocess.Popen[bytes]:
    """The stub in its own process on 127.0.0.1:``port``, ready when this returns."""
    import socket

    proc = subprocess.Popen([sys.executable, __file__, "--port", str(port)])
    end = time.time() + 20
    while time.time() < end:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the stub target did not start")


if __name__ == "__main__":
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:
        loop = "auto"
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, loop=loop,
                http="httptools", lifespan="on")
