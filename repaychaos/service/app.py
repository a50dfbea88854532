"""docs/reference/http-api.md over HTTP: the FastAPI app of the reference service.

Handlers are thin and answer with pre-encoded JSON (no response models): the hot paths
(``POST /repayments`` and the status read) must stay cheap enough for hundreds of
repayments per second on one core.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import Response

from repaychaos.core.errors import InvalidInput
from repaychaos.service import edge
from repaychaos.service.domain import Service
from repaychaos.service.fault_board import TooManyFaults
from repaychaos.service.openapi import openapi_document

__all__ = ["create_app"]

_JSON = "application/json"


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(json.dumps(body, separators=(",", ":")).encode(), status_code=status, media_type=_JSON,
                    headers=headers)


def _problem(status: int, detail: Any) -> Response:
    return _json(status, {"detail": detail})


def create_app(service: Service) -> FastAPI:
    """The ASGI app around ``service``; the lifespan starts and stops it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    # Counting, the edge checks and the hot routes are in the raw-ASGI front (fastpath.FastPath);
    # these handlers are the reference behaviour and serve when the app runs without the front.
    app = FastAPI(title="repaychaos reference service", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    document = openapi_document()

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi() -> Response:
        return _json(200, document)

    @app.post("/repayments")
    async def post_repayment(request: Request) -> Response:
        outcome = await service.handle_repayment(request.headers.get("idempotency-key"), await request.body(),
                                                 request.scope.get("query_string", b""))
        return _json(outcome.status, outcome.body, outcome.headers)

    @app.get("/repayments/{rep_id}")
    async def get_repayment(rep_id: str) -> Response:
        body = service.repayment(rep_id)
        return _json(200, body) if body else _problem(404, f"no repayment {rep_id[:200]}")

    @app.get("/accounts/{account}/status")
    async def account_status(account: str, request: Request) -> Response:
        if not edge.account_ok(account):
            return _problem(422, "account: expected 1-128 letters, digits or _.:- starting with a letter or digit")
        instant, repayment, problem = edge.parse_status_query(request.scope.get("query_string", b""))
        if problem is None and instant is not None:
            problem = service.as_of_problem(instant)
        if problem is not None:
            return _problem(422, problem)
        if instant is None:
            return _json(200, service.status(account, repayment))
        return _json(200, await service.status_as_of(account, instant, repayment))

    @app.get("/healthz")
    async def healthz() -> Response:
        health = service.health()
        return _json(503 if health["status"] == "stopping" else 200, health)

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
        data, problem = edge.parse_json(await request.body())
        if problem is not None:
            return _problem(422, problem)
        if not isinstance(data, dict):
            return _problem(422, "body: expected one fault as a JSON object in scenario syntax")
        try:
            return _json(201, service.add_fault(data))
        except TooManyFaults as exc:
            return _problem(429, str(exc))
        except InvalidInput as exc:
            return _problem(422, str(exc))

    @app.delete("/chaos/faults/{fid}")
    async def end_fault(fid: str, request: Request) -> Response:
        if (denied := _denied(request)) is not None:
            return denied
        if not service.board.end(fid, service.clock.now()):
            return _problem(404, f"no fault {fid[:200]}")
        return _json(200, {"id": fid, "ended_at": service.clock.now()})

    @app.get("/chaos/trace")
    async def trace(request: Request) -> Response:
        if (denied := _denied(request)) is not None:
            return denied
        await service.store.flush()
        return _json(200, service.trace())

    return app
