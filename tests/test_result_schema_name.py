"""The result file's schema name is the documented one, and results written under the name
0.1.x used by mistake still read (docs/reference/result-file.md)."""

from __future__ import annotations

import json

import pytest

from pathlib import Path

from repaychaos.core.errors import InvalidResult
from repaychaos.core.result import SCHEMA, read_result

ROOT = Path(__file__).resolve().parents[1]


def test_results_are_written_as_repaychaos_result_1():
    """The schema name other tools check is `repaychaos.result/1`."""
    assert SCHEMA == "repaychaos.result/1"


def _sample(tmp_path, schema):
    data = json.loads(open(ROOT / "reports/sample/result.json", encoding="utf-8").read())
    data["schema"] = schema
    path = tmp_path / "result.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_a_result_under_the_old_name_still_reads(tmp_path):
    """A result.json written as `repaychaos.core.result/1` is read, not refused."""
    assert read_result(_sample(tmp_path, "repaychaos.core.result/1"))["schema"] == "repaychaos.core.result/1"


def test_any_other_schema_is_refused(tmp_path):
    """A record with another schema name is refused with the expected name in the message."""
    with pytest.raises(InvalidResult, match="repaychaos.result/1"):
        read_result(_sample(tmp_path, "repaychaos.sweep/1"))
