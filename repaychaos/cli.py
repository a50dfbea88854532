"""The ``repaychaos`` command line (docs/reference/cli.md). Thin: it resolves input, calls one entry
point, writes and prints the record, and maps errors to exit codes.

Exit codes: 0 SLOs met, 1 an SLO failed (or model and measurement disagree for ``run``),
2 bad input (no traceback; ``--debug`` shows one), 3 a run that could not finish,
130 interrupted.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import click

from repaychaos.core.errors import InvalidInput, RepaychaosError
from repaychaos.core.types import ResultRecord

if TYPE_CHECKING:
    from repaychaos.load.swarm import WebUI
    from repaychaos.scenarios import Scenario

__all__ = ["main", "cli"]

_DEBUG = False


def _fail(exc: BaseException) -> None:
    code = getattr(exc, "exit_code", 1)
    if _DEBUG:
        raise exc
    text = str(exc)
    prefix = "repaychaos: " if code != 2 else "repaychaos: invalid input: "
    if "\n" in text:
        click.echo(prefix.rstrip(": ") + ":", err=True)
        for line in text.splitlines():
            click.echo("  " + line, err=True)
    else:
        click.echo(prefix + text, err=True)
    sys.exit(code)


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command body, translating our errors into one-line messages and exit codes."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except RepaychaosError as exc:
            _fail(exc)
        except KeyboardInterrupt:
            click.echo("repaychaos: interrupted", err=True)
            sys.exit(130)

    return wrapper


def _scenario(name_or_path: str) -> Any:
    from repaychaos.scenarios import resolve_scenario

    scenario = resolve_scenario(name_or_path)
    _warn(scenario)
    return scenario


def _wall(text: str | None) -> float | None:
    from repaychaos.scenarios.units import parse_duration

    if text is None:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InvalidInput(f"--wall: expected {exc}, found {text!r}") from None


def _warn(scenario: Scenario) -> None:
    """Keys that are valid but do not change the run yet: said on stderr, never silently."""
    for note in getattr(scenario, "warnings", ()):
        click.echo(f"repaychaos: warning: {note}", err=True)


def _out_dir(out: str | None, scenario_name: str, source: str) -> Path:
    from repaychaos.core.result import default_out_dir

    return Path(out) if out else default_out_dir(scenario_name, source)


def _finish(result: ResultRecord, out_dir: Path) -> int:
    from repaychaos.core.result import write_result
    from repaychaos.reports.summary import format_summary

    path = write_result(result, out_dir)
    click.echo(format_summary(result))
    click.echo(f"  wrote {path}")
    if _not_a_measurement(result):
        return 3
    return 0 if result["passed"] else 1


def _not_a_measurement(result: ResultRecord) -> bool:
    """A load run that could not keep up (``run.validity``): the reasons on stderr; True if so."""
    run = result.get("run") or {}
    resolution = run.get("time_resolution") or {}
    if resolution.get("ok") is False:
        click.echo(f"repaychaos: warning: time resolution not ok: {resolution.get('why')}", err=True)
    valid = run.get("validity") or {}
    if valid.get("ok", True):
        return False
    click.echo("repaychaos: not a measurement (verdict inconclusive): the run could not keep up:", err=True)
    for why in valid.get("why") or ():
        click.echo(f"  - {why}", err=True)
    return True


_inconclusive = click.option(
    "--inconclusive",
    type=click.Choice(["fail", "pass"]),
    default="fail",
    show_default=True,
    help="How an SLO whose 95% interval straddles the threshold counts in the exit status.",
)
_progress = click.option("--progress/--no-progress", default=None, help="Progress bar (default: when stderr is a terminal).")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.version_option(package_name="repaychaos")
def cli(debug: bool) -> None:
    """How often, and for how long, do users see a stale "unusable" account after repaying?

    Scenario format: docs/reference/scenario-format.md (every key, unit, fault type, distribution and SLO
    key); `repaychaos schema` prints it as a JSON Schema for editors.
    """
    global _DEBUG
    _DEBUG = debug


@cli.command()
@click.argument("files", nargs=-1, required=True)
def validate(files: Sequence[str]) -> None:
    """Check scenario and target files (exit 0 valid, 2 invalid)."""
    from repaychaos.scenarios import resolve_scenario

    from repaychaos.target import is_target_file, load_target

    bad = 0
    for file in files:
        try:
            if is_target_file(file):
                target = load_target(file)
                click.echo(f"ok {file}: target {target.base_url}, {len(target.faults)} fault action(s)")
                continue
            scenario = resolve_scenario(file)
        except InvalidInput as exc:
            bad += 1
            for line in str(exc).splitlines():
                click.echo(line, err=True)
            continue
        _warn(scenario)
        click.echo(
            f"ok {file}: {scenario.name}, {len(scenario.faults)} fault(s), {len(scenario.slo)} SLO(s)"
        )
    sys.exit(2 if bad else 0)


@cli.command("list")
def list_() -> None:
    """The bundled scenarios, one line each."""
    from repaychaos.scenarios import bundled_scenarios, load_scenario
    from repaychaos.scenarios.units import format_duration

    rows = []
    for name, path in bundled_scenarios().items():
        scenario = load_scenario(path)
        peak = max(rate for _, rate in scenario.workload.arrivals.steps)
        faults = ", ".join(sorted({f.type for f in scenario.faults})) or "-"
        rows.append((name, format_duration(scenario.duration), f"{peak:g}/s", faults, scenario.description))
    header = ("SCENARIO", "LENGTH", "PEAK", "FAULTS", "DESCRIPTION")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].rjust(widths[2]), row[3].ljust(widths[3])]
        click.echo("  ".join(cells) + "  " + row[4])


@cli.command()
@click.argument("scenario")
@click.option("--seed", type=int, default=None, help="Override the scenario's seed.")
@click.option("--replications", type=click.IntRange(1), default=None, help="Override the number of replications.")
@click.option("--processes", type=click.IntRange(1), default=None, help="Worker processes (default: one per core).")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run the replications on an existing Dask cluster (extra 'dask') instead of local processes.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Output folder (default reports/out/<scenario>-sim).")
@click.option("--engine", type=click.Choice(["fast", "events"]), default="fast", show_default=True,
              help="fast: bulk computation between the instants that matter; events: the event-driven SimPy "
                   "reference. Same results (docs/explanation/semantics.md).")
@_inconclusive
@_progress
@_guarded
def sim(scenario: str, seed: int | None, replications: int | None, processes: int | None, scheduler: str | None,
        out: str | None, engine: str, inconclusive: str, progress: bool | None) -> None:
    """Run the model of SCENARIO (a path or a bundled name)."""
    sc = _scenario(scenario)
    from repaychaos.sim.simulate import run_model

    result = run_model(sc, seed=seed, replications=replications, processes=processes, scheduler=scheduler,
                       progress=progress, fail_on_inconclusive=inconclusive == "fail", engine=engine)
    sys.exit(_finish(result, _out_dir(out, sc.name, "sim")))


@contextlib.contextmanager
def _live_metrics(port: int | None, source: str) -> Iterator[None]:
    """With ``--metrics-port``: the environment that makes the run's Locust processes serve
    /metrics (repaychaos.integrations.locust_plugin), restored afterwards; the URL on stderr."""
    if port is None:
        yield
        return
    import os

    from repaychaos.load.launcher import free_port
    from repaychaos.load.swarm import STALENESS_PLUGIN

    port = port or free_port()
    plugins = [p for p in os.environ.get("REPAYCHAOS_LOCUST_PLUGINS", "").split(",") if p]
    values = {"REPAYCHAOS_LOCUST_PLUGINS": ",".join([*plugins, STALENESS_PLUGIN]),
              "REPAYCHAOS_METRICS_PORT": str(port), "REPAYCHAOS_METRICS_SOURCE": source}
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    click.echo(f"live metrics: http://127.0.0.1:{port}/metrics (while the run goes on)", err=True)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _metrics_port(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--metrics-port PORT`` for a command with a ``target`` option: the run serves its staleness live."""

    @click.option("--metrics-port", type=click.IntRange(0, 65535), default=None, metavar="PORT",
                  help="Serve the run's staleness live (stale share, time to usable, faults in force) in Prometheus "
                       "text format at http://127.0.0.1:PORT/metrics (0: a free port); the URL is printed "
                       "(docs/how-to/live-dashboards.md).")
    @functools.wraps(command)
    def with_metrics(*args: Any, metrics_port: int | None, **kwargs: Any) -> Any:
        with _live_metrics(metrics_port, "target" if kwargs.get("target") else "load"):
            return command(*args, **kwargs)

    return with_metrics


