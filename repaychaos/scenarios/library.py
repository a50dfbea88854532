"""The bundled scenario library: realistic stories from docs/index.md, shipped as YAML.

The files live in the repository's ``chaos_scenarios/`` folder. A wheel carries them
as ``repaychaos/bundled/`` (pyproject maps the folder there); an editable install or a
source checkout reads the folder itself.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUNDLED_DIR", "bundled_scenarios", "bundled_path"]

_PACKAGE_ROOT = Path(__file__).resolve().parents[1]
BUNDLED_DIR = next((d for d in (_PACKAGE_ROOT / "bundled", _PACKAGE_ROOT.parent / "chaos_scenarios") if d.is_dir()),
                   _PACKAGE_ROOT / "bundled")


def bundled_scenarios() -> dict[str, Path]:
    """Bundled scenario name -> file, sorted by name."""
    return {p.stem: p for p in sorted(BUNDLED_DIR.glob("*.yaml"))}


def bundled_path(name: str) -> Path | None:
    """The file of a bundled scenario, or None."""
    return bundled_scenarios().get(name)
