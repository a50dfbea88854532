"""The raw-ASGI front of the reference service: the edge checks, the two hot routes, the count.

Every HTTP request passes here first. This front

- answers an unknown method on a known path with 405 and the full ``Allow`` list
  (two FastAPI routes on one path would list only the first one's methods);
- reads a request body itself, bounded in size (413) and time (408 and the connection
  closed when the body has not arrived within :data:`~repaychaos.service.edge.BODY_TIMEOUT`),
  and refuses a body that is not ``application/json`` (415), before any handler runs;
- answers the two hot routes, ``POST /repayments`` and the status read, directly: the
  profile of the plain FastAPI app at 300 repayments/s put two thirds of the service's
  CPU in routing, dependency solving and middleware, not in the ledger;
- counts every response by route and status (``repaychaos_requests_total``), whoever
  answered it, 4xx and 5xx included, and turns an exception into a counted JSON 500.

Everything else goes to the FastAPI app (:mod:`repaychaos.service.app`), which holds
the reference handlers and the OpenAPI document; the validation both use is in
:mod:`repaychaos.service.edge`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import traceback
from typing import Any, Awaitable, Callable

from repaychaos.service import edge
from repaychaos.service.domain import Service

__all__ = ["FastPath"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_CT = (b"content-type", b"application/json")
_REPAY = "/repayments"
_STATUS = "/accounts/{account}/status"


class FastPath:
    """ASGI app: edge checks and the hot routes by hand, the rest by ``app``, every answer counted."""

    def __init__(self, app: Callable[..., Awaitable[None]], service: Service, body_timeout: float = edge.BODY_TIMEOUT):
        self.app = app
        self.service = service
        self.body_timeout = body_timeout
        self._count = service.m_requests

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        route = edge.route_of(path)
        label = route[0] if route else "unmatched"
        status = [500]

        async def counted_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        started = False

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = True
            await counted_send(message)

        try:
            if route is None:
                await self.app(scope, receive, guarded_send)
            elif method not in route[1]:
                allow = ", ".join(route[1])
                await _reply(guarded_send, 405, {"detail": f"method {method} not allowed on {label}; allowed: {allow}"},
                             {"Allow": allow})
            elif label.startswith("/chaos/") and not self.service.check_token(_header(scope, b"authorization")):
                await _reply(guarded_send, 401, {"detail": "Authorization: Bearer <token> required (REPAYCHAOS_TOKEN)"},
                             {"WWW-Authenticate": "Bearer"})
            elif label == _STATUS:
                await self._status(path[10:-7], scope.get("query_string", b""), guarded_send)
            elif method == "POST":
                await self._with_body(scope, receive, guarded_send, label)
            else:
                await self.app(scope, receive, guarded_send)
        except Exception:  # a bug must still be a counted JSON answer, and loud in the log
            traceback.print_exc(file=sys.stderr)
            if not started:
                await _reply(counted_send, 500, {"detail": "internal error (logged by the service)"})
        self._count.labels(label, str(status[0])).inc()

    async def _status(self, account: str, query: bytes, send: Send) -> None:
        if not edge.account_ok(account):
            await _reply(send, 422, {"detail": "account: expected 1-128 letters, digits or _.:- starting with a "
                                               "letter or digit"})
            return
        if not query:
            await _reply(send, 200, self.service.status(account))
            return
        instant, repayment, problem = edge.parse_status_query(query)
        if problem is None and instant is not None:
            problem = self.service.as_of_problem(instant)
        if problem is not None:
            await _reply(send, 422, {"detail": problem})
        elif instant is None:
            await _reply(send, 200, self.service.status(account, repayment))
        else:
            await _reply(send, 200, await self.service.status_as_of(account, instant, repayment))

    async def _with_body(self, scope: Scope, receive: Receive, send: Send, label: str) -> None:
        """Content type, then the whole body within the time and size bounds, then the handler."""
        content_type = _header(scope, b"content-type")
        if not edge.is_json_content_type(content_type):
            found = "none" if content_type is None else repr(content_type[:80])
            await _reply(send, 415, {"detail": f"Content-Type: expected application/json, found {found}"})
            return
        body = await self._read_body(receive, send)
        if body is None:
            return
        if label == _REPAY:
            await self._repay(scope, body, send)
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read_body(self, receive: Receive, send: Send) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        deadline = time.monotonic() + self.body_timeout
        while True:
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                await _reply(send, 408, {"detail": f"body: not received within {self.body_timeout:g} s"},
                             {"Connection": "close"})
                return None
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > edge.MAX_BODY:
                await _reply(send, 413, {"detail": f"body: larger than {edge.MAX_BODY // 1024} KiB"},
                             {"Connection": "close"})
                return None
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    async def _repay(self, scope: Scope, body: bytes, send: Send) -> None:
        key = _header(scope, b"idempotency-key")
        outcome = await self.service.handle_repayment(key, body, scope.get("query_string", b""))
        await _reply(send, outcome.status, outcome.body, outcome.headers)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _reply(send: Send, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body, separators=(",", ":")).encode()
    raw = [_CT, (b"content-length", str(len(data)).encode())]
    if headers:
        raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})
