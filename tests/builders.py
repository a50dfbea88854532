"""Scenario builders for tests: a small valid scenario, changed only where a test says.

A test states what it is about and nothing else::

    make_scenario({"pipeline.sync.workers": 4}, seed=9, faults=[{"type": "sync_delay", "extra": "1s"}])

Keys of the first argument are dotted paths into the scenario (``workload.check.every``);
keyword arguments set top-level keys (``name``, ``duration``, ``seed``, ``faults``, ``slo``).
A value of ``None`` removes the key (the format's default applies). ``conftest.py`` offers
the same builders as fixtures (``make_scenario``, ``scenario_file``).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Mapping

import yaml

from repaychaos.scenarios import Scenario, load_scenario_data
from repaychaos.scenarios.loader import load_scenario_text

__all__ = ["BASE", "scenario_data", "scenario_yaml", "make_scenario", "make_scenario_from_data", "write_scenario_file"]

#: The scenario every builder starts from: 20 minutes (1 of warmup) of 2 repayments/s,
#: users checking 5 s after the ack then every 30 s, three times at most, an unlimited
#: sync pool of 100 ms per message, the format's defaults elsewhere, no fault, no SLO.
BASE: dict[str, Any] = {
    "version": 1,
    "name": "tiny",
    "duration": "20m",
    "warmup": "1m",
    "seed": 3,
    "replications": 2,
    "workload": {"arrivals": {"rate": "2/s"}, "check": {"first_after": "5s", "every": "30s", "max_checks": 3}},
    "pipeline": {"sync": {"workers": "unlimited", "service": "100ms"}},
}


def scenario_data(keys: Mapping[str, Any] | None = None, /, **top: Any) -> dict[str, Any]:
    """:data:`BASE` with ``keys`` (dotted paths) and then ``top`` (top-level keys) set; ``None`` removes."""
    data = copy.deepcopy(BASE)
    for path, value in [*(keys or {}).items(), *top.items()]:
        node = data
        *parents, last = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = copy.deepcopy(value)
    return data


def scenario_yaml(keys: Mapping[str, Any] | None = None, /, **top: Any) -> str:
    """The scenario of :func:`scenario_data` as YAML text, keys in the order written."""
    return yaml.safe_dump(scenario_data(keys, **top), sort_keys=False, allow_unicode=True)


def make_scenario(keys: Mapping[str, Any] | None = None, /, **top: Any) -> Scenario:
    """The validated :class:`Scenario` of :func:`scenario_data`, loaded from its YAML text
    (so ``scenario_as_written`` is set, as for a file)."""
    return load_scenario_text(scenario_yaml(keys, **top), f"{top.get('name', BASE['name'])}.yaml")


def make_scenario_from_data(keys: Mapping[str, Any] | None = None, /, **top: Any) -> Scenario:
    """The validated :class:`Scenario` of :func:`scenario_data`, built from data (no text)."""
    return load_scenario_data(scenario_data(keys, **top))


def write_scenario_file(folder: Path, keys: Mapping[str, Any] | None = None, /, **top: Any) -> Path:
    """Write the scenario's YAML to ``folder/<name>.yaml`` and return the path."""
    path = Path(folder) / f"{top.get('name', BASE['name'])}.yaml"
    path.write_text(scenario_yaml(keys, **top), encoding="utf-8")
    return path
