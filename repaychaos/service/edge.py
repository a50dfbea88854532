"""Validation at the edge of the reference service: what a request may be, stated once.

Everything here answers "is this input acceptable, and if not, what exactly is wrong"
before any of it reaches the ledger: the routes and their methods, the JSON content type,
a size- and depth-bounded JSON parse, the account pattern and the amount format. Both the
raw-ASGI front (:mod:`repaychaos.service.fastpath`) and the FastAPI handlers
(:mod:`repaychaos.service.app`) call these functions, so the two cannot drift.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

__all__ = [
    "ACCOUNT_PATTERN", "AMOUNT_PATTERN", "AS_OF_PATTERN", "BODY_TIMEOUT", "MAX_AMOUNT", "MAX_BODY", "MAX_DEPTH", "MAX_KEY",
    "ROUTES", "account_ok", "key_ok", "is_json_content_type", "parse_as_of", "parse_status_query", "parse_json", "parse_repayment",
    "route_of",
]

#: Largest request body accepted (bytes): 413 beyond.
MAX_BODY = 64 * 1024
#: Wall seconds a client has to send the whole body once the headers are in: 408 after.
BODY_TIMEOUT = 10.0
#: Deepest nesting of arrays/objects accepted in a JSON body.
MAX_DEPTH = 32
#: Longest Idempotency-Key accepted (1-200 visible ASCII characters).
MAX_KEY = 200
_KEY = re.compile(r"[!-~]{1,%d}\Z" % MAX_KEY)
#: Largest amount accepted (a plain decimal with at most 2 places, greater than 0).
MAX_AMOUNT = Decimal("999999999.99")

#: An account id: 1-128 characters, the whole string (``\Z``: no trailing newline slips through).
ACCOUNT_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}"
#: A plain decimal > 0: no sign, no exponent, no leading zeros, at most 2 places, at most 9 integer digits.
AMOUNT_PATTERN = r"([1-9][0-9]{0,8}(\.[0-9]{1,2})?|0\.(0[1-9]|[1-9][0-9]?))"
_ACCOUNT = re.compile(ACCOUNT_PATTERN + r"\Z")
_AMOUNT = re.compile(AMOUNT_PATTERN + r"\Z")

#: Every route: (path regex, route label used in metrics, allowed methods).
ROUTES: tuple[tuple[re.Pattern[str], str, tuple[str, ...]], ...] = tuple(
    (re.compile(regex + r"\Z"), label, methods) for regex, label, methods in (
        (r"/repayments", "/repayments", ("POST",)),
        (r"/repayments/[^/]+", "/repayments/{id}", ("GET",)),
        (r"/accounts/[^/]*/status", "/accounts/{account}/status", ("GET",)),
        (r"/healthz", "/healthz", ("GET",)),
        (r"/metrics", "/metrics", ("GET",)),
        (r"/openapi.json", "/openapi.json", ("GET",)),
        (r"/chaos/faults", "/chaos/faults", ("GET", "POST")),
        (r"/chaos/faults/[^/]+", "/chaos/faults/{id}", ("DELETE",)),
        (r"/chaos/trace", "/chaos/trace", ("GET",)),
    ))


def route_of(path: str) -> tuple[str, tuple[str, ...]] | None:
    """The route label and allowed methods of ``path``, or None (a 404)."""
    for regex, label, methods in ROUTES:
        if regex.match(path):
            return label, methods
    return None


def key_ok(key: str | None) -> bool:
    return key is not None and _KEY.match(key) is not None


def account_ok(account: Any) -> bool:
    return type(account) is str and _ACCOUNT.match(account) is not None  # a JSON number is not an id


def is_json_content_type(value: bytes | str | None) -> bool:
    """``application/json``, optionally with ``charset=utf-8`` (the only charset JSON may use here)."""
    if value is None:
        return False
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    media, _, params = text.partition(";")
    if media.strip().lower() != "application/json":
        return False
    for param in params.split(";"):
        name, _, val = param.partition("=")
        if name.strip().lower() == "charset" and val.strip().strip('"').lower() not in ("utf-8", "utf8"):
            return False
    return True


class _Number(str):
    """A JSON number kept as the text it was sent as (so ``1e309`` is judged, not rounded to inf)."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class _DuplicateKey(ValueError):
    """A JSON object names one key twice: readers that keep the first or the last value
    would give the body two meanings, so it has none here."""


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return value


