"""The bundled scenario library: realistic stories from SPEC §1, shipped as YAML."""

from __future__ import annotations

from pathlib import Path

__all__ = ["BUNDLED_DIR", "bundled_scenarios", "bundled_path"]

BUNDLED_DIR = Path(__file__).parent / "bundled"


def bundled_scenarios() -> dict[str, Path]:
    """Bundled scenario name -> file, sorted by name."""
    return {p.stem: p for p in sorted(BUNDLED_DIR.glob("*.yaml"))}


def bundled_path(name: str) -> Path | None:
    """The file of a bundled scenario, or None."""
    return bundled_scenarios().get(name)
