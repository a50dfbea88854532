"""Parsing of the scenario file's units: durations, rates and ratios.

Kept apart from validation so the CLI (``--vary``), the SLO grammar and the loader
all read ``1h30m`` and ``20/s`` the same way.
"""

from __future__ import annotations

import math
import re

__all__ = ["parse_duration", "parse_rate", "parse_ratio", "format_duration"]

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*/\s*(ms|s|sec|min|m|h|d)\s*$")
_RATE_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def _finite_number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def parse_duration(value: object) -> float:
    """Seconds from ``250ms``, ``30s``, ``1h30m``, ``2d`` or a bare number of seconds.

    Raises ``ValueError`` with the expected form on anything else, including negatives.
    """
    number = _finite_number(value)
    if number is None and isinstance(value, str):
        text = "".join(value.split())  # any whitespace between parts, as the JSON Schema allows
        try:
            number = float(text)
        except ValueError:
            parts = _DURATION_PART.findall(text)
            if parts and "".join(n + u for n, u in parts) == text:
                number = sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
    if number is None or not math.isfinite(number) or number < 0:
        raise ValueError("a duration such as 250ms, 30s, 5m, 2h, 1d, 1h30m or seconds >= 0")
    return number


def parse_rate(value: object) -> float:
    """Events per second from ``20/s``, ``1200/min``, ``72000/h`` or a bare number per second."""
    number = _finite_number(value)
    if number is None and isinstance(value, str):
        match = _RATE.match(value)
        if match:
            number = float(match.group(1)) / _RATE_UNIT_SECONDS[match.group(2)]
        else:
            try:
                number = float(value)
            except ValueError:
                number = None
    if number is None or number < 0 or not math.isfinite(number):
        raise ValueError("a rate such as 20/s, 1200/min, 72000/h or a number per second >= 0")
    return number


def parse_ratio(value: object) -> float:
    """A share in [0, 1] from ``0.05`` or ``5%``."""
    number = _finite_number(value)
    if number is None and isinstance(value, str):
        text = value.strip()
        try:
            number = float(text[:-1]) / 100.0 if text.endswith("%") else float(text)
        except ValueError:
            number = None
    if number is None or not 0.0 <= number <= 1.0:
        raise ValueError("a ratio between 0 and 1 (or a percentage such as 5%)")
    return number


def format_duration(seconds: float | None) -> str:
    """The one way a duration is written for people: summaries, reports, plot labels, listings.

    Three significant figures below a minute (``310ms``, ``2.7s``, ``45.2s``), whole
    seconds in compound units from a minute on (``1m40s``, ``1h30m``, ``1d1h``); it parses
    back with :func:`parse_duration`. ``None``/NaN is ``n/a``, infinity ``never``.
    """
    if seconds is None or math.isnan(seconds):
        return "n/a"
    if math.isinf(seconds):
        return "never" if seconds > 0 else "-never"
    if seconds < 0:
        return "-" + format_duration(-seconds)
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:.3g}ms"
    if seconds < 59.95:
        return f"{seconds:.3g}s"
    rest = round(seconds)
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(out)
