"""Where load may go: loopback always, anything else only when the user says so (both live engines)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from repaychaos.core.errors import InvalidInput, UnsafeTarget

__all__ = ["check_target"]


def check_target(host: str, allow_remote: bool, what: str = "--host") -> str:
    """The base URL for ``host``; non-loopback targets need ``allow_remote`` (else UnsafeTarget).

    ``what`` names the setting in messages (``--host``, a target file's ``base_url``)."""
    url = host if "://" in host else f"http://{host}"
    parts = urlsplit(url)
    name = parts.hostname
    if parts.scheme not in ("http", "https") or not name:
        raise InvalidInput(f"{what}: expected a URL such as http://127.0.0.1:8000, found '{host}'")
    loopback = name == "localhost"
    try:
        loopback = loopback or ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    if not loopback and not allow_remote:
        raise UnsafeTarget(f"{what} {host} is not a loopback address; load goes there only with --allow-remote")
    return url.rstrip("/")
