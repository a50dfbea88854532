"""Load a scenario file, or refuse it with every problem named: file, line, key path,
what was expected and what was found.

YAML is composed into nodes first so each key path knows its line; validation is done
by the pydantic models in :mod:`repaychaos.scenarios.spec`; their errors are translated here
into :class:`~repaychaos.core.errors.ScenarioProblem` so nobody downstream sees pydantic.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, Iterable

import yaml
from pydantic import BaseModel, BeforeValidator, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from repaychaos.scenarios.spec import FAULT_TYPES, SLO_METRIC_PATHS, Fault, Scenario, SloRule
from repaychaos.scenarios.distributions import DIST_NAMES
from repaychaos.core.errors import InvalidInput, InvalidScenario, ScenarioProblem

__all__ = [
    "load_scenario",
    "load_scenario_data",
    "load_scenario_text",
    "load_fault_data",
    "resolve_scenario",
    "with_overrides",
    "parse_key_path",
    "format_key_path",
    "load_model_text",
]

PathT = tuple[Any, ...]


# --------------------------------------------------------------------------- key paths


def format_key_path(path: Iterable[Any]) -> str:
    """``('faults', 2, 'drop_ratio')`` -> ``faults[2].drop_ratio``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_key_path(text: str) -> PathT:
    """``faults[0].for`` -> ``('faults', 0, 'for')``; ``ValueError`` if it is not a key path."""
    parts: list[Any] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        if text[pos] == "." and parts:
            pos += 1
        match = _PATH_PART.match(text, pos)
        if not match:
            raise ValueError(f"a key path such as pipeline.sync.workers or faults[0].for, found '{text}'")
        parts.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        pos = match.end()
    if not parts:
        raise ValueError("a key path such as pipeline.sync.workers")
    return tuple(parts)


# --------------------------------------------------------------------------- YAML with lines


class _Lines:
    """Line numbers (1-based) of every key path in a composed YAML document."""

    def __init__(self, root: yaml.Node | None):
        self.lines: dict[PathT, int] = {}
        self.duplicates: list[tuple[PathT, int]] = []
        if root is not None:
            self._walk(root, ())

    def _walk(self, node: yaml.Node, path: PathT) -> None:
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                key = key_node.value
                child = path + (key,)
                if key in seen:
                    self.duplicates.append((child, key_node.start_mark.line + 1))
                seen.add(key)
                self.lines[child] = key_node.start_mark.line + 1
                self._walk(value_node, child)
                self.lines[child] = key_node.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, path + (index,))

    def line(self, path: PathT) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------- pydantic -> problems


