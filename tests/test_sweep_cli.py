"""`repaychaos sweep` on the command line: files written, bad input refused with exit 2."""

from __future__ import annotations

import textwrap

import pytest
from click.testing import CliRunner
from builders import scenario_yaml

cli_module = pytest.importorskip("repaychaos.cli")

SCENARIO = scenario_yaml(
    {"workload.check": None, "pipeline.sync": {"workers": 1, "service": {"dist": "exponential", "mean": "200ms"}}},
    name="cli-sweep", duration="3m", warmup="10s", seed=2, replications=1, slo={"stale_read_ratio": "< 5%"})


@pytest.fixture
def scenario_file(tmp_path):
    path = tmp_path / "cli-sweep.yaml"
    path.write_text(textwrap.dedent(SCENARIO), encoding="utf-8")
    return path


def test_sweep_writes_json_csv_and_plots_and_exits_0(scenario_file, tmp_path):
    """A two-key grid from the command line leaves sweep.json, sweep.csv and the plots in --out."""
    out = tmp_path / "out"
    result = CliRunner().invoke(cli_module.cli, [
        "sweep", str(scenario_file), "--vary", "pipeline.sync.workers=1,2", "--vary", "workload.arrivals.rate=1/s,2/s",
        "--processes", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} >= {"sweep.json", "sweep.csv", "frontier.png", "heatmap.png"}


@pytest.mark.parametrize("option, named", [
    ("pipeline.sync.wrkers=1,2", "pipeline.sync.wrkers"),
    ("pipeline.sync.workers=1,-2", "pipeline.sync.workers=-2"),
    ("pipeline.sync.workers", "KEY=V1,V2"),
])
def test_bad_vary_exits_2_naming_it(scenario_file, tmp_path, option, named):
    """An unknown key, a bad value or a malformed option is a one-line error with exit status 2."""
    result = CliRunner().invoke(cli_module.cli, ["sweep", str(scenario_file), "--vary", option, "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert named in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "sweep.json").exists()
