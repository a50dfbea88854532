"""pytest plugin: every SLO of every scenario file becomes a test.

Registered through the ``pytest11`` entry point, so installing repaychaos is enough::

    pytest checks/                      # collects checks/**/*.chaos.yaml
    pytest checks/nightly.yaml          # any scenario file named on the command line
    pytest --repaychaos-scenario bad-day -m repaychaos   # a bundled scenario, only the gates

Each scenario is run once per session (through ``repaychaos.sim.simulate.run_model`` unless
``--repaychaos-runner module:function`` names another runner with the same shape) and
each of its SLOs is one test item that fails with the observed value, its 95 % interval
and the rule. An inconclusive SLO fails, or with ``--repaychaos-allow-inconclusive`` is
reported as skipped with the reason — never a silent pass.

The plugin is inert for a test run without scenario files: it only adds options and the
``repaychaos`` marker, and imports nothing heavy until a scenario is collected.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest

if TYPE_CHECKING:
    from repaychaos.core.types import ResultRecord, SloRow
    from repaychaos.scenarios import Scenario

__all__ = [
    "ScenarioFile",
    "SloItem",
    "SloNotMet",
    "DEFAULT_RUNNER",
    "pytest_addoption",
    "pytest_configure",
    "pytest_collect_file",
    "pytest_collection_modifyitems",
]

DEFAULT_RUNNER = "repaychaos.sim.simulate:run_model"
SUFFIXES = (".chaos.yaml", ".chaos.yml")

_RUNS = pytest.StashKey[dict[str, "ResultRecord | Exception"]]()


class SloNotMet(AssertionError):
    """An SLO's verdict counts against the gate; carries its result row."""

    def __init__(self, row: SloRow):
        self.row = row
        super().__init__(row.get("metric"))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("repaychaos", "repaychaos SLO gates (scenario files as tests)")
    group.addoption("--repaychaos-scenario", action="append", default=[], metavar="PATH_OR_NAME",
                    help="also collect this scenario file or bundled scenario name (repeatable)")
    group.addoption("--repaychaos-runner", default=None, metavar="MODULE:FUNCTION",
                    help=f"callable(scenario, **options) -> result record (default {DEFAULT_RUNNER})")
    group.addoption("--repaychaos-replications", type=int, default=None, metavar="N",
                    help="override every scenario's replications")
    group.addoption("--repaychaos-allow-inconclusive", action="store_true", default=False,
                    help="report an SLO whose 95%% interval straddles the threshold as skipped, not failed")
    group.addoption("--repaychaos-out", default=None, metavar="DIR",
                    help="write result.json and the report of each scenario into DIR/<scenario>/")
    group.addoption("--repaychaos-target", default=None, metavar="TARGET.yaml",
                    help="gate on a black-box run against the service this target file describes (docs/reference/target-file.md)")
    group.addoption("--repaychaos-time-scale", type=float, default=None, metavar="K",
                    help="time scale of a --repaychaos-target run (default 1: real time)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "repaychaos: an SLO gate collected from a repaychaos scenario file")
    config.stash[_RUNS] = {}


def _is_scenario(file_path: Path, parent: pytest.Collector) -> bool:
    name = file_path.name
    if name.endswith(SUFFIXES):
        return True
    # any YAML file named explicitly on the command line is taken as a scenario
    return file_path.suffix in (".yaml", ".yml") and parent.session.isinitpath(file_path)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> "ScenarioFile | None":
    if _is_scenario(file_path, parent):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(tryfirst=True)  # before -k/-m deselection, so those apply to these items too
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = config.getoption("--repaychaos-scenario") or []
    if not wanted:
        return
    from repaychaos.scenarios import bundled_path

    seen = {item.scenario_file.path.resolve() for item in items if isinstance(item, SloItem)}
    for spec in wanted:
        path = Path(spec)
        if not path.exists():
            bundled = bundled_path(spec)
            if bundled is None:
                raise pytest.UsageError(f"--repaychaos-scenario {spec}: no such file and no bundled scenario of that name")
            path = bundled
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        try:
            nodeid = path.resolve().relative_to(config.rootpath).as_posix()
        except ValueError:  # outside the rootdir (e.g. a bundled scenario): name it by its file
            nodeid = path.name
        collector = ScenarioFile.from_parent(session, path=path, nodeid=nodeid)
        # through the public collection hooks, so the terminal counts these items too
        collector.ihook.pytest_collectstart(collector=collector)
        report = collector.ihook.pytest_make_collect_report(collector=collector)
        if report.failed:
            raise pytest.UsageError(f"--repaychaos-scenario {spec}:\n{report.longreprtext}")
        collector.ihook.pytest_collectreport(report=report)
        items.extend(node for node in report.result if isinstance(node, pytest.Item))


def _load_runner(spec: str) -> Callable[..., ResultRecord]:
    from repaychaos.core.errors import InvalidOption

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise InvalidOption(f"--repaychaos-runner expects MODULE:FUNCTION, got '{spec}'")
    try:
        module = importlib.import_module(module_name)
        return getattr(module, attr)
    except (ImportError, AttributeError) as exc:
        raise InvalidOption(f"--repaychaos-runner {spec}: cannot load it ({exc})") from None


def _target_runner(target_file: str, time_scale: float | None) -> Callable[..., ResultRecord]:
    """A runner for a black-box target run of each scenario (``--repaychaos-target``)."""
    from repaychaos.load.blackbox import run_target
    from repaychaos.target import load_target

    target = load_target(target_file)

    def run(scenario: Scenario, fail_on_inconclusive: bool = True) -> ResultRecord:
        return run_target(scenario, target, target_file=target_file, time_scale=time_scale,
                          fail_on_inconclusive=fail_on_inconclusive)

    return run


def _call_runner(runner: Callable[..., ResultRecord], scenario: Scenario, options: dict[str, Any]) -> ResultRecord:
    """Pass only the options the runner accepts (custom runners may take fewer)."""
    params = inspect.signature(runner).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in options.items() if v is not None and (takes_any or k in params)}
    return runner(scenario, **kwargs)


