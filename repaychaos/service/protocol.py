"""The HTTP/1.1 connection of the reference service: uvicorn's httptools protocol, bounded.

Before a request reaches the ASGI app (:mod:`repaychaos.service.fastpath`) its request
line and headers are parsed here. This protocol

- bounds the head (request line plus headers) at :data:`MAX_HEAD` bytes: a longer one is
  answered 431 and the connection closed, and the bytes are counted as they arrive, so a
  200 MB header costs the service :data:`MAX_HEAD` plus one read, not 200 MB;
- bounds the time a head may take to arrive (:data:`HEAD_TIMEOUT`): 408 and closed after;
- answers what the parser refuses (a garbage request line, ``Content-Length: abc`` or
  ``-1``, a bad header line) with the same JSON error shape as every other 4xx
  (``{"detail": ...}``) instead of uvicorn's plain-text 400.

What no HTTP server can answer: bytes that never form a request line (the connection is
closed after :data:`HEAD_TIMEOUT` with a 408), and a client that closes first.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["BoundedHttpToolsProtocol", "MAX_HEAD", "HEAD_TIMEOUT", "for_service", "problem_response"]

#: Largest request head accepted (request line and all headers, bytes): 431 beyond.
MAX_HEAD = 16 * 1024
#: Wall seconds a client has to send a whole request head once it began: 408 after.
HEAD_TIMEOUT = 10.0

_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


def problem_response(status: int, detail: str) -> bytes:
    """A complete HTTP/1.1 response with the JSON error body, closing the connection."""
    body = json.dumps({"detail": detail}, separators=(",", ":")).encode()
    return b"".join([b"HTTP/1.1 %d %s\r\n" % (status, _REASONS[status]),
                     b"content-type: application/json\r\n",
                     b"content-length: %d\r\n" % len(body),
                     b"connection: close\r\n\r\n", body])


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the head bounded in size and time (see module docstring).

    ``counted`` (set on a subclass, see :func:`for_service`) is told the status of every
    answer given here, so /metrics counts these too."""

    counted: Callable[[int], None] | None = None
    #: Wall seconds a client has to send a whole request head (:data:`HEAD_TIMEOUT` unless the service sets it).
    head_timeout: float = HEAD_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._head = 0  # bytes received since the current request's head began
        self._in_head = True
        self._head_timer: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:
            self._head += len(data)
            # the exact bound is judged once the head is parsed (on_headers_complete); this one
            # stops reading a head that cannot fit whatever the chunking, before it is buffered
            if self._head > MAX_HEAD + 65_536:
                self._refuse(431, f"request head: larger than {MAX_HEAD // 1024} KiB (request line and headers)")
                return
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, f"malformed HTTP request: {msg.rstrip('.')} (request line, header or Content-Length)")

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        if self._head_timer is None:
            self._start_head_timer()

    def on_headers_complete(self) -> None:
        self._in_head = False
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        self._head = 0
        self._stop_head_timer()
        if size > MAX_HEAD:
            self._refuse(431, f"request head: larger than {MAX_HEAD // 1024} KiB (request line and headers), "
                              f"found {size} bytes")
            return
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # an idle keep-alive connection is uvicorn's keep-alive timeout's; the next request's
        # first byte (on_message_begin) starts its head's clock
        self._in_head = True
        self._head = 0

    def _refuse(self, status: int, detail: str) -> None:
        self._refused = True
        self._stop_head_timer()
        if not self.transport.is_closing():
            self.transport.write(problem_response(status, detail))
            self.transport.close()
            if self.counted is not None:
                self.counted(status)


    def _start_head_timer(self) -> None:
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head:
            self._refuse(408, f"request head: not received within {self.head_timeout:g} s")


def for_service(count: Callable[[int], None], head_timeout: float = HEAD_TIMEOUT) -> type[BoundedHttpToolsProtocol]:
    """The protocol class for one service, counting its answers with ``count(status)`` and giving
    a client ``head_timeout`` wall seconds to send a request head."""
    return type("ServiceHttpProtocol", (BoundedHttpToolsProtocol,),
                {"counted": staticmethod(count), "head_timeout": head_timeout})
