"""A raw-ASGI fast path for the two hot routes: ``POST /repayments`` and the status read.

The profile of the plain FastAPI app at 300 repayments/s put two thirds of the service's
CPU in routing, dependency solving and middleware — not in the ledger. These two routes
carry nearly all of a load test's requests, so they are answered here directly, with
exactly the same behaviour (:mod:`repaychaos.loadtests.app` holds the reference handlers and the
shared parsing); everything else, including the lifespan, passes through to FastAPI.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from repaychaos.loadtests.app import _ACCOUNT, _parse_repayment
from repaychaos.loadtests.core import Service

__all__ = ["FastPath"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_CT = (b"content-type", b"application/json")
_MAX_BODY = 64 * 1024


class FastPath:
    """ASGI app: the hot routes by hand, the rest by ``app``."""

    def __init__(self, app: Callable[..., Awaitable[None]], service: Service):
        self.app = app
        self.service = service
        self._count = service.m_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method, path = scope["method"], scope["path"]
            if method == "GET" and path.startswith("/accounts/") and path.endswith("/status"):
                account = path[10:-7]
                if _ACCOUNT.match(account):
                    self._count.labels("/accounts/{account}/status", "200").inc()
                    await _reply(send, 200, self.service.status(account))
                    return
            elif method == "POST" and path == "/repayments":
                await self._repay(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _repay(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = None
        for name, value in scope["headers"]:
            if name == b"idempotency-key":
                key = value.decode("latin-1")
                break
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > _MAX_BODY:
                await self._answer(send, 413, {"detail": "body: larger than 64 KiB"})
                return
            if not message.get("more_body"):
                break
        parsed = _parse_repayment(body)
        if not key or len(key) > 200:
            await self._answer(send, 422, {"detail": "header Idempotency-Key: required (1-200 characters)"})
            return
        if isinstance(parsed, str):
            await self._answer(send, 422, {"detail": parsed})
            return
        if not self.service.accepting:
            await self._answer(send, 503, {"detail": "the service is starting or stopping"}, {"Retry-After": "1"})
            return
        outcome = await self.service.repay(key, *parsed)
        await self._answer(send, outcome.status, outcome.body, outcome.headers)

    async def _answer(self, send: Send, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self._count.labels("/repayments", str(status)).inc()
        await _reply(send, status, body, headers)


async def _reply(send: Send, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body, separators=(",", ":")).encode()
    raw = [_CT, (b"content-length", str(len(data)).encode())]
    if headers:
        raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})