class ScenarioFile(pytest.File):
    """A scenario file; its items are its SLOs. The run happens once, on first use."""

    def collect(self) -> Iterator["SloItem"]:
        from repaychaos.scenarios import load_scenario

        scenario = load_scenario(self.path)
        self.scenario = scenario
        text = self.path.read_text(encoding="utf-8")
        for rule in scenario.slo:
            yield SloItem.from_parent(self, name=f"slo[{rule.key}]", rule_key=rule.key, rule_text=rule.rule,
                                      line=_line_of(text, rule.key))

    def run(self) -> ResultRecord:
        """The scenario's result record, computed once per session (errors are cached too)."""
        config = self.config
        runs = config.stash[_RUNS]
        key = str(self.path.resolve())
        if key not in runs:
            try:
                runs[key] = self._run()
            except Exception as exc:  # re-raised for every SLO item of this scenario
                runs[key] = exc
        outcome = runs[key]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def _run(self) -> ResultRecord:
        config = self.config
        target_file = config.getoption("--repaychaos-target")
        if target_file:
            runner = _target_runner(target_file, config.getoption("--repaychaos-time-scale"))
        else:
            runner = _load_runner(config.getoption("--repaychaos-runner") or DEFAULT_RUNNER)
        options = {
            "replications": config.getoption("--repaychaos-replications"),
            "fail_on_inconclusive": not config.getoption("--repaychaos-allow-inconclusive"),
            "progress": False,
        }
        result = _call_runner(runner, self.scenario, options)
        out = config.getoption("--repaychaos-out")
        if out:
            from repaychaos.core.result import write_result
            from repaychaos.reports.render import write_report

            folder = Path(out) / f"{self.scenario.name}-{result.get('source', 'result')}"
            write_result(result, folder)
            write_report([result], folder)
        return result

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        from repaychaos.core.errors import RepaychaosError

        if isinstance(excinfo.value, RepaychaosError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


def _line_of(text: str, key: str) -> int | None:
    """0-based line of an SLO key in the file (for pytest's location), if it can be found."""
    pattern = re.compile(r"^\s*['\"]?" + re.escape(key) + r"['\"]?\s*:")
    for i, line in enumerate(text.splitlines()):
        if pattern.match(line):
            return i
    return None


class SloItem(pytest.Item):
    """One SLO of one scenario: passes on ``pass``, fails with the observed value otherwise."""

    def __init__(self, *, rule_key: str, rule_text: str, line: int | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.rule_key = rule_key
        self.rule_text = rule_text
        self.line = line
        self.add_marker(pytest.mark.repaychaos)

    @property
    def scenario_file(self) -> ScenarioFile:
        """The scenario file this SLO belongs to (the item's parent)."""
        parent = self.parent
        if not isinstance(parent, ScenarioFile):
            raise TypeError(f"{self.nodeid}: an SLO item outside a scenario file")
        return parent

    def runtest(self) -> None:
        from repaychaos.reports.fmt import slo_sentence

        result = self.scenario_file.run()
        row = next((r for r in result.get("slo", []) if r.get("metric") == self.rule_key), None)
        if row is None:
            raise SloNotMet({"metric": self.rule_key, "rule": self.rule_text, "observed": None,
                             "verdict": "fail", "passed": False})
        verdict = row.get("verdict") or ("pass" if row.get("passed") else "fail")
        for name in ("observed", "ci95", "verdict"):
            if name in row:
                self.user_properties.append((name, row[name]))
        if verdict == "pass":
            return
        if verdict == "inconclusive" and row.get("passed"):
            try:  # report the skip at the scenario file, not inside this plugin
                raise pytest.skip.Exception(slo_sentence(row), _use_item_location=True)
            except TypeError:  # pragma: no cover - a pytest without that keyword
                pytest.skip(slo_sentence(row))
        raise SloNotMet(row)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        from repaychaos.core.errors import RepaychaosError
        from repaychaos.reports.fmt import slo_sentence

        if isinstance(excinfo.value, SloNotMet):
            scenario = getattr(self.scenario_file, "scenario", None)
            name = scenario.name if scenario is not None else self.scenario_file.path.name
            return f"SLO not met in scenario '{name}' ({self.scenario_file.path.name}):\n  {slo_sentence(excinfo.value.row)}"
        if isinstance(excinfo.value, RepaychaosError):
            return f"{type(excinfo.value).__name__}: {excinfo.value}"
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, self.line, f"slo {self.rule_key} {self.rule_text}"
