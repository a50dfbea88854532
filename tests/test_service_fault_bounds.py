"""One rule for a fault's bounds, in its spec: a scenario file is refused for what the chaos
API refuses (a zero-length window, a long name, a delay beyond a day), naming the file, the
line and the key path."""

from __future__ import annotations

import pytest

from repaychaos.core.errors import InvalidScenario
from repaychaos.scenarios import load_scenario

HEAD = """version: 1
name: bounds
duration: 1h
workload:
  arrivals: {rate: 1}
faults:
  - type: maintenance
    component: sync
    at: 5m
    for: 1m
"""


@pytest.mark.parametrize("fault, line, key, says", [
    ("  - type: maintenance\n    component: view\n    for: 0s\n", 13, "faults[1].for", "greater than 0"),
    ("  - type: maintenance\n    component: view\n    for: 1s\n    name: " + "n" * 65 + "\n", 14, "faults[1].name",
     "at most 64 characters"),
    ("  - type: sync_delay\n    for: 1m\n    extra: 1e300\n", 13, "faults[1].extra", "at most 86400s"),
    ("  - type: sync_delay\n    for: 1m\n    extra: {dist: pareto, scale: 2d, shape: 1.5}\n", 13,
     "faults[1].extra", "pareto.scale of at most 86400s"),
    ("  - type: maintenance\n    component: view\n    at: 400d\n    for: 1s\n", 13, "faults[1].at",
     "less than or equal to"),
])
def test_a_scenario_file_refuses_what_the_chaos_api_refuses(tmp_path, fault, line, key, says):
    """The loader's error names the file, the line of the key, the key path and the bound."""
    path = tmp_path / "bounds.yaml"
    path.write_text(HEAD + fault, encoding="utf-8")
    with pytest.raises(InvalidScenario) as caught:
        load_scenario(path)
    text = str(caught.value)
    assert text.startswith(f"{path}:{line}: {key}: expected ") and says in text
