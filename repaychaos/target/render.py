"""Placeholders in a target file (``{account}``, ``{env.TOKEN}``, ``{start./id}``) and JSON pointers."""

from __future__ import annotations

import os
import re
from typing import Any, Iterator, Mapping

from repaychaos.core.errors import InvalidInput

__all__ = ["render", "placeholders", "resolve_pointer", "missing_env", "MISSING"]

_PLACE = re.compile(r"\{([^{}\s]+)\}")
MISSING = object()


def resolve_pointer(doc: Any, pointer: str) -> Any:
    """RFC 6901: ``/a/0/b`` into ``doc``; :data:`MISSING` where the path is not there."""
    if pointer == "":
        return doc
    node = doc
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node


def _lookup(name: str, values: Mapping[str, Any], start: Any) -> str:
    if name.startswith("env."):
        value = os.environ.get(name[4:])
        if value is None:
            raise InvalidInput(f"{{{name}}}: environment variable {name[4:]} is not set")
        return value
    if name.startswith("start."):
        found = resolve_pointer(start, name[len("start."):])
        if found is MISSING:
            raise InvalidInput(f"{{{name}}}: the start action's JSON answer has nothing at {name[6:]}")
        return str(found)
    if name not in values:
        raise InvalidInput(f"{{{name}}}: unknown placeholder here (known: " + ", ".join(sorted(values)) + ", env.NAME)")
    return str(values[name])


def render(value: Any, values: Mapping[str, Any], start: Any = None) -> Any:
    """``value`` (str, list, dict, scalar) with every ``{name}`` replaced; unknown names raise InvalidInput."""
    if isinstance(value, str):
        return _PLACE.sub(lambda m: _lookup(m.group(1), values, start), value)
    if isinstance(value, dict):
        return {render(k, values, start): render(v, values, start) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [render(v, values, start) for v in value]
    return value


def placeholders(value: Any) -> Iterator[str]:
    """Every placeholder name in ``value`` (recursively)."""
    if isinstance(value, str):
        yield from _PLACE.findall(value)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from placeholders(k)
            yield from placeholders(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from placeholders(v)


def missing_env(data: Any) -> list[str]:
    """Environment variables ``{env.NAME}`` placeholders in ``data`` need and the process lacks."""
    return sorted({n[4:] for n in placeholders(data) if n.startswith("env.") and n[4:] not in os.environ})
