"""What a sweep leaves behind: sweep.json, sweep.csv and plots, in grid order, reproducibly."""

from __future__ import annotations

import csv
import json

import pytest

from repaychaos.scenarios.loader import load_scenario_text
from repaychaos.reports.sweep_plots import write_sweep_plots
from repaychaos.sim.sweep import run_sweep
from repaychaos.sim.sweep_output import SWEEP_SCHEMA, read_sweep
from builders import scenario_yaml

SMALL = scenario_yaml(
    {"workload.check": {"first_after": "2s", "every": "5s", "max_checks": 3},
     "pipeline.sync": {"workers": 1, "service": {"dist": "exponential", "mean": "200ms"}},
     "pipeline.credit": {"service": "10ms"}, "pipeline.reconcile": {"every": "1m"}},
    name="small", duration="5m", warmup="30s", seed=9, slo={"stale_read_ratio": "< 2%", "time_to_usable.p99": "< 5s"})

VARY = ["pipeline.sync.workers=1,3", "workload.arrivals.rate=2/s,4/s,6/s"]


@pytest.fixture(scope="module")
def small():
    return load_scenario_text(SMALL, "small.yaml")


@pytest.fixture(scope="module")
def swept(small, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("sweep")
    out = run_sweep(small, VARY, out_dir=out_dir, processes=2, progress=False)
    out["paths"].update(write_sweep_plots(out["record"], out_dir))
    return out_dir, out


def test_sweep_json_has_one_row_per_grid_point_in_grid_order(swept):
    """2 x 3 values give 6 rows, first --vary outermost, each with metrics and SLO verdicts."""
    out_dir, out = swept
    record = read_sweep(out_dir / "sweep.json")
    assert record["schema"] == SWEEP_SCHEMA
    assert [(r["values"]["pipeline.sync.workers"], r["values"]["workload.arrivals.rate"]) for r in record["rows"]] == [
        (1, "2/s"), (1, "4/s"), (1, "6/s"), (3, "2/s"), (3, "4/s"), (3, "6/s")]
    for row in record["rows"]:
        assert [s["metric"] for s in row["slo"]] == ["stale_read_ratio", "time_to_usable.p99"]
        assert row["passed"] == all(s["passed"] for s in row["slo"])
        assert row["replications"] == 2 and row["seed"] == 9
    assert record["rows"] == json.loads(json.dumps(out["rows"]))


def test_sweep_csv_flattens_the_same_rows(swept):
    """sweep.csv has the varied keys, headline metrics and the verdict of every row of sweep.json."""
    out_dir, out = swept
    with (out_dir / "sweep.csv").open(encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 6
    assert {"point", "pipeline.sync.workers", "workload.arrivals.rate", "stale_read_ratio", "time_to_usable_p99",
            "passed"} <= set(table[0])
    for line, row in zip(table, out["rows"]):
        assert line["workload.arrivals.rate"] == row["values"]["workload.arrivals.rate"]
        assert float(line["stale_read_ratio"]) == row["metrics"]["stale_read_ratio"]["value"]
        assert int(line["repayments"]) == row["metrics"]["repayments"]
        assert line["passed"] == ("true" if row["passed"] else "false")


def test_sweep_draws_the_frontier_and_the_heat_map(swept):
    """A two-key grid gets a capacity frontier and a heat map, as PNG files beside sweep.json."""
    out_dir, out = swept
    assert set(out["paths"]) == {"sweep.json", "sweep.csv", "frontier.png", "heatmap.png"}
    for name in ("frontier.png", "heatmap.png"):
        assert (out_dir / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_one_key_gets_the_headline_metric_along_it(small, tmp_path):
    """A one-key sweep plots the headline metric against that key."""
    out = run_sweep(small, ["pipeline.sync.workers=1,2"], out_dir=tmp_path, processes=1, progress=False)
    assert "headline.png" in write_sweep_plots(out["record"], tmp_path)


def test_the_result_does_not_depend_on_the_number_of_processes(small, swept, tmp_path):
    """One process and two give byte-identical rows: results are assembled in grid order."""
    _, out = swept
    serial = run_sweep(small, VARY, out_dir=tmp_path, processes=1, progress=False)
    assert json.dumps(serial["rows"]) == json.dumps(out["rows"])
    assert json.dumps(serial["frontier"]) == json.dumps(out["frontier"])


def test_terminal_summary_states_the_count_and_one_frontier_line_per_setting(swept):
    """The summary says how many points passed and gives the frontier for each worker count."""
    from repaychaos.reports.summary import summarize_sweep

    _, out = swept
    lines = summarize_sweep(out["record"]).splitlines()
    passed = sum(r["passed"] for r in out["rows"])
    assert lines[0].startswith(f"sweep small: 6 point(s), {passed} met every SLO")
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["pipeline.sync.workers=1", "pipeline.sync.workers=3"]
