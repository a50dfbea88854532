"""SPEC §7 over HTTP: the FastAPI app of the reference service.

Handlers are thin and answer with pre-encoded JSON (no response models): the hot paths
(``POST /repayments`` and the status read) must stay cheap enough for hundreds of
repayments per second on one core.
"""

from __future__ import annotations

import json
import re
from contextlib import asynccontextmanager
from decimal import Decimal, InvalidOperation
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import Response

from repaychaos.loadtests.core import Service
from repaychaos.core.errors import InvalidInput

__all__ = ["create_app"]

_JSON = "application/json"
_ACCOUNT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, separators=(",", ":")).encode(), status_code=status, media_type=_JSON,
                    headers=headers)


def _problem(status: int, detail: Any) -> Response:
    return _json(status, {"detail": detail})


def _parse_repayment(raw: bytes) -> tuple[str, str] | str:
    """``(account, amount)`` from a request body, or what is wrong with it."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return "body: expected a JSON object"
    if not isinstance(data, dict):
        return "body: expected a JSON object"
    account, amount = data.get("account"), data.get("amount")
    if not isinstance(account, str) or not _ACCOUNT.match(account):
        return "account: expected a string of 1-128 letters, digits or _.:- (e.g. \"a-17\")"
    if isinstance(amount, bool) or not isinstance(amount, (str, int, float)):
        return "amount: expected a decimal string such as \"120.50\""
    try:
        value = Decimal(str(amount))
    except InvalidOperation:
        return "amount: expected a decimal string such as \"120.50\""
    if not value.is_finite() or value <= 0 or value.as_tuple().exponent < -2:
        return "amount: expected a positive amount with at most 2 decimals"
    extra = set(data) - {"account", "amount"}
    if extra:
        return f"body: unexpected key(s) {', '.join(sorted(extra))}"
    return account, str(amount)


def create_app(service: Service) -> FastAPI:
    """The ASGI app around ``service``; the lifespan starts and stops it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="repaychaos reference service", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    count = service.m_requests

    @app.post("/repayments")
    async def post_repayment(request: Request) -> Response:
        key = request.headers.get("idempotency-key")
        parsed = _parse_repayment(await request.body())
        if not key or len(key) > 200:
            count.labels("/repayments", "422").inc()
            return _problem(422, "header Idempotency-Key: required (1-200 characters)")
        if isinstance(parsed, str):
            count.labels("/repayments", "422").inc()
            return _problem(422, parsed)
        if not service.accepting:
            count.labels("/repayments", "503").inc()
            return _json(503, {"detail": "the service is starting or stopping"}, {"Retry-After": "1"})
        outcome = await service.repay(key, *parsed)
        count.labels("/repayments", str(outcome.status)).inc()
        return _json(outcome.status, outcome.body, outcome.headers)

    @app.get("/repayments/{rep_id}")
    async def get_repayment(rep_id: str) -> Response:
        body = service.repayment(rep_id)
        count.labels("/repayments/{id}", "200" if body else "404").inc()
        return _json(200, body) if body else _problem(404, f"no repayment {rep_id}")

    @app.get("/accounts/{account}/status")
    async def account_status(account: str) -> Response:
        count.labels("/accounts/{account}/status", "200").inc()
        return _json(200, service.status(account))

    @app.get("/healthz")
    async def healthz() -> Response:
        ok = service.accepting and service.store.failed is None
        clock = service.clock
        return _json(200 if ok else 503, {"ok": ok, "scenario": service.scenario.name, "t0": clock.t0,
                                          "time_scale": clock.time_scale, "now": clock.now(),
                                          "outbox_backlog": len(service.pipeline.inflight),
                                          "unsettled_accounts": len(service.pipeline.unsettled)})

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(service.metrics_text(), media_type="text/plain; version=0.0.4; charset=utf-8")

    def _denied(request: Request) -> Response | None:
        if service.check_token(request.headers.get("authorization")):
            return None
        return _json(401, {"detail": "Authorization: Bearer <token> required (REPAYCHAOS_TOKEN)"},
                     {"WWW-Authenticate": "Bearer"})

    @app.get("/chaos/faults")
    async def list_faults(request: Request) -> Response:
        if (denied := _denied(request)) is not None:
            return denied
        return _json(200, {"now": service.clock.now(), "faults": service.board.listing(service.clock.now())})

    @app.post("/chaos/faults")
    async def add_fault(request: Request) -> Response:
        if (denied := _denied(request)) is not None:
            return denied
        try:
            data = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return _problem(422, "body: expected one fault as a JSON object in scenario syntax")
        try:
            return _json(201, service.add_fault(data))
        except InvalidInput as exc:
            return _problem(422, str(exc))

    @app.delete("/chaos/faults/{fid}")
    async def end_fault(fid: str, request: Request) -> Response:
        if (denied := _denied(request)) is not None:
            return denied
        if not service.board.end(fid, service.clock.now()):
            return _problem(404, f"no fault {fid}")
        return _json(200, {"id": fid, "ended_at": service.clock.now()})

    @app.get("/chaos/trace")
    async def trace(request: Request) -> Response:
        if (denied := _denied(request)) is not None:
            return denied
        await service.store.flush()
        return _json(200, service.trace())

    return app
