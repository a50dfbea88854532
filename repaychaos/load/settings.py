"""The settings the load runner hands to its Locust processes, in one place.

Locust processes are separate programs (gevent must not touch the runner), so settings
travel as ``REPAYCHAOS_*`` environment variables. :class:`LocustSettings` is the one
definition of them: the runner builds one and calls :meth:`LocustSettings.to_env`; the
locustfile calls :meth:`LocustSettings.from_env`. Every variable is optional, so
``locust -f loadtests/locustfile.py`` works with none of them set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any, Mapping

from repaychaos.core.errors import InvalidInput
from repaychaos.core.timescale import TimeScale

__all__ = ["LocustSettings"]

_PREFIX = "REPAYCHAOS_"


@dataclass(frozen=True)
class LocustSettings:
    """What the Locust users need to know beyond ``--host``.

    Each field is read from ``REPAYCHAOS_<FIELD NAME IN CAPITALS>``.
    """

    #: bundled scenario name, path, or the scenario itself as JSON (starting with '{')
    scenario: str = "nightly-maintenance"
    #: K, scenario seconds per wall second (None: the service's)
    time_scale: float | None = None
    #: K in steps of scenario time, ``K,AT:K,...`` (repaychaos.core.timescale); overrides time_scale
    time_scales: str | None = None
    #: epoch second of scenario time 0 (None: the service's, or now when it is past the scenario)
    t0: float | None = None
    #: folder for JSON-lines records of every user (None: no records)
    record: str | None = None
    #: arrival users in total, e.g. one per Locust worker
    shards: int = 1
    #: stop Locust once every user is done (local runner only)
    quit_when_done: bool = False
    #: epoch second after which no user retries any more (None: never)
    deadline: float | None = None
    #: names this run's idempotency keys and accounts (None: a random one)
    run_id: str | None = None
    #: stop when this process (the load runner) is gone
    parent_pid: int | None = None
    #: allow a non-loopback --host
    allow_remote: bool = False
    #: the service's description in the target file format: a JSON file, or the JSON itself
    #: (starting with '{'); None: the reference service's built-in one (repaychaos.target.reference)
    api: str | None = None
    #: requests one shard may send (its share of the target file's max_requests; None: no cap)
    max_requests: int | None = None

    def to_env(self) -> dict[str, str]:
        """The environment variables that say these settings (unset fields are left out)."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None:
                continue
            name = _PREFIX + f.name.upper()
            if isinstance(value, bool):
                out[name] = "1" if value else "0"
            elif isinstance(value, float):
                out[name] = repr(value)
            else:
                out[name] = str(value)
        return out

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "LocustSettings":
        """The settings in ``environ`` (default: this process's); a malformed value is an InvalidInput."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = _PREFIX + f.name.upper()
            raw = environ.get(name)
            if raw is None or raw == "":
                continue
            kind = str(f.type)
            try:
                if kind.startswith("bool"):
                    if raw not in ("0", "1"):
                        raise ValueError
                    values[f.name] = raw == "1"
                elif kind.startswith("float"):
                    values[f.name] = float(raw)
                elif kind.startswith("int"):
                    values[f.name] = int(raw)
                else:
                    values[f.name] = raw
            except ValueError:
                expected = {"b": "0 or 1", "f": "a number", "i": "an integer"}[kind[0]]
                raise InvalidInput(f"{name}: expected {expected}, found {raw!r}") from None
        settings = cls(**values)
        if settings.shards < 1:
            raise InvalidInput(f"{_PREFIX}SHARDS: expected at least 1, found {settings.shards}")
        if settings.time_scale is not None and settings.time_scale <= 0:
            raise InvalidInput(f"{_PREFIX}TIME_SCALE: expected > 0, found {settings.time_scale}")
        if settings.time_scales is not None:
            try:
                TimeScale.parse(settings.time_scales)
            except InvalidInput as exc:
                raise InvalidInput(f"{_PREFIX}TIME_SCALES: {exc}") from None
        return settings
