"""The package's shape: one import namespace, and layers that only point downwards."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_layer_contract_holds():
    """`lint-imports` keeps pyproject's layer contract: no module imports from a layer above it."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is in the test extra"
    proc = subprocess.run([lint, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_a_wheel_installs_exactly_one_import_package(tmp_path):
    """`pip install repaychaos` adds `repaychaos` and nothing else at the top level."""
    source = tmp_path / "src"  # a copy: building in the work tree would leave build/ behind
    skip = {".git", ".venv", "build", "__pycache__", ".pytest_cache"}
    shutil.copytree(ROOT, source, ignore=lambda folder, names: [n for n in names if n in skip or n.endswith(".egg-info")
                                                                or (Path(folder) == ROOT and n == "reports")])
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path), str(source)], capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        pytest.fail(proc.stdout + proc.stderr)
    (wheel,) = tmp_path.glob("repaychaos-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith((".dist-info", ".data"))}
    assert top == {"repaychaos"}
    code = {p.relative_to(ROOT).as_posix() for p in (ROOT / "repaychaos").rglob("*.py")}
    assert code <= set(names), f"modules missing from the wheel (pyproject's package list): {sorted(code - set(names))}"
    bundled = {Path(n).stem for n in names if n.startswith("repaychaos/bundled/") and n.endswith(".yaml")}
    assert bundled == {p.stem for p in (ROOT / "chaos_scenarios").glob("*.yaml")}
