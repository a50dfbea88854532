"""The target file (docs/reference/target-file.md): how to drive someone else's repayment API, black-box.

Every key is defined here once; :mod:`repaychaos.target.loader` turns YAML into a
:class:`Target` with the scenario loader's error quality. Strings may hold placeholders
(:mod:`repaychaos.target.render`): ``{key}``, ``{account}``, ``{amount}``, ``{id}``,
``{env.NAME}``, in the status read ``{read_at}`` (the epoch second, a float, of the
instant the read is meant for, so a service that keeps its view's history can answer
as of that instant), in the repayment ``{repay_at}`` (the epoch second it is made at), and in fault actions ``{fault.name}``, ``{fault.for}``, ``{fault.at}``
and ``{start./json/pointer}`` (the start action's JSON answer, for its stop action).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from repaychaos.scenarios.distributions import Duration

__all__ = ["Target", "RepayRequest", "StatusRequest", "Match", "Lookup", "Action", "FaultActions"]

_METHODS = Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _pointer(value: str) -> str:
    if value != "" and not value.startswith("/"):
        raise ValueError(f"a JSON pointer such as /status (starting with '/'), found {value!r}")
    return value


class _Request(_Frozen):
    method: _METHODS = "GET"
    path: str = Field(pattern=r"^/")
    headers: dict[str, str] = {}
    json_body: Any = Field(None, alias="json")
    timeout: Duration = Field(10.0, gt=0)

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value


class RepayRequest(_Request):
    """The repay request: which statuses acknowledge, which are retried after Retry-After."""

    method: _METHODS = "POST"
    ok: tuple[int, ...] = (200, 201)
    retry: tuple[int, ...] = (429, 503)
    id: str | None = None
    amount: str = "100.00"
    max_tries: int = Field(20, ge=1, le=1000)
    #: JSON pointer to the service's own ack instant (epoch seconds) in the ack; the user then
    #: times its first look from it instead of from when the answer arrived
    acked_at: str | None = None
    #: JSON pointer to the epoch instant a ``retry`` answer names for the retry (sent a little
    #: early, the service waiting for it); without one, Retry-After decides
    retry_at: str | None = None

    _id = field_validator("id", "acked_at", "retry_at")(lambda v: v if v is None else _pointer(v))

    @model_validator(mode="after")
    def _disjoint(self) -> "RepayRequest":
        if set(self.ok) & set(self.retry):
            raise ValueError("'ok' and 'retry' to have no status in common")
        return self


class Match(_Frozen):
    """A JSON pointer into an answer and the value it must equal."""

    pointer: str
    equals: Any

    _p = field_validator("pointer")(lambda v: _pointer(v))


class StatusRequest(_Request):
    """The status read: what counts as usable, and optionally as a legitimate hold."""

    usable: Match
    hold: Match | None = None
    #: JSON pointer to the instant (epoch seconds) the service took the read at; without one the
    #: read's instant is the midpoint of sending it and its answer
    read_at: str | None = None
    #: JSON pointer to the instant (epoch seconds) of the data the read showed
    as_of: str | None = None

    _ptrs = field_validator("read_at", "as_of")(lambda v: v if v is None else _pointer(v))


class Lookup(_Request):
    """Does an acknowledged repayment exist (for lost_repayments)? ``found``: statuses meaning yes."""

    found: tuple[int, ...] = (200,)


class Action(_Frozen):
    """An HTTP request to the target (``method``/``path``) or a command (``command``: argv, no shell)."""

    method: _METHODS | None = None
    path: str | None = Field(None, pattern=r"^/")
    url: str | None = None
    headers: dict[str, str] = {}
    json_body: Any = Field(None, alias="json")
    ok: tuple[int, ...] | None = None
    command: tuple[str, ...] | None = None
    timeout: Duration = Field(30.0, gt=0)
    on_error: Literal["fail", "continue"] = "fail"

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_kind(self) -> "Action":
        http = self.path is not None or self.url is not None
        if http == (self.command is not None):
            raise ValueError("exactly one of 'path' (or 'url') for an HTTP request, or 'command' (argv list)")
        if self.command is not None and not self.command:
            raise ValueError("a non-empty argv list for 'command'")
        if self.command is not None and (self.method or self.headers or self.json_body is not None):
            raise ValueError("no method, headers or json with 'command'")
        return self

    @property
    def kind(self) -> str:
        return "command" if self.command is not None else "http"


class FaultActions(_Frozen):
    """How one scenario fault (by name or ``type#index`` label) is put in and taken out."""

    fault: str
    start: Action | None = None
    stop: Action | None = None

    @model_validator(mode="after")
    def _some(self) -> "FaultActions":
        if self.start is None and self.stop is None:
            raise ValueError("a 'start' or a 'stop' action (or both)")
        return self


class Target(_Frozen):
    """A service the harness did not start: where it is and how to talk to it."""

    version: Literal[1] = 1
    name: str | None = None
    base_url: str
    repay: RepayRequest
    status: StatusRequest
    lookup: Lookup | None = None
    faults: tuple[FaultActions, ...] = ()
    max_requests: int = Field(200_000, ge=1)
    #: HTTP connections per Locust worker (each worker's users share one pool)
    concurrency: int = Field(256, ge=1, le=4096)

    @model_validator(mode="after")
    def _unique(self) -> "Target":
        names = [f.fault for f in self.faults]
        if len(names) != len(set(names)):
            raise ValueError("each fault named once under 'faults'")
        return self
