"""A live run says where it is: how long it will take and why, then a status line at least
every 10 s when there is no terminal; `--wall` picks the time scale. A live run's own lines
are checked with the `repaychaos load` command's end-to-end test (tests/test_load_cli.py)."""

from __future__ import annotations

import json
import re
import time

import pytest

from repaychaos.load.clock import Clock
from repaychaos.load.runner import (
    MAX_TIME_SCALE,
    MAX_WALL_RATE,
    _Status,
    _tail_quantile,
    default_time_scale,
    plan_line,
    wall_time_scale,
)
from repaychaos.scenarios import bundled_scenarios, load_scenario


def _tail(scenario) -> float:
    check = scenario.workload.check
    return _tail_quantile(check.first_after) + check.every * (check.max_checks - 1)


def test_plan_line_gives_wall_time_and_its_reasons():
    """quiet-baseline: 2 h at 10/s; K is capped at MAX_TIME_SCALE = 25 (the rate cap would allow
    50), so 7200 s / 25 = 4m48s of arrivals (a run measured 310 s in all: the line says about 5m22s)."""
    sc = load_scenario(bundled_scenarios()["quiet-baseline"])
    k = default_time_scale(sc)
    assert k.is_constant and k.top == MAX_TIME_SCALE < MAX_WALL_RATE / 10
    line = plan_line(sc, k, _tail(sc), "why")
    assert line.startswith("load quiet-baseline: about 5m")
    assert "time scale 25 (why) take 4m48s" in line
    assert "waiting for late users" in line


def test_wall_picks_the_time_scale_and_warns_when_the_cap_prevents_it():
    sc = load_scenario(bundled_scenarios()["quiet-baseline"])
    k, warning = wall_time_scale(sc, 600.0, _tail(sc))
    assert warning is None and k == pytest.approx((sc.duration + _tail(sc)) / 600.0)
    peak = load_scenario(bundled_scenarios()["month-end-peak"])
    k, warning = wall_time_scale(peak, 60.0, _tail(peak))
    assert k == pytest.approx(MAX_WALL_RATE / 75)
    assert warning is not None and "allows at most time scale 6.67" in warning


def test_status_line_counts_finished_users(tmp_path):
    recs = [{"id": "a", "reads": [[1.0, False, None], [2.0, True, None]]}, {"id": "b", "reads": [[1.5, True, None]]},
            {"id": None, "reads": []}]
    path = tmp_path / "records-1-x.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs) + '{"id": "c", "rea')  # a line being written
    status = _Status(tmp_path, Clock(time.time() - 30, 10.0), total=600.0, duration=500.0)
    line = status.line(time.time())
    assert re.search(r"load:\s+50% \| scenario 5m of 8m20s", line)
    assert "2 repayments done, unusable reads 33.33%" in line
    assert "ETA 30s" in line
    with open(path, "a") as fh:
        fh.write('ds": [[3.0, false, null]]}\n')
    assert "3 repayments done, unusable reads 50.00%" in status.line(time.time())
