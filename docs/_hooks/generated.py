"""mkdocs hook: the reference tables that come from the code, filled in at build time.

A page marks where a generated table goes with an HTML comment on its own line:

- ``<!-- generated: http-api -->``: every route of the reference service, from its OpenAPI
  document (:func:`repaychaos.service.openapi.openapi_document`), with parameters, bodies,
  responses and the component schemas;
- ``<!-- generated: result-types -->``: the keys of result.json and its parts, from the
  ``TypedDict`` records of :mod:`repaychaos.core.types`;
- ``<!-- generated: cli -->``: every command of ``repaychaos`` with its usage, arguments and
  options, from the click definitions in :mod:`repaychaos.cli` (what ``--help`` prints).

So these tables cannot drift from the code: the build reads it every time. The prose around
them is written by hand. An unknown marker fails the build.
"""

from __future__ import annotations

import html
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


ROLE = re.compile(r":(?:func|class|mod|meth|attr|data|exc|obj):(?=<code>)")


def on_page_content(html_text: str, page: Any, config: Any, files: Any) -> str:
    """Docstrings use Sphinx roles (:func:`name`); the Python API page shows just the name."""
    return ROLE.sub("", html_text)


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    """Inline code that may hold ``|`` (a table cell would otherwise split there)."""
    return "<code>" + html.escape(text).replace("\\", "&#92;").replace("|", "&#124;").replace("[", "&#91;").replace("]", "&#93;") + "</code>"


def _schema_text(schema: dict[str, Any]) -> str:
    """A JSON Schema fragment in a few words (a `$ref` by its name)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[`{name}`](#schema-{name.lower()})"
    if "enum" in schema:
        return " or ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array" and "items" in schema:
        kind = f"array of {_schema_text(schema['items'])}"
    if kind == "object" and "properties" in schema:
        kind = "object {" + ", ".join(f"`{k}`" for k in schema["properties"]) + "}"
    extra = []
    if "pattern" in schema:
        extra.append(f"pattern {_code(schema['pattern'])}")
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
        return " or ".join(f"`{json.dumps(a)}`" for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType")):
        return " or ".join(_type_text(a) for a in args)
    if origin is list:
        return f"list[{_type_text(args[0])}]" if args else "list"
    if origin is dict:
        return f"mapping {_type_text(args[0])} → {_type_text(args[1])}" if args else "mapping"
    if tp is type(None):
        return "null"
    if isinstance(tp, type) and typing.is_typeddict(tp):
        return f"[`{tp.__name__}`](#{tp.__name__.lower()})"
    name = getattr(tp, "__name__", str(tp))
    return {"str": "string", "float": "number", "int": "integer", "bool": "boolean", "Any": "any"}.get(name, name)


def result_types() -> str:
    from repaychaos.core import types as t

    out = ["*Generated from the `TypedDict` records of `repaychaos/core/types.py`. \"Required by the type\" "
           "is what a type checker demands of every record; records declared with optional keys (such as "
           "`Metrics`, whose records also describe phases without repayments) may lack them, but a "
           "complete run's result carries every metric of the tables above.*", ""]
    for name in ("ResultRecord", "Metrics", "Interval", "TimeToUsable", "Visibility", "SloRow", "Window"):
        cls = getattr(t, name)
        hints = typing.get_type_hints(cls)
        required = getattr(cls, "__required_keys__", set())
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        out += [f"### `{name}` {{#{name.lower()}}}", "", doc, "",
                "| key | type | required by the type |", "| --- | --- | --- |"]
        for key, tp in hints.items():
            out.append(f"| `{key}` | {_cell(_type_text(tp))} | {'yes' if key in required else 'no'} |")
        out.append("")
    return "\n".join(out)


def _default_text(param: Any, ctx: Any) -> str:
    try:
        value = param.get_default(ctx, call=False)
    except Exception:  # a default that cannot be computed here is not worth failing the build for
        return ""
    if value is None or callable(value) or "UNSET" in repr(value) or value in ((), []):
        return ""
    if getattr(param, "is_flag", False) and value is False and not getattr(param, "secondary_opts", None):
        return ""
    if isinstance(value, bool) and getattr(param, "secondary_opts", None):
        return _code(param.opts[0] if value else param.secondary_opts[0])
    return _code(str(value))


def _param_rows(command: Any, ctx: Any) -> list[str]:
    import click

    rows = []
    for param in command.get_params(ctx):
        if param.name == "help":
            continue
        if isinstance(param, click.Argument):
            name = _code(param.make_metavar(ctx) if _takes_ctx(param.make_metavar) else param.make_metavar())
            rows.append(f"| {name} | argument | {'yes' if param.required else 'no'} | | |")
            continue
        names = ", ".join(_code(o) for o in param.opts + param.secondary_opts)
        kind = "flag" if getattr(param, "is_flag", False) else _code(param.type.name.upper()
                                                                      if param.metavar is None else param.metavar)
        help_text = _cell(html.escape(param.help or ""))
        rows.append(f"| {names} | {kind} | {'yes' if param.required else 'no'} | {_default_text(param, ctx)} | "
                    f"{help_text} |")
    return rows


def _takes_ctx(method: Any) -> bool:
    import inspect

    return "ctx" in inspect.signature(method).parameters


def cli() -> str:
    import click

    from repaychaos.cli import cli as group

    out = ["*Generated from the command line's click definitions (what `repaychaos COMMAND --help` prints).*", ""]
    root = click.Context(group, info_name="repaychaos")
    for name in group.list_commands(root):
        command = group.get_command(root, name)
        if command is None or command.hidden:
            continue
        ctx = click.Context(command, info_name=name, parent=root)
        usage = "repaychaos " + name + " " + " ".join(command.collect_usage_pieces(ctx))
        help_text = (command.help or "").replace("\b\n", "")
        out += [f"### `repaychaos {name}`", "", "```", usage.strip(), "```", ""]
        paragraphs = [" ".join(line.strip() for line in block.splitlines()) for block in help_text.split("\n\n")]
        out += [html.escape(p) + "\n" for p in paragraphs if p.strip()]
        out += ["| argument or option | takes | required | default | meaning |", "| --- | --- | --- | --- | --- |"]
        out += _param_rows(command, ctx) + [""]
    return "\n".join(out)


GENERATORS = {"http-api": http_api, "result-types": result_types, "cli": cli}
