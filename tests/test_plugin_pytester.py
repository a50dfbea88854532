"""The pytest plugin: scenario files become one test per SLO, run once per session."""

from __future__ import annotations

import pytest

# In-process pytester runs drop modules first imported inside them; numpy cannot be
# imported twice in one process, so everything the inner runs use is imported here.
import repaychaos.scenarios.loader  # noqa: F401
import repaychaos.reports.fmt  # noqa: F401
import repaychaos.reports.render  # noqa: F401
import repaychaos.reports.plots  # noqa: F401
import repaychaos.reports.html  # noqa: F401
import repaychaos.reports.junit  # noqa: F401
import repaychaos.reports.markdown  # noqa: F401
import repaychaos.reports.compare  # noqa: F401
import synthetic  # noqa: F401
import scipy.stats  # noqa: F401
import yaml
from builders import scenario_yaml

pytest_plugins = ["pytester"]

#: the synthetic runner keeps these tests fast and independent of the SimPy model
FAST = "--repaychaos-runner=synthetic:synthetic_result"

def tiny(slo: str) -> str:
    """Ten minutes of 1 repayment/s, 120 ms of constant pipeline, the sync stage paused from 2m
    to 4m; ``slo`` is the YAML of its ``slo:`` mapping."""
    return scenario_yaml(
        {"workload.arrivals.rate": "1/s", "pipeline.credit": {"service": "20ms", "risk_hold_ratio": 0},
         "pipeline.reconcile": "off"},
        name="plugin-tiny", duration="10m", warmup=None,
        faults=[{"type": "maintenance", "component": "sync", "at": "2m", "for": "2m"}], slo=yaml.safe_load(slo))


#: with constant 120 ms of pipeline and the first read at 5 s, only maintenance makes reads stale
SLOS = """\
lost_repayments: "== 0"
stale_read_ratio@after: "== 0"
stale_read_ratio@maintenance: "< 1%"
"""


def test_each_slo_of_a_chaos_file_is_one_test(pytester: pytest.Pytester):
    """A *.chaos.yaml file yields one item per SLO; two hold and the maintenance one fails."""
    pytester.makefile(".chaos.yaml", gate=tiny(SLOS))
    result = pytester.runpytest(FAST)
    result.assert_outcomes(passed=2, failed=1)


def test_failure_names_observed_value_and_rule(pytester: pytest.Pytester):
    """The failing item's report says the scenario, the metric, the observed value with its CI and the rule."""
    pytester.makefile(".chaos.yaml", gate=tiny(SLOS))
    result = pytester.runpytest(FAST)
    result.stdout.fnmatch_lines([
        "*SLO not met in scenario 'plugin-tiny' (gate.chaos.yaml)*",
        "*stale_read_ratio@maintenance: observed *% (95% CI *), rule < 1% -> FAIL*",
    ])


def test_items_have_readable_node_ids_and_the_marker(pytester: pytest.Pytester):
    """Node ids are file::slo[metric@phase] and `-m repaychaos` selects them."""
    pytester.makefile(".chaos.yaml", gate=tiny(SLOS))
    result = pytester.runpytest(FAST, "--collect-only", "-q", "-m", "repaychaos")
    result.stdout.fnmatch_lines([
        "gate.chaos.yaml::slo[lost_repayments]",
        "gate.chaos.yaml::slo[stale_read_ratio@after]",
        "gate.chaos.yaml::slo[stale_read_ratio@maintenance]",
    ])


def test_scenario_runs_once_per_session(pytester: pytest.Pytester):
    """Three SLOs of one scenario share a single run of the runner."""
    pytester.makepyfile(counting_runner="""
        from pathlib import Path
        from synthetic import synthetic_result

        def run(scenario, fail_on_inconclusive=True, **ignored):
            log = Path("runs.log")
            log.write_text(log.read_text() + "x" if log.exists() else "x")
            return synthetic_result(scenario, fail_on_inconclusive=fail_on_inconclusive)
    """)
    pytester.syspathinsert()
    pytester.makefile(".chaos.yaml", gate=tiny(SLOS))
    result = pytester.runpytest("--repaychaos-runner=counting_runner:run")
    result.assert_outcomes(passed=2, failed=1)
    assert (pytester.path / "runs.log").read_text() == "x"


