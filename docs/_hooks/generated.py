"""mkdocs hook: the reference tables that come from the code, filled in at build time.

A page marks where a generated table goes with an HTML comment on its own line:

- ``<!-- generated: http-api -->``: every route of the reference service, from its OpenAPI
  document (:func:`repaychaos.service.openapi.openapi_document`), with parameters, bodies,
  responses and the component schemas;
- ``<!-- generated: result-types -->``: the keys of result.json and its parts, from the
  ``TypedDict`` records of :mod:`repaychaos.core.types`.

So these tables cannot drift from the code: the build reads it every time. The prose around
them is written by hand. An unknown marker fails the build.
"""

from __future__ import annotations

import json
import re
import typing
from typing import Any

MARKER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.M)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in GENERATORS:
            raise ValueError(f"{page.file.src_path}: unknown generated section {name!r}; known: {sorted(GENERATORS)}")
        return GENERATORS[name]()

    return MARKER.sub(fill, markdown)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _schema_text(schema: dict[str, Any]) -> str:
    """A JSON Schema fragment in a few words (a `$ref` by its name)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[`{name}`](#schema-{name.lower()})"
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array" and "items" in schema:
        kind = f"array of {_schema_text(schema['items'])}"
    if kind == "object" and "properties" in schema:
        kind = "object {" + ", ".join(f"`{k}`" for k in schema["properties"]) + "}"
    extra = []
    if "pattern" in schema:
        extra.append(f"pattern `{schema['pattern']}`")
    for key in ("minimum", "maximum", "default"):
        if key in schema:
            extra.append(f"{key} {schema[key]}")
    return f"{kind}" + (f" ({', '.join(extra)})" if extra else "")


def http_api() -> str:
    from repaychaos.service.openapi import openapi_document

    doc = openapi_document()
    out = [f"*Generated from the service's OpenAPI {doc['openapi']} document (served at `/openapi.json`).*", ""]
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            out += [f"### `{method.upper()} {path}`", "", op.get("summary", ""), ""]
            if op.get("description"):
                out += [op["description"], ""]
            params = op.get("parameters", [])
            if params:
                out += ["| parameter | in | required | schema | meaning |", "| --- | --- | --- | --- | --- |"]
                for p in params:
                    out.append(f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'} | "
                               f"{_cell(_schema_text(p.get('schema', {})))} | {_cell(p.get('description', ''))} |")
                out.append("")
            body = op.get("requestBody")
            if body:
                schema = body["content"]["application/json"]["schema"]
                out += ["Request body (`application/json`):", ""]
                out += _properties_table(schema)
            out += ["| status | body | meaning |", "| --- | --- | --- |"]
            for status, resp in op.get("responses", {}).items():
                content = resp.get("content", {})
                body_text = ", ".join(f"{kind}: {_schema_text(c.get('schema', {}))}" for kind, c in content.items())
                headers = resp.get("headers", {})
                meaning = resp.get("description", "")
                if headers:
                    meaning += " (headers: " + ", ".join(f"`{h}`" for h in headers) + ")"
                out.append(f"| {status} | {_cell(body_text) or '—'} | {_cell(meaning)} |")
            out.append("")
    out += ["### Schemas", ""]
    for name, schema in doc.get("components", {}).get("schemas", {}).items():
        out += [f"#### `{name}` {{#schema-{name.lower()}}}", ""]
        if schema.get("description"):
            out += [schema["description"], ""]
        out += _properties_table(schema)
    return "\n".join(out)


def _properties_table(schema: dict[str, Any]) -> list[str]:
    props = schema.get("properties")
    if not props:
        return [_schema_text(schema), ""]
    required = set(schema.get("required", []))
    out = ["| key | required | schema | meaning |", "| --- | --- | --- | --- |"]
    for key, sub in props.items():
        out.append(f"| `{key}` | {'yes' if key in required else 'no'} | {_cell(_schema_text(sub))} | "
                   f"{_cell(sub.get('description', ''))} |")
    return out + [""]


def _type_text(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return " \\| ".join(f"`{json.dumps(a)}`" for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType")):
        return " or ".join(_type_text(a) for a in args)
    if origin is list:
        return f"list of {_type_text(args[0])}" if args else "list"
    if origin is dict:
        return f"mapping of {_type_text(args[0])} to {_type_text(args[1])}" if args else "mapping"
    if tp is type(None):
        return "null"
    if isinstance(tp, type) and typing.is_typeddict(tp):
        return f"[`{tp.__name__}`](#{tp.__name__.lower()})"
    name = getattr(tp, "__name__", str(tp))
    return {"str": "string", "float": "number", "int": "integer", "bool": "boolean", "Any": "any"}.get(name, name)


def result_types() -> str:
    from repaychaos.core import types as t

    out = ["*Generated from the `TypedDict` records of `repaychaos/core/types.py`.*", ""]
    for name in ("ResultRecord", "Metrics", "Interval", "TimeToUsable", "Visibility", "SloRow", "Window"):
        cls = getattr(t, name)
        hints = typing.get_type_hints(cls)
        required = getattr(cls, "__required_keys__", set())
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        out += [f"### `{name}` {{#{name.lower()}}}", "", doc, "",
                "| key | type | always present |", "| --- | --- | --- |"]
        for key, tp in hints.items():
            out.append(f"| `{key}` | {_cell(_type_text(tp))} | {'yes' if key in required else 'no'} |")
        out.append("")
    return "\n".join(out)


GENERATORS = {"http-api": http_api, "result-types": result_types}