def _web_ui_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--web-ui``, ``--web-port``, ``--web-host``: the run's Locust serves its web UI with the
    Staleness tab (checked inside :func:`_guarded`, so a taken port is a one-line error)."""

    @click.option("--web-ui", "web_ui", is_flag=True,
                  help="Run Locust with its web UI instead of headless: a Staleness tab and a chart at /staleness "
                       "show the stale share and time to usable while the run goes on (docs/how-to/locust-web-ui.md). "
                       "The run starts, ends and exits as without it; the URL is printed.")
    @click.option("--web-port", type=click.IntRange(0, 65535), default=8089, show_default=True, metavar="PORT",
                  help="Port of the web UI (0: a free one).")
    @click.option("--web-host", default="127.0.0.1", show_default=True, metavar="HOST",
                  help="Address the web UI listens on (beyond loopback only with --allow-remote).")
    @functools.wraps(command)
    def with_web_ui(*args: Any, web_ui: bool, web_port: int, web_host: str, **kwargs: Any) -> Any:
        from repaychaos.load.swarm import web_ui as make_web_ui

        web = make_web_ui(web_port, web_host, bool(kwargs.get("allow_remote"))) if web_ui else None
        return command(*args, web=web, **kwargs)

    return with_web_ui


@cli.command()
@click.argument("scenario")
@click.option("--time-scale", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Run K times faster than real time (default: arrivals take about a minute, longer when the "
                   "250 repayments/s cap needs it; the first line says how long the run takes and why).")
@click.option("--wall", "wall", default=None, metavar="DURATION",
              help="Pick the time scale so the run takes about this long (e.g. 2m); warns when the rate cap prevents it.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Output folder (default reports/out/<scenario>-load).")
@click.option("--host", default=None, help="Drive an already running service at this URL instead of starting one.")
@click.option("--allow-remote", is_flag=True, help="Allow --host (and --locust-master-bind, --web-host) to be a non-loopback address.")
@click.option("--locust-workers", type=click.IntRange(0), default=0, show_default=True,
              help="Local Locust workers (master/worker mode), each a shard of the arrivals; live and --target.")
@click.option("--locust-remote-workers", type=click.IntRange(0), default=0, show_default=True,
              help="Also wait for this many Locust workers from other machines (the command to run there is "
                   "printed; they have a minute to join).")
@click.option("--locust-master-bind", default="127.0.0.1", show_default=True, metavar="HOST",
              help="Address the Locust master listens on for workers (beyond loopback only with --allow-remote).")
@click.option("--max-wall", type=click.FloatRange(min=1), default=None, metavar="SECONDS",
              help="Hard wall-clock bound of the whole run (default: the scenario's compressed length plus a margin).")
@click.option("--keep-dir", type=click.Path(file_okay=False), default=None,
              help="Keep the service database, Locust records and logs in this folder.")
@click.option("--target", "target", default=None, metavar="TARGET.yaml",
              help="Drive your own service described by this target file, black-box (docs/reference/target-file.md; time scale 1 by default).")
@_metrics_port
@_inconclusive
@_progress
@_guarded
@_web_ui_options
def load(scenario: str, time_scale: float | None, wall: str | None, out: str | None, host: str | None,
         allow_remote: bool, locust_workers: int, locust_remote_workers: int, locust_master_bind: str,
         max_wall: float | None, keep_dir: str | None, target: str | None, inconclusive: str,
         progress: bool | None, web: WebUI | None = None) -> None:
    """Start the reference service, drive it with Locust, and measure SCENARIO (or --target: your service).

    The first line on stderr says how long the run takes in wall time and why; without a
    terminal a status line follows at least every 10 s.
    """
    sc = _scenario(scenario)
    if target is not None:
        out_dir = _out_dir(out, sc.name, "target")
        result = _run_target(sc, target, out_dir, time_scale, allow_remote, max_wall, inconclusive == "fail",
                             locust_workers, locust_remote_workers, locust_master_bind, web)
        sys.exit(_finish(result, out_dir))
    from repaychaos.load.runner import run_load

    out_dir = _out_dir(out, sc.name, "load")
    result = run_load(sc, time_scale=time_scale, allow_remote=allow_remote, host=host,
                      locust_workers=locust_workers, progress=progress, max_wall=max_wall, keep_dir=keep_dir,
                      fail_on_inconclusive=inconclusive == "fail", read_log=out_dir / "reads.jsonl.gz",
                      wall=_wall(wall), remote_workers=locust_remote_workers, master_bind=locust_master_bind,
                      web=web)
    sys.exit(_finish(result, out_dir))


def _run_target(sc: Scenario, target_file: str, out_dir: Path, time_scale: float | None, allow_remote: bool,
                max_wall: float | None, strict: bool, locust_workers: int = 0, remote_workers: int = 0,
                master_bind: str = "127.0.0.1", web: WebUI | None = None) -> ResultRecord:
    """A target run; a failed fault action (exit 3) still leaves its partial result.json."""
    from repaychaos.core.result import write_result
    from repaychaos.load.blackbox import ActionFailed, run_target
    from repaychaos.target import load_target

    try:
        return run_target(sc, load_target(target_file), target_file=target_file, time_scale=time_scale,
                          allow_remote=allow_remote, max_wall=max_wall, read_log=out_dir / "reads.jsonl.gz",
                          fail_on_inconclusive=strict, locust_workers=locust_workers,
                          remote_workers=remote_workers, master_bind=master_bind, web=web)
    except ActionFailed as exc:
        if exc.result is not None:
            click.echo(f"  wrote {write_result(exc.result, out_dir)} (partial)", err=True)
        raise


@cli.command()
@click.argument("scenario")
@click.option("--time-scale", type=click.FloatRange(min=0, min_open=True), default=None, help="For the load half.")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Output folder (default reports/out/<scenario>-run).")
@click.option("--target", "target", default=None, metavar="TARGET.yaml", help="Measure your own service instead of the reference one.")
@click.option("--allow-remote", is_flag=True, help="Allow a non-loopback target.")
@_inconclusive
@_progress
@_guarded
def run(scenario: str, time_scale: float | None, out: str | None, target: str | None, allow_remote: bool,
        inconclusive: str, progress: bool | None) -> None:
    """Model and measurement of SCENARIO, then a comparison and a report."""
    sc = _scenario(scenario)
    from repaychaos.load.runner import run_load
    from repaychaos.reports.compare import compare_results, comparison_text
    from repaychaos.reports.render import write_report
    from repaychaos.core.result import write_result
    from repaychaos.reports.summary import format_summary
    from repaychaos.scenarios.faults import target_refusal
    from repaychaos.sim.simulate import run_model

    refused = target_refusal(sc.faults) if target is not None else None
    if refused is not None:  # before the model runs: its half of the comparison would be wasted
        raise InvalidInput(f"{sc.name}: {refused}")
    out_dir = _out_dir(out, sc.name, "run")
    strict = inconclusive == "fail"
    sim_result = run_model(sc, progress=progress, fail_on_inconclusive=strict)
    write_result(sim_result, out_dir / "sim")
    click.echo(format_summary(sim_result))
    if target is not None:
        load_result = _run_target(sc, target, out_dir / "target", time_scale, allow_remote, None, strict)
        write_result(load_result, out_dir / "target")
    else:
        load_result = run_load(sc, time_scale=time_scale, progress=progress, fail_on_inconclusive=strict,
                               read_log=out_dir / "load" / "reads.jsonl.gz")
        write_result(load_result, out_dir / "load")
    click.echo(format_summary(load_result))
    comparison = compare_results(sim_result, load_result)
    paths = write_report([sim_result, load_result], out_dir, comparison=comparison)
    click.echo(comparison_text(comparison))
    for kind in ("comparison", "html", "markdown", "junit"):
        if kind in paths:
            click.echo(f"  wrote {kind}: {paths[kind]}")
    sys.exit(_run_exit(sim_result, load_result, comparison))


def _run_exit(sim_result: ResultRecord, load_result: ResultRecord, comparison: dict[str, Any]) -> int:
    """``run``'s exit status, with one line on stderr per reason it is not 0: a
    disagreement and an SLO failure are told apart."""
    if comparison.get("inconclusive"):
        click.echo(f"repaychaos: model and measurement NOT COMPARED: {comparison['inconclusive']}", err=True)
        _not_a_measurement(load_result)
        return 3
    agree = bool(comparison.get("agree", False))
    slo_ok = bool(sim_result["passed"] and load_result["passed"])
    if not agree:
        on = ", ".join(comparison.get("disagree_on") or ["(nothing comparable)"])
        click.echo(f"repaychaos: model and measurement DISAGREE on {on} (see comparison.json)", err=True)
    if not slo_ok:
        failed = [label for label, r in (("model", sim_result), ("measurement", load_result)) if not r["passed"]]
        click.echo(f"repaychaos: SLO gate failed for the {' and the '.join(failed)} "
                   f"(verdicts: model {sim_result.get('verdict')}, measurement {load_result.get('verdict')})", err=True)
    return 0 if agree and slo_ok else 1


@cli.command()
@click.argument("results", nargs=-1, required=True)
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Output folder (default: beside the first result).")
@_guarded
def report(results: Sequence[str], out: str | None) -> None:
    """HTML + Markdown report with plots, and JUnit XML, from result.json files."""
    from repaychaos.reports.render import write_report
    from repaychaos.core.result import read_result

    from repaychaos.reports.calibration import calibration_beside

    records = [read_result(path) for path in results]
    out_dir = Path(out) if out else Path(results[0]).parent
    # a calibration made from one of these results (calibration.json beside it) gets its section
    calibration = next((found for found in map(calibration_beside, results) if found is not None), None)
    paths = write_report(records, out_dir, calibration=calibration)
    for kind, path in paths.items():
        click.echo(f"wrote {kind}: {path}")


@cli.command()
@click.argument("scenario")
@click.option("--vary", "vary", multiple=True, metavar="KEY=V1,V2,...",
              help="A scenario key path and its values; several --vary form a grid.")
@click.option("--search", default=None, metavar="KEY=LOW..HIGH",
              help="Bisect one numeric key for the frontier instead of a fixed grid.")
@click.option("--frontier-key", default=None, metavar="KEY", help="Grid mode: the key whose best value per setting is the frontier.")
@click.option("--seed", type=int, default=None, help="Override the scenario's seed (the same for every point).")
@click.option("--replications", type=click.IntRange(1), default=None, help="Replications per point.")
@click.option("--processes", type=click.IntRange(1), default=None, help="Worker processes (default: one per core).")
@click.option("--scheduler", default=None, metavar="ADDRESS", help="Run points on an existing Dask cluster (extra 'dask').")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Output folder (default reports/out/<scenario>-sweep).")
@click.option("--inconclusive", type=click.Choice(["fail", "pass"]), default="fail", show_default=True,
              help="How a point whose SLO 95% interval straddles its threshold counts (per point).")
@_progress
@_guarded
def sweep(scenario: str, vary: Sequence[str], search: str | None, frontier_key: str | None, seed: int | None,
          replications: int | None, processes: int | None, scheduler: str | None, out: str | None,
          inconclusive: str, progress: bool | None) -> None:
    """A grid of model runs for capacity planning (sweep.json, sweep.csv, plots).

    Exit 0 when at least one point meets every SLO, 1 when none does, 2 bad input,
    3 a point could not finish.
    """
    sc = _scenario(scenario)
    if not vary and not search:
        raise InvalidInput("sweep needs at least one --vary KEY=V1,V2,... or --search KEY=LOW..HIGH")
    from repaychaos.reports.summary import summarize_sweep
    from repaychaos.reports.sweep_plots import write_sweep_plots
    from repaychaos.sim.sweep import run_sweep

    out_dir = _out_dir(out, sc.name, "sweep")
    outcome = run_sweep(sc, list(vary), out_dir=out_dir, processes=processes,
                        search=search, scheduler=scheduler, progress=progress, seed=seed,
                        replications=replications, fail_on_inconclusive=inconclusive == "fail",
                        frontier_key=frontier_key)
    outcome["paths"].update(write_sweep_plots(outcome["record"], Path(out_dir)))
    click.echo(summarize_sweep(outcome["record"]))
    for kind, path in (outcome.get("paths") or {}).items():
        click.echo(f"wrote {kind}: {path}")
    sys.exit(sweep_exit_code(outcome["record"]))


def sweep_exit_code(record: dict[str, Any]) -> int:
    """0 when at least one point met every SLO (a feasible setting exists), 1 when none did."""
    if any(row.get("passed") for row in record.get("rows", ())):
        return 0
    click.echo("repaychaos: no point of the sweep met every SLO (no feasible setting in the range)", err=True)
    return 1


@cli.command()
@click.option("--target", "target", is_flag=True, help="The target file format (docs/reference/target-file.md) instead of the scenario format.")
@_guarded
def schema(target: bool) -> None:
    """Print the JSON Schema (draft 2020-12) of the scenario format (or --target: the target file format).

    Generated from the scenario model; the same file is committed as
    docs/reference/scenario.schema.json. Reference: docs/reference/scenario-format.md.
    """
    if target:
        import json

        from repaychaos.target import target_schema

        click.echo(json.dumps(target_schema(), indent=2))
        return
    from repaychaos.scenarios.reference import schema_text

    click.echo(schema_text(), nl=False)


@cli.command()
@click.option("--scenario", default=None, help="Scenario (path or bundled name) that configures the stages and faults.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Bind address (loopback unless you say otherwise).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--db", type=click.Path(dir_okay=False), default=None, help="SQLite file (default: a new temporary file).")
@click.option("--time-scale", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True)
@click.option("--max-backlog", type=click.IntRange(min=1), default=None,
              help="Outbox events held before POST /repayments sheds with 503 + Retry-After "
                   "(default: 5 minutes of the scenario's peak rate, or its longest fault window, x1.5; at least 1000).")
@click.option("--client-timeout", type=click.FloatRange(min=0, min_open=True), default=10.0, show_default=True,
              metavar="SECONDS", help="Time a client has to send a request head, then its body, before a 408 closes "
                                      "the connection (slow clients cannot hold connections open).")
@_guarded
def serve(scenario: str | None, host: str, port: int, db: str | None, time_scale: float,
          max_backlog: int | None, client_timeout: float) -> None:
    """The reference service alone (docs/reference/http-api.md)."""
    sc = _scenario(scenario) if scenario else None
    from repaychaos.service.serve import serve as serve_service

    serve_service(sc, host=host, port=port, db=db, time_scale=time_scale, max_backlog=max_backlog,
                  client_timeout=client_timeout)


@cli.command()
@click.argument("result", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Scenario file to write (default calibrated.yaml beside RESULT).")
@click.option("--report/--no-report", default=True, show_default=True,
              help="Run the model on the calibrated scenario and write one report of it beside the measurement "
                   "(calibrated-sim/, calibration-report/).")
@_progress
@_guarded
def calibrate(result: str, out: str | None, report: bool, progress: bool | None) -> None:
    """Fit a model scenario to a live or target measurement (exit 0 fitted, 1 poor fit, 2 bad input)."""
    from repaychaos.calibrate import calibrate as run_calibration
    from repaychaos.calibrate.loop import close_loop

    record = run_calibration(result, out)
    if report:
        for kind, path in close_loop(record, result, progress=progress).items():
            if kind in ("sim", "html"):
                record["paths"]["calibrated model" if kind == "sim" else "report"] = path
    chosen, cap = record["chosen"], record["capacity"]
    click.echo(f"calibrate {result}: {chosen['family']} delay, median {chosen['median']:.4g}s p95 {chosen['p95']:.4g}s "
               f"({record['data']['users']} users); fit gap {record['goodness']['max_gap']:.3f} "
               f"(p={record['goodness']['p_value']:.2f}), "
               f"model RMS {record['model_check']['rms']}: {record['verdict'].upper()}")
    click.echo("  capacity: " + (f"{cap['workers']} workers, service {cap['service_mean']:.4g}s" if cap.get("fitted")
                                 else cap["reason"]))
    for reason in record["reasons"]:
        click.echo(f"  poor: {reason}", err=True)
    for kind, path in record["paths"].items():
        click.echo(f"  wrote {kind}: {path}")
    sys.exit(0 if record["verdict"] == "good" else 1)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="repaychaos")


if __name__ == "__main__":  # pragma: no cover
    main()