def parse_json(raw: bytes) -> tuple[Any, str | None]:
    """``(value, None)`` or ``(None, what is wrong)``; bounded in size and depth, never raises."""
    if len(raw) > MAX_BODY:
        return None, f"body: larger than {MAX_BODY // 1024} KiB"
    try:
        text = raw.decode("utf-8")
        value = json.loads(text, parse_float=_Number, parse_int=_Number, parse_constant=_refuse_constant,
                           object_pairs_hook=_unique_pairs)
    except RecursionError:
        return None, f"body: JSON nested deeper than {MAX_DEPTH} levels"
    except _DuplicateKey as exc:
        return None, f"body: key {str(exc)[:60]!r} given more than once in one object (one meaning per body)"
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"body: expected UTF-8 JSON ({str(exc).splitlines()[0][:120]})"
    if _depth(value) > MAX_DEPTH:
        return None, f"body: JSON nested deeper than {MAX_DEPTH} levels"
    return value, None


#: The ``as_of`` query parameter of a status read: epoch seconds as a plain JSON-style number.
AS_OF_PATTERN = r"-?[0-9]{1,12}(\.[0-9]{1,9})?([eE][+-]?[0-9]{1,3})?"
_AS_OF = re.compile(AS_OF_PATTERN + r"\Z")


def parse_as_of(query: bytes | str) -> tuple[float | None, str | None]:
    """``(instant, None)`` from a status read's query string (``None`` instant: no ``as_of``), or
    ``(None, what is wrong)`` (:func:`parse_status_query`, whose ``repayment`` it drops)."""
    instant, _repayment, problem = parse_status_query(query)
    return instant, problem


def parse_status_query(query: bytes | str) -> tuple[float | None, str | None, str | None]:
    """``(instant, repayment, None)`` from a status read's query string (``None``: not given),
    or ``(None, None, what is wrong)``: ``as_of`` and ``repayment`` (the id of the repayment
    whose user reads, docs/explanation/semantics.md 14) are the only parameters, each given at
    most once (one meaning per request)."""
    from urllib.parse import parse_qsl

    text = query.decode("latin-1") if isinstance(query, bytes) else query
    if not text:
        return None, None, None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=16)
    except ValueError as exc:
        return None, None, f"query: {str(exc)[:120]}"
    extra = sorted({k for k, _ in pairs if k not in ("as_of", "repayment")})
    if extra:
        return None, None, (f"query: unexpected parameter(s) {', '.join(repr(k[:40]) for k in extra[:5])}; "
                            "only as_of and repayment are known")
    repayments = [v for k, v in pairs if k == "repayment"]
    if len(repayments) > 1:
        return None, None, "repayment: given more than once"
    repayment = repayments[0] if repayments and repayments[0] else None
    if repayment is not None and not key_ok(repayment):
        return None, None, f"repayment: expected a repayment id, found {repayment[:40]!r}"
    values = [v for k, v in pairs if k == "as_of"]
    if not values:
        return None, repayment, None
    if len(values) > 1:
        return None, None, "as_of: given more than once"
    if not _AS_OF.match(values[0]):
        return None, None, f"as_of: expected epoch seconds as a number (e.g. 1767225600.25), found {values[0][:40]!r}"
    instant = float(values[0])
    if not math.isfinite(instant):
        return None, None, "as_of: expected a finite number of epoch seconds"
    return instant, repayment, None


def _depth(value: Any) -> int:
    """Nesting depth without recursion (a hostile body cannot exhaust the stack here)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in item)
    return deepest


def to_plain(value: Any) -> Any:
    """Numbers kept as text by :func:`parse_json` back to int/float (for the fault models)."""
    if isinstance(value, _Number):
        return float(value) if any(c in value for c in ".eE") else int(value)
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    return value


def parse_repayment(raw: bytes) -> tuple[str, str] | str:
    """``(account, amount)`` from a request body, or what is wrong with it."""
    data, problem = parse_json(raw)
    if problem is not None:
        return problem
    if not isinstance(data, dict):
        return "body: expected a JSON object {\"account\": ..., \"amount\": ...}"
    extra = set(data) - {"account", "amount"}
    if extra:
        return f"body: unexpected key(s) {', '.join(sorted(repr(k)[:40] for k in extra))}"
    account, amount = data.get("account"), data.get("amount")
    if not account_ok(account):
        return "account: expected a string of 1-128 letters, digits or _.:- starting with a letter or digit (e.g. \"a-17\")"
    if type(amount) is not str or not _AMOUNT.match(amount):  # a JSON number is refused: money is not a float
        return (f"amount: expected a string holding a plain decimal with at most 2 places, no sign or exponent, "
                f"greater than 0 and at most {MAX_AMOUNT} (e.g. \"120.50\")")
    value = Decimal(amount)
    if value <= 0 or value > MAX_AMOUNT:
        return f"amount: expected greater than 0 and at most {MAX_AMOUNT}, found {amount}"
    return str(account), str(amount)
