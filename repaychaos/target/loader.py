"""Load a target file, or refuse it like a bad scenario: file, line, key path, expected vs found."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from repaychaos.core.errors import InvalidScenario, ScenarioProblem
from repaychaos.scenarios.loader import load_model_text
from repaychaos.target.spec import Target

if TYPE_CHECKING:
    from repaychaos.scenarios import Scenario

__all__ = ["load_target", "is_target_file", "check_against_scenario", "target_schema"]


def load_target(path: str | os.PathLike[str]) -> Target:
    """Load and validate one target file (InvalidScenario, exit 2, on any problem)."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidScenario([ScenarioProblem(file, None, "", "a readable UTF-8 target file", str(exc))]) from None
    return load_model_text(text, Target, file, "a mapping with keys base_url, repay, status, ...")


def is_target_file(path: str | os.PathLike[str]) -> bool:
    """A YAML file whose top level has ``base_url`` or ``repay`` is a target file, not a scenario."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and ("base_url" in data or "repay" in data)


def check_against_scenario(target: Target, scenario: Scenario, file: str) -> None:
    """Every fault the target file names must be a fault of the scenario (by name or label)."""
    labels = {scenario.fault_label(i) for i in range(len(scenario.faults))}
    problems = []
    for index, actions in enumerate(target.faults):
        if actions.fault not in labels:
            import difflib

            close = difflib.get_close_matches(actions.fault, sorted(labels), n=1)
            problems.append(ScenarioProblem(
                file, None, f"faults[{index}].fault",
                f"a fault of scenario '{scenario.name}' (" + (", ".join(sorted(labels)) or "it has none") + ")",
                repr(actions.fault), f"did you mean '{close[0]}'?" if close else None))
    if problems:
        raise InvalidScenario(problems)


def target_schema() -> dict[str, Any]:
    """JSON Schema of the target file format (``repaychaos schema --target``)."""
    schema = Target.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "repaychaos target file"
    return schema
