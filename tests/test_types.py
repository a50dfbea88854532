"""`mypy -p repaychaos` is clean under the configuration in pyproject.toml ([tool.mypy]):
the whole package checked, core, semantics and the scenario format strictly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_mypy_is_clean() -> None:
    proc = subprocess.run([sys.executable, "-m", "mypy", "-p", "repaychaos"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, f"mypy -p repaychaos failed:\n{proc.stdout}{proc.stderr}"