def _unwrap(annotation: Any) -> list[Any]:
    """The model classes (or other leaf types) an annotation may hold."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [leaf for arg in typing.get_args(annotation) for leaf in _unwrap(arg)]
    if origin in (tuple, list):
        return [leaf for arg in typing.get_args(annotation) if arg is not Ellipsis for leaf in _unwrap(arg)]
    return [annotation]


def _aliases(model: type[BaseModel]) -> dict[str, Any]:
    return {(f.alias or name): f.annotation for name, f in model.model_fields.items()}


def _models_at(loc: PathT, root: type[BaseModel] = Scenario) -> list[type[BaseModel]]:
    """Which models could sit at this (pydantic) location; used for 'did you mean'."""
    candidates: list[Any] = [root]
    for part in loc:
        models = [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]
        if isinstance(part, int):
            continue
        following = [leaf for m in models for a, ann in _aliases(m).items() if a == part for leaf in _unwrap(ann)]
        if following:
            candidates = following
            continue
        tagged = [m for m in models if part in (_literal(m, "type"), _literal(m, "dist"))]
        if tagged:
            candidates = tagged
    return [c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)]


def _literal(model: type[BaseModel], field: str) -> Any:
    info = model.model_fields.get(field)
    if info is None:
        return None
    args = typing.get_args(info.annotation)
    return args[0] if len(args) == 1 else None


def _data_path(data: Any, loc: PathT) -> tuple[PathT, bool]:
    """Map a pydantic loc onto the user's data: drop union tags and validator names.

    Returns the path and whether its last element exists in the data.
    """
    path: list[Any] = []
    node = data
    exists = True
    for part in loc:
        if isinstance(node, dict) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        elif isinstance(part, str) and (part in FAULT_TYPES or part in DIST_NAMES or "[" in part or "-" in part):
            continue  # a union tag or validator name pydantic put in the location
        else:
            path.append(part)
            exists = False
            node = None
    return tuple(path), exists


def _suggest(word: object, options: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def _problem(err: ErrorDetails, data: Any, lines: _Lines, file: str, root: type[BaseModel] = Scenario) -> ScenarioProblem:
    loc = tuple(err["loc"])
    path, exists = _data_path(data, loc)
    kind = err["type"]
    found: str | None = _short(err.get("input"))
    hint = None
    msg = err["msg"]
    if kind == "missing":
        expected, found = f"required key '{path[-1]}'", None
        line = lines.line(path[:-1])
    elif kind == "extra_forbidden":
        allowed = sorted({a for m in _models_at(loc[:-1], root) for a in _aliases(m)})
        expected = "one of the keys " + ", ".join(allowed) if allowed else "no such key"
        found = f"unknown key '{path[-1]}'"
        hint = _suggest(path[-1], allowed)
        line = lines.line(path)
    elif kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        tag = ctx.get("tag")
        disc = str(ctx.get("discriminator", "")).strip("'")
        options = FAULT_TYPES if disc == "type" else DIST_NAMES
        expected = f"{disc} to be one of " + ", ".join(options)
        found = repr(tag)
        hint = _suggest(tag, options)
        path = path + (disc,)
        line = lines.line(path)
    elif kind == "union_tag_not_found":
        disc = str(err.get("ctx", {}).get("discriminator", "")).strip("'")
        options = FAULT_TYPES if disc == "type" else DIST_NAMES
        expected = f"key '{disc}' (one of " + ", ".join(options) + ")"
        found = None
        line = lines.line(path)
    else:
        text = msg
        for prefix in ("Value error, ", "Assertion failed, "):
            if text.startswith(prefix):
                text = text[len(prefix):]
        if text.startswith("Input should be "):
            text = text[len("Input should be "):]
        if kind == "string_pattern_mismatch":
            text = "lowercase letters, digits and dashes ([a-z0-9-]+)"
        if ", found " in text:
            text, _, found = text.partition(", found ")
        expected = text
        line = lines.line(path)
    return ScenarioProblem(file=file, line=line, path=format_key_path(path), expected=expected, found=found, hint=hint)


# --------------------------------------------------------------------------- strict numbers


def _annotation_info(annotation: Any) -> tuple[list[Any], bool]:
    """The leaf types of an annotation and whether a before-validator converts the input
    (the unit parsers: ``30s``, ``20/s``, ``5%``)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        inner, *meta = typing.get_args(annotation)
        inner_leaves, inner_converted = _annotation_info(inner)
        return inner_leaves, inner_converted or any(isinstance(m, BeforeValidator) for m in meta)
    if origin in (typing.Union, types.UnionType, tuple, list):
        leaves: list[Any] = []
        converted = False
        for arg in typing.get_args(annotation):
            if arg is Ellipsis:
                continue
            sub, conv = _annotation_info(arg)
            leaves += sub
            converted = converted or conv
        return leaves, converted
    if origin is typing.Literal:
        return [type(v) for v in typing.get_args(annotation)], False
    return [annotation], False


def _field_for(models: list[type[BaseModel]], key: str) -> tuple[Any, bool] | None:
    for model in models:
        for name, info in model.model_fields.items():
            if (info.alias or name) == key:
                before = any(
                    name in dec.info.fields and dec.info.mode in ("before", "wrap", "plain")
                    for dec in model.__pydantic_decorators__.field_validators.values()
                ) or any(isinstance(m, BeforeValidator) for m in info.metadata)
                return info.annotation, before
    return None


def _tagged(models: list[type[BaseModel]], node: dict[str, Any]) -> list[type[BaseModel]]:
    """Narrow a union of models to the one the node's ``type``/``dist`` tag selects."""
    for tag in ("type", "dist"):
        if tag in node:
            chosen = [m for m in models if _literal(m, tag) == node[tag]]
            if chosen:
                return chosen
    return models


