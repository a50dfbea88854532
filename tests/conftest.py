"""Shared fixtures: scenario text builders so each test states only what it is about."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

MINIMAL = """\
version: 1
name: tiny
duration: 10m
workload:
  arrivals: {rate: 2/s}
"""


@pytest.fixture
def write_scenario(tmp_path: Path):
    """Write YAML text (dedented) to a file and return its path."""

    def write(text: str, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write
