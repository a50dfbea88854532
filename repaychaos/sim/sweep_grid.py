"""What a sweep runs: ``--vary`` and ``--search`` options parsed, expanded and validated.

Nothing here runs the model. Every grid point (and both ends of a search) is built into a
validated :class:`~chaos_scenarios.Scenario` before anything runs, so a typo in the tenth
value is refused in a second, not after an hour of the first nine.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Sequence

import yaml

from repaychaos.scenarios import Scenario, with_overrides
from repaychaos.scenarios.loader import format_key_path, parse_key_path
from repaychaos.scenarios.units import parse_duration, parse_rate, parse_ratio
from repaychaos.core.errors import InvalidOption, InvalidScenario

__all__ = [
    "Vary",
    "Search",
    "Point",
    "parse_value",
    "split_values",
    "parse_vary",
    "parse_search",
    "expand_grid",
    "build_point",
    "setting_at",
]

_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class Vary:
    """One ``--vary KEY=V1,V2,...``: the key path as written and its typed values."""

    key: str
    values: tuple[Any, ...]
    raw: tuple[str, ...]


@dataclass(frozen=True)
class Search:
    """One ``--search KEY=LOW..HIGH``: bisect a numeric key between two bounds.

    ``low``/``high`` are in the scenario's base unit (seconds, per second, a share);
    ``integer`` bisects to neighbouring integers, otherwise to ``tolerance`` relative width.
    """

    key: str
    low: float
    high: float
    integer: bool
    raw: tuple[str, str]
    tolerance: float = 0.01


@dataclass(frozen=True)
class Point:
    """One grid point: the varied values (as typed by the user) and its validated scenario."""

    index: int
    values: dict[str, Any]
    scenario: Scenario

    def label(self) -> str:
        return ", ".join(f"{k}={_show(v)}" for k, v in self.values.items()) or "base scenario"


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def parse_value(text: str) -> Any:
    """Type one value the way a scenario file would, minus YAML 1.1 surprises.

    ``4`` -> 4, ``0.5`` -> 0.5, ``true`` -> True, ``null`` -> None, ``{dist: exponential,
    mean: 1s}`` -> a mapping; everything else (``10/s``, ``1h30m``, ``off``,
    ``unlimited``, ``5%``) stays a string for the scenario's own parsers. Unlike
    ``yaml.safe_load``, ``1:30`` is not 90 and ``off`` is not False.
    """
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text[:1] in "{[":
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or "not valid YAML"
            raise ValueError(f"a YAML flow value, {problem} in {text!r}") from None
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "~"):
        return None
    return text


def split_values(text: str) -> list[str]:
    """Split ``V1,V2,...`` on commas outside brackets and quotes."""
    parts: list[str] = []
    depth = 0
    quote = ""
    current = ""
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "{[":
            depth += 1
        elif ch in "}]":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += ch
    parts.append(current)
    if depth != 0 or quote:
        raise ValueError("balanced brackets and quotes")
    return parts


def _key(option: str, spec: str, key: str) -> str:
    key = key.strip()
    try:
        path = parse_key_path(key)
    except ValueError as exc:
        raise InvalidOption(f"{option} {spec!r}: expected {exc}") from None
    return format_key_path(path)


def parse_vary(spec: str) -> Vary:
    """``pipeline.sync.workers=4,8,16`` -> :class:`Vary`; :class:`InvalidOption` names what is wrong."""
    key, eq, values = spec.partition("=")
    if not eq or not key.strip():
        raise InvalidOption(f"--vary {spec!r}: expected KEY=V1,V2,... such as pipeline.sync.workers=4,8,16")
    key = _key("--vary", spec, key)
    try:
        raw = [v.strip() for v in split_values(values)]
    except ValueError as exc:
        raise InvalidOption(f"--vary {key}: expected {exc} in {values!r}") from None
    if any(not v for v in raw):
        raise InvalidOption(f"--vary {key}: expected a comma-separated list of values, found an empty value in {values!r}")
    seen: set[str] = set()
    for v in raw:
        if v in seen:
            raise InvalidOption(f"--vary {key}: value {v!r} is listed twice")
        seen.add(v)
    typed = []
    for v in raw:
        try:
            typed.append(parse_value(v))
        except ValueError as exc:
            raise InvalidOption(f"--vary {key}={v}: expected {exc}") from None
    return Vary(key=key, values=tuple(typed), raw=tuple(raw))


def _number(text: str) -> tuple[float, bool]:
    """A search bound in base units, and whether it was written as a plain integer."""
    text = text.strip()
    if _INT.match(text):
        return float(int(text)), True
    if _FLOAT.match(text):
        return float(text), False
    for parse in (parse_rate, parse_ratio, parse_duration):
        if parse is parse_rate and "/" not in text:
            continue
        if parse is parse_ratio and not text.endswith("%"):
            continue
        try:
            return parse(text), False
        except ValueError:
            break
    raise ValueError(f"a number, rate (20/s), duration (30s) or percentage (5%), found {text!r}")


def parse_search(spec: str, tolerance: float = 0.01) -> Search:
    """``pipeline.sync.workers=1..64`` or ``workload.arrivals.rate=5/s..200/s`` -> :class:`Search`."""
    key, eq, bounds = spec.partition("=")
    low_text, dots, high_text = bounds.partition("..")
    if not eq or not key.strip() or not dots or not low_text.strip() or not high_text.strip():
        raise InvalidOption(
            f"--search {spec!r}: expected KEY=LOW..HIGH such as pipeline.sync.workers=1..64 or workload.arrivals.rate=5/s..200/s"
        )
    key = _key("--search", spec, key)
    try:
        low, low_int = _number(low_text)
        high, high_int = _number(high_text)
    except ValueError as exc:
        raise InvalidOption(f"--search {key}: expected {exc}") from None
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise InvalidOption(f"--search {key}: expected LOW < HIGH, found {low_text.strip()}..{high_text.strip()}")
    integer = low_int and high_int
    if integer:
        low, high = int(low), int(high)
    return Search(key=key, low=low, high=high, integer=integer,
                  raw=(low_text.strip(), high_text.strip()), tolerance=tolerance)


def _problems(exc: InvalidScenario) -> str:
    parts = []
    for p in exc.problems:
        text = (f"{p.path}: " if p.path else "") + f"expected {p.expected}"
        if p.found is not None:
            text += f", found {p.found}"
        if p.hint:
            text += f" ({p.hint})"
        parts.append(text)
    return "; ".join(parts)


def build_point(base: Scenario, overrides: dict[str, Any], *, option: str = "--vary") -> Scenario:
    """``base`` with ``overrides`` applied and validated, or :class:`InvalidOption` naming them."""
    try:
        return with_overrides(base, overrides)
    except InvalidScenario as exc:
        named = ", ".join(f"{k}={_show(v)}" for k, v in overrides.items())
        raise InvalidOption(f"{option} {named}: {_problems(exc)}") from None


def expand_grid(base: Scenario, varies: Sequence[Vary]) -> list[Point]:
    """Every combination of the varied values, first ``--vary`` outermost, all validated.

    Each value is first tried alone (so a bad value is named by itself), then each
    combination (values can be valid alone and clash together, e.g. warmup and duration).
    """
    keys = [v.key for v in varies]
    dupes = {k for k in keys if keys.count(k) > 1}
    if dupes:
        raise InvalidOption(f"--vary {sorted(dupes)[0]}: the same key is given twice; list all its values in one --vary")
    for vary in varies:
        for value in vary.values:
            build_point(base, {vary.key: value})
    points = []
    for index, combo in enumerate(itertools.product(*(v.values for v in varies))):
        overrides = dict(zip(keys, combo))
        scenario = build_point(base, overrides) if overrides else base
        points.append(Point(index=index, values=overrides, scenario=scenario))
    return points


def setting_at(scenario: Scenario, key: str) -> Any:
    """The normalised value at a key path (``workload.arrivals.rate`` -> 20.0 per second)."""
    node: Any = scenario.normalised()
    for part in parse_key_path(key):
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return None
    return node
