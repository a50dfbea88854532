"""What the probes and actions share: HTTP to loopback (or an allowed host), errors as Chaos Toolkit's."""

from typing import Any, NoReturn

import requests

from repaychaos.core.errors import RepaychaosError
from repaychaos.core.safety import check_target

__all__ = ["fail", "request", "base", "token_of"]


def fail(message: str) -> NoReturn:
    """Raise Chaos Toolkit's ActivityFailed (a RuntimeError where chaoslib is not installed)."""
    try:
        from chaoslib.exceptions import ActivityFailed
    except ImportError:  # called outside Chaos Toolkit (a script, a test)
        raise RuntimeError(message) from None
    raise ActivityFailed(message) from None


def base(url: str, allow_remote: bool = False) -> str:
    """``url`` without a trailing slash, refused unless it is loopback or ``allow_remote`` says so."""
    try:
        return check_target(url, allow_remote).rstrip("/")
    except RepaychaosError as exc:
        fail(f"{exc} (pass allow_remote: true to allow it)")


def token_of(secrets: Any) -> str:
    token = (secrets or {}).get("token")
    if not token:
        fail("the reference service's chaos token is needed: add secrets {token: ...} to the activity "
             "(e.g. from the REPAYCHAOS_TOKEN environment variable)")
    return str(token)


def request(method: str, url: str, *, token: str | None = None, json: Any = None, timeout: float = 10.0,
            ok: tuple[int, ...] = (200,)) -> Any:
    """One HTTP request; its JSON answer, or the text of a non-JSON one. ActivityFailed unless the status is ``ok``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        resp = requests.request(method, url, headers=headers, json=json, timeout=timeout)
    except requests.RequestException as exc:
        fail(f"{method} {url}: {type(exc).__name__}: {exc}")
    if resp.status_code not in ok:
        fail(f"{method} {url} answered {resp.status_code}: {resp.text[:300]}")
    try:
        return resp.json()
    except ValueError:
        return resp.text