def straddling() -> str:
    """SLOs where `affected_ratio@maintenance` has its threshold at the observed value: inconclusive."""
    from repaychaos.scenarios.loader import load_scenario_text
    from synthetic import synthetic_result

    probe = synthetic_result(load_scenario_text(tiny('lost_repayments: "== 0"')))
    value = probe["phases"]["maintenance"]["affected_ratio"]["value"]
    return tiny(f'lost_repayments: "== 0"\naffected_ratio@maintenance: "> {100 * value:.6f}%"')


def test_inconclusive_fails_by_default(pytester: pytest.Pytester):
    """An SLO whose interval straddles its threshold fails and says INCONCLUSIVE."""
    pytester.makefile(".chaos.yaml", gate=straddling())
    result = pytester.runpytest(FAST)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*affected_ratio@maintenance: observed*INCONCLUSIVE*counted as a failure*"])


def test_inconclusive_is_skipped_when_allowed(pytester: pytest.Pytester):
    """With --repaychaos-allow-inconclusive the straddling SLO is reported as skipped, with the reason."""
    pytester.makefile(".chaos.yaml", gate=straddling())
    result = pytester.runpytest(FAST, "--repaychaos-allow-inconclusive", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*SKIPPED*gate.chaos.yaml*INCONCLUSIVE*not counted as a failure*"])


def test_scenario_option_collects_a_plain_yaml_file(pytester: pytest.Pytester):
    """--repaychaos-scenario PATH collects a file without the .chaos suffix, alongside the normal tests."""
    path = pytester.makefile(".yaml", other=tiny('lost_repayments: "== 0"'))
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    result = pytester.runpytest(FAST, f"--repaychaos-scenario={path}")
    result.assert_outcomes(passed=2)


def test_invalid_scenario_is_a_collection_error_without_traceback(pytester: pytest.Pytester):
    """A bad scenario fails collection with file, line and key path, not a Python traceback."""
    text = tiny('lost_repayments: "== 0"').replace("workers: unlimited", "workers: lots")
    line = text.splitlines().index("    workers: lots") + 1
    pytester.makefile(".chaos.yaml", gate=text)
    result = pytester.runpytest(FAST)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines([f"*gate.chaos.yaml:{line}: pipeline.sync.workers: expected*"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_plain_test_runs_are_untouched(pytester: pytest.Pytester):
    """Without scenario files the plugin adds no items and YAML files are not collected."""
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    pytester.makefile(".yaml", config="key: value\n")
    result = pytester.runpytest(FAST)
    result.assert_outcomes(passed=1)


@pytest.mark.slow  # runs the SimPy model for every SLO item of the file
def test_runs_the_simpy_model_by_default(pytester: pytest.Pytester):
    """Without --repaychaos-runner the SimPy model (repaychaos.sim.simulate.run_model) is used."""
    pytest.importorskip("repaychaos.sim.simulate")
    pytester.makefile(".chaos.yaml", gate=tiny(SLOS))
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2, failed=1)


def test_out_option_writes_result_and_report(pytester: pytest.Pytester):
    """--repaychaos-out DIR leaves result.json, report.html and junit.xml per scenario for CI artefacts."""
    pytester.makefile(".chaos.yaml", gate=tiny('lost_repayments: "== 0"'))
    result = pytester.runpytest(FAST, "--repaychaos-out=out")
    result.assert_outcomes(passed=1)
    folder = pytester.path / "out" / "plugin-tiny-sim"
    assert {p.name for p in folder.iterdir()} >= {"result.json", "report.html", "summary.md", "junit.xml"}