def _is_number_text(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _strict_problems(node: Any, models: list[type[BaseModel]], path: PathT, lines: _Lines,
                     file: str) -> list[ScenarioProblem]:
    """Booleans and quoted numbers where a number belongs: pydantic's lax mode would read
    ``workers: true`` as one worker and ``accounts: "50000"`` as 50000; we refuse both.
    Strings with units (``30s``, ``20/s``, ``5%``) go through their parsers as before."""
    problems: list[ScenarioProblem] = []
    if isinstance(node, list):
        for index, item in enumerate(node):
            problems += _strict_problems(item, models, path + (index,), lines, file)
        return problems
    if not isinstance(node, dict) or not models:
        return problems
    models = _tagged(models, node)
    for key, value in node.items():
        field = _field_for(models, key)
        if field is None:
            continue
        annotation, field_before = field
        leaves, converted = _annotation_info(annotation)
        converted = converted or field_before
        numeric = [leaf for leaf in leaves if leaf in (int, float)]
        child = path + (key,)
        if numeric and bool not in leaves:
            want = "a whole number" if int in numeric and float not in numeric else "a number"
            if isinstance(value, bool):
                problems.append(ScenarioProblem(file, lines.line(child), format_key_path(child), want,
                                                f"{value!r} (a YAML boolean; true/false/yes/no/on/off are not numbers)"))
            elif isinstance(value, str) and _is_number_text(value) and (int in numeric or not converted):
                problems.append(ScenarioProblem(file, lines.line(child), format_key_path(child),
                                                want + " without quotes", repr(value)))
        sub_models = [leaf for leaf in leaves if isinstance(leaf, type) and issubclass(leaf, BaseModel)]
        problems += _strict_problems(value, sub_models, child, lines, file)
    return problems


def _notes(data: Any, lines: _Lines, file: str) -> tuple[str, ...]:
    """Warnings about keys that are valid but do not change a run (none at present)."""
    return ()


# --------------------------------------------------------------------------- entry points


def _validate(data: Any, lines: _Lines, file: str) -> Scenario:
    problems: list[ScenarioProblem] = []
    for dup_path, dup_line in lines.duplicates:
        problems.append(
            ScenarioProblem(file, dup_line, format_key_path(dup_path), "each key once", "a duplicate key")
        )
    if not isinstance(data, dict):
        problems.append(ScenarioProblem(file, 1, "", "a mapping with keys version, name, duration, workload, ...", _short(data)))
        raise InvalidScenario(problems)
    slo = data.get("slo")
    if isinstance(slo, dict):
        for key, rule in slo.items():
            try:
                SloRule.parse(key, rule)
            except ValueError as exc:
                text, _, found = str(exc).partition(", found ")
                metric = str(key).partition("@")[0]
                hint = _suggest(metric, SLO_METRIC_PATHS) if "metric path" in text else None
                if hint:
                    text = "a known metric path such as stale_read_ratio or time_to_usable.p99"
                problems.append(
                    ScenarioProblem(file, lines.line(("slo", key)), format_key_path(("slo", key)), text,
                                    found or _short(rule), hint)
                )
    problems += _strict_problems(data, [Scenario], (), lines, file)
    checked = {k: v for k, v in data.items() if k != "slo"} if problems else data
    try:
        scenario = Scenario.model_validate(checked)
    except ValidationError as exc:
        problems.extend(_problem(e, data, lines, file) for e in exc.errors())
    if problems:
        problems.sort(key=lambda p: (p.line or 0))
        raise InvalidScenario(problems)
    scenario._source = file
    scenario._warnings = _notes(data, lines, file)
    return scenario


def _plain_yaml_problem(problem: str, text: str, line: int | None) -> tuple[str, str]:
    """The YAML parser's wording ('expected <block end>, but found ...') in plain words."""
    source = text.splitlines()[line - 1] if line and 0 < line <= len(text.splitlines()) else ""
    shown = f" in {source.strip()!r}" if source.strip() else ""
    if "\\t" in problem or "\t" in source[: len(source) - len(source.lstrip())]:
        return "indentation with spaces (YAML does not allow tabs)", f"a tab{shown}"
    if "block end" in problem or "block mapping start" in problem or "block sequence" in problem:
        return ("each key indented exactly like the other keys of its mapping",
                f"a line indented differently from the lines above it{shown}")
    if "mapping values are not allowed" in problem:
        return ("a key indented under a key that opens a mapping (one ending in ':'), "
                "or a value with ': ' inside it quoted"), f"a key here that has nothing to belong to{shown}"
    if "could not find expected ':'" in problem:
        return "'key: value' on this line", f"no ':' after the key{shown}"
    return "valid YAML", problem


def _compose(text: str, file: str) -> tuple[Any, _Lines]:
    """The YAML document as data plus the line of every key path (or InvalidScenario)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        expected, found = _plain_yaml_problem(problem, text, line)
        raise InvalidScenario([ScenarioProblem(file, line, "", expected, found)]) from None
    return data, _Lines(root)


def load_scenario_text(text: str, file: str = "<string>") -> Scenario:
    """Validate scenario YAML given as text (``file`` names it in errors)."""
    data, lines = _compose(text, file)
    scenario = _validate(data, lines, file)
    scenario._text = text
    return scenario


def load_model_text(text: str, model: type[BaseModel], file: str, expected: str = "a mapping") -> Any:
    """Validate YAML text against another file format's pydantic ``model`` (a target file)
    with the same error quality as a scenario: file, line, key path, expected vs found."""
    data, lines = _compose(text, file)
    problems = [ScenarioProblem(file, line, format_key_path(path), "each key once", "a duplicate key")
                for path, line in lines.duplicates]
    if not isinstance(data, dict):
        raise InvalidScenario(problems + [ScenarioProblem(file, 1, "", expected, _short(data))])
    try:
        value = model.model_validate(data)
    except ValidationError as exc:
        problems.extend(_problem(e, data, lines, file, model) for e in exc.errors())
    if problems:
        problems.sort(key=lambda p: (p.line or 0))
        raise InvalidScenario(problems)
    return value


_FAULT = TypeAdapter(Fault)


def load_fault_data(data: Any, file: str = "fault") -> Any:
    """One fault in scenario syntax (e.g. a chaos API body), validated with the same messages
    as a fault inside a scenario file."""
    try:
        return _FAULT.validate_python(data)
    except ValidationError as exc:
        wrapped = {"faults": [data]}
        problems = []
        for err in exc.errors():
            problem = _problem({**err, "loc": ("faults", 0, *err["loc"])}, wrapped, _Lines(None), file)
            path = problem.path.removeprefix("faults[0]").lstrip(".")
            problems.append(dataclasses.replace(problem, path=path))
        raise InvalidScenario(problems) from None


def load_scenario(path: str | os.PathLike[str]) -> Scenario:
    """Load and validate one scenario file."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidScenario([ScenarioProblem(file, None, "", "a readable UTF-8 scenario file", type(exc).__name__ + ": " + str(exc.args[-1] if exc.args else exc))]) from None
    return load_scenario_text(text, file)


def load_scenario_data(data: Any, file: str = "<data>") -> Scenario:
    """Validate a scenario given as plain data (no line numbers)."""
    return _validate(data, _Lines(None), file)


def resolve_scenario(name_or_path: str) -> Scenario:
    """A path to a scenario file, or the name of a bundled scenario."""
    from repaychaos.scenarios.library import bundled_path, bundled_scenarios

    if os.path.exists(name_or_path):
        return load_scenario(name_or_path)
    path = bundled_path(name_or_path)
    if path is not None:
        return load_scenario(path)
    names = list(bundled_scenarios())
    hint = _suggest(name_or_path, names)
    raise InvalidInput(
        f"{name_or_path}: no such file and no bundled scenario of that name"
        + (f" ({hint})" if hint else "")
        + " — `repaychaos list` shows the bundled ones"
    )


def with_overrides(scenario: Scenario, overrides: dict[str, Any]) -> Scenario:
    """A copy of ``scenario`` with key paths set (``pipeline.sync.workers`` -> 16), re-validated.

    Unknown key paths are refused like any other bad scenario key.
    """
    data = copy.deepcopy(scenario.normalised())
    for key, value in overrides.items():
        path = parse_key_path(key)
        node: Any = data
        for i, part in enumerate(path[:-1]):
            nxt = path[i + 1]
            if isinstance(node, dict):
                if part not in node or node[part] is None or not isinstance(node[part], (dict, list)):
                    node[part] = [] if isinstance(nxt, int) else {}
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and part < len(node):
                node = node[part]
            else:
                raise InvalidScenario([ScenarioProblem(scenario.source, None, key, "a key path that exists in the scenario", format_key_path(path[: i + 1]) + " is not there")])
        last = path[-1]
        if isinstance(node, list):
            if not isinstance(last, int) or last >= len(node):
                raise InvalidScenario([ScenarioProblem(scenario.source, None, key, "an index inside the list", str(last))])
            node[last] = value
        else:
            node[last] = value
    return load_scenario_data(data, f"{scenario.source} with {', '.join(overrides)}")
