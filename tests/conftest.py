"""Shared fixtures: scenario builders so each test states only what it is about.

The builders themselves live in ``builders.py`` (importable by module-level constants);
the fixtures here hand them to tests.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any, Callable, Mapping

import pytest

import builders

#: The smallest valid scenario text, for tests of the loader's messages (line numbers).
MINIMAL = """\
version: 1
name: tiny
duration: 10m
workload:
  arrivals: {rate: 2/s}
"""


@pytest.fixture
def write_scenario(tmp_path: Path) -> Callable[..., Path]:
    """Write YAML text (dedented) to a file and return its path."""

    def write(text: str, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def make_scenario() -> Callable[..., Any]:
    """:func:`builders.make_scenario`: ``make_scenario({"pipeline.sync.workers": 4}, seed=9)``."""
    return builders.make_scenario


@pytest.fixture
def scenario_file(tmp_path: Path) -> Callable[..., Path]:
    """Write a built scenario to ``tmp_path/<name>.yaml``: ``scenario_file({...}, name="x")``."""

    def write(keys: Mapping[str, Any] | None = None, /, **top: Any) -> Path:
        return builders.write_scenario_file(tmp_path, keys, **top)

    return write
