"""The documentation site builds with warnings as errors, so a broken link or a page left
out of the nav fails the suite; and the docs stand on their own (no outside briefs cited)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
pytest.importorskip("material", reason="mkdocs-material is not installed")


def _build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(config),
                           "--site-dir", str(site)], cwd=config.parent, env=env, capture_output=True, text=True,
                          timeout=300)


def test_the_site_builds_strictly(tmp_path):
    """`mkdocs build --strict` succeeds and writes every page of the nav, generated sections filled in."""
    proc = _build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert proc.returncode == 0, proc.stderr[-4000:]
    site = tmp_path / "site"
    for page in ["index", "tutorial", "reference/cli", "reference/http-api", "reference/result-file",
                 "reference/python-api", "explanation/semantics", "explanation/validation"]:
        assert (site / f"{page}.html").is_file(), page
    http = (site / "reference/http-api.html").read_text(encoding="utf-8")
    assert "POST /repayments" in http and "generated:" not in http
    cli = (site / "reference/cli.html").read_text(encoding="utf-8")
    assert "--replications" in cli and "generated:" not in cli and "Sentinel" not in cli
    api = (site / "reference/python-api.html").read_text(encoding="utf-8")
    assert "run_model" in api and ":::" not in api


def test_a_broken_link_fails_the_build(tmp_path):
    """The same configuration refuses a page that links to a page that does not exist."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    index = copy / "docs" / "index.md"
    index.write_text(index.read_text(encoding="utf-8") + "\n[gone](no-such-page.md)\n", encoding="utf-8")
    proc = _build(copy / "mkdocs.yml", tmp_path / "site")
    assert proc.returncode != 0
    assert "no-such-page.md" in proc.stderr


def test_docs_cite_only_the_repository():
    """No page cites a brief or an issue tracker the repository does not contain."""
    found = []
    for path in sorted((ROOT / "docs").rglob("*.md")) + [ROOT / "README.md"]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"\bSPEC\b|issue [0-9]", line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def _yaml_examples() -> list[tuple[str, str]]:
    """Every complete example file in the docs: a ```yaml block that starts with `version: 1`."""
    found = []
    for path in sorted((ROOT / "docs").rglob("*.md")):
        text = path.read_text(encoding="utf-8")
        for number, block in enumerate(re.findall(r"```yaml\n(.*?)```", text, flags=re.S)):
            if block.lstrip().startswith("version: 1"):
                found.append((f"{path.relative_to(ROOT)}#{number}", block))
    return found


def test_every_example_file_in_the_docs_is_valid(tmp_path):
    """The docs' example scenarios and target files pass the loaders the command line uses."""
    from repaychaos.scenarios.loader import load_scenario_text
    from repaychaos.target import is_target_file, load_target

    examples = _yaml_examples()
    kinds = []
    for name, text in examples:
        path = tmp_path / (re.sub(r"[^a-z0-9]+", "-", name) + ".yaml")
        path.write_text(text, encoding="utf-8")
        if is_target_file(path):
            load_target(path)
            kinds.append("target")
        else:
            load_scenario_text(text, name)
            kinds.append("scenario")
    # the tutorial's scenario and the target file reference's example at least
    assert "scenario" in kinds and "target" in kinds, examples
