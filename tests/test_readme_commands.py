"""Every `repaychaos` command in the README runs (and none exits 2).

The default suite runs every command that needs no load run (list, validate, schema, sim,
report, sweep, serve) and parses the others' command lines with the real CLI (options,
types, the scenario and files they name); the soak runs them all, in README order.
Shortened where the README's command is long (the whole walk takes about a minute and a half):

- bundled scenarios are replaced by copies cut to 10 minutes of scenario time with one
  replication and a constant 2 s `first_after` (the bundled lognormal's 1e-4 tail would
  make each live run wait minutes for late users); the copy keeps the name, faults and SLOs;
- `load` and `run` get `--time-scale 30` (20 s of arrivals);
- `serve` gets a free port and a temporary database, and is stopped once `/healthz`
  answers (it runs until stopped);
- `calibrate` fits the last `load` run's result (its read log);
- `load ... --target FILE` runs against a reference service started on a free port (the
  target file's copy points there) with the token the target file reads from the environment;
- `sim`/`sweep` keep their options but `--replications 1` is added;
- `validate bad.yaml` and `validate indent.yaml` are the README's error examples: they must
  exit 2 and print exactly what the README shows.

Not run: `make`, `pytest`, `locust`, `curl` lines (not `repaychaos` commands).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from repaychaos.scenarios import bundled_scenarios

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")

pytestmark = pytest.mark.live

#: Verbs that drive a load run (seconds to minutes each): run in the soak, parsed in the default suite.
LOAD_VERBS = ("load", "run", "calibrate")

BAD_YAML = """\
version: 1
name: bad-example
duration: 1h
workload:
  arrivals:
    rate: 8/s
  check:
    first_after: 5s
pipeline:
  sync:
    servise: 100ms
    workers: true
faults:
  - type: sync_dely
    at: 10m
  - type: interface_bug
    link: sync->credit
    drop_ratio: 1.5
"""

INDENT_YAML = "version: 1\nname: t\nworkload:\n  arrivals:\n    rate: 2/s\n   check: {every: 30s}\n"


def readme_commands() -> list[str]:
    """`repaychaos ...` lines of the README's code blocks (comments and `&` dropped)."""
    out = []
    for block in re.findall(r"```(?:sh|bash|)\n(.*?)```", README, flags=re.DOTALL):
        for line in block.splitlines():
            line = line.strip().removeprefix("$ ")
            if not line.startswith("repaychaos "):
                continue
            out.append(re.sub(r"\s+#.*$", "", line).rstrip(" &"))
    return out


def shortened(name: str, folder: Path) -> Path:
    data = yaml.safe_load(Path(bundled_scenarios()[name]).read_text(encoding="utf-8"))
    data["duration"] = "10m"
    data["warmup"] = "1m"
    data["replications"] = 1
    data["workload"].setdefault("check", {})["first_after"] = "2s"
    data["faults"] = [dict(f, at="3m", **({"for": "2m"} if "for" in f else {})) for f in data.get("faults", [])]
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _shown_output(command: str) -> list[str]:
    """The lines the README shows after `$ command`."""
    block = README[README.index(f"$ {command}\n") + len(command) + 3:]
    return [line for line in block.split("```")[0].split("$ ")[0].splitlines() if line]


def test_readme_lists_the_commands_this_test_knows():
    verbs = sorted({shlex.split(c)[1] for c in readme_commands()})
    assert verbs == ["calibrate", "list", "load", "report", "run", "schema", "serve", "sim", "sweep", "validate"]


def test_every_readme_command_runs_or_parses(tmp_path):
    """Commands without a load run run; `load`, `run` and `calibrate` parse and name what exists."""
    _walk(tmp_path, run_load_verbs=False)


@pytest.mark.soak
def test_every_readme_command_runs(tmp_path):
    _walk(tmp_path, run_load_verbs=True)


def _parses(argv: list[str], work: Path) -> str | None:
    """Why the CLI would refuse ``argv`` before running anything (None: it would not)."""
    import click

    from repaychaos.cli import cli
    from repaychaos.core.errors import RepaychaosError
    from repaychaos.scenarios import resolve_scenario

    try:
        sub = cli.commands[argv[1]].make_context(argv[1], list(argv[2:]))
    except click.ClickException as exc:
        return exc.format_message()
    params = sub.params
    try:
        if "scenario" in params:
            given = Path(params["scenario"])
            found = next((str(p) for p in (given, work / given, ROOT / given) if p.is_file()), params["scenario"])
            resolve_scenario(found)
    except RepaychaosError as exc:
        return str(exc)
    if params.get("target") and not (ROOT / params["target"]).is_file():
        return f"target file {params['target']} does not exist"
    return None


def _walk(tmp_path: Path, run_load_verbs: bool) -> None:
    names = set(bundled_scenarios())
    work = tmp_path / "work"
    work.mkdir()
    (work / "bad.yaml").write_text(BAD_YAML)
    (work / "indent.yaml").write_text(INDENT_YAML)
    copies = {name: shortened(name, tmp_path) for name in names}
    (work / "my-scenario.yaml").write_text(copies["nightly-maintenance"].read_text())
    results: list[str] = []
    live_results: list[str] = []
    failures = []
    for index, command in enumerate(readme_commands()):
        argv = shlex.split(command.split(">")[0])
        out = tmp_path / "out" / f"{index}-{argv[1]}"
        verb = argv[1]
        argv = [str(copies[a]) if a in names else a for a in argv]
        if verb in ("sim", "sweep") and "--replications" not in argv:
            argv += ["--replications", "1"]
        if verb in ("sim", "sweep", "load", "run"):
            argv += ["--out", str(out)]
        if verb in ("load", "run"):
            argv += ["--time-scale", "30"]
        if verb == "report":
            assert results, "the README shows `report` before any `sim`"
            argv = argv[:2] + results
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if verb == "serve":
            port = _free_port()
            argv[argv.index("--port") + 1] = str(port)
            argv[argv.index("--db") + 1] = str(tmp_path / "ledger.sqlite")
            proc = subprocess.Popen([sys.executable, "-m", "repaychaos", *argv[1:]], cwd=work, env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            import requests

            up = False
            for _ in range(100):
                try:
                    up = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
                except requests.RequestException:
                    pass
                if up or proc.poll() is not None:
                    break
                time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
            if not up:
                failures.append(f"{command}: never answered /healthz (exit {proc.returncode})")
            continue
        if verb in LOAD_VERBS and not run_load_verbs:
            why = _parses(argv, work)
            if why is not None:
                failures.append(f"{command}: the CLI refuses it: {why}")
            continue
        if verb == "calibrate":
            assert live_results, "the README shows `calibrate` before any `load`"
            argv = argv[:2] + [live_results[-1]] + argv[3:]
        if verb in ("load", "run") and "--target" in argv:
            proc = _run_against_reference_service(argv, work, env, tmp_path)
        else:
            proc = subprocess.run([sys.executable, "-m", "repaychaos", *argv[1:]], cwd=work, env=env,
                                  capture_output=True, text=True, timeout=600)
        if argv[1:3] in (["validate", "bad.yaml"], ["validate", "indent.yaml"]):
            if proc.returncode != 2 or proc.stderr.splitlines() != _shown_output(command):
                failures.append(f"{command}: exit {proc.returncode}, printed\n{proc.stderr}")
            continue
        # exit 3 only as a run that said its reads landed too late on this busy machine (and nothing else)
        unresolved = (proc.returncode == 3 and "time resolution not ok" in proc.stderr
                      and proc.stderr.count("\n  - ") == 1 and "\n  - time resolution" in proc.stderr)
        if proc.returncode not in (0, 1) and not unresolved:
            failures.append(f"{command}: exit {proc.returncode}\n{proc.stderr[-2000:]}")
        if verb == "sim" and (out / "result.json").exists():
            results.append(str(out / "result.json"))
        if verb == "load" and (out / "reads.jsonl.gz").exists():
            live_results.append(str(out / "result.json"))
    assert not failures, "\n\n".join(failures)


def _run_against_reference_service(argv: list[str], work: Path, env: dict[str, str],
                                   tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """A `--target` command, with the reference service it describes started on a free port."""
    from repaychaos.load.launcher import ServiceProcess
    from repaychaos.scenarios import resolve_scenario

    index = argv.index("--target") + 1
    target = yaml.safe_load((ROOT / argv[index]).read_text(encoding="utf-8"))
    argv = [str(ROOT / a) if a.startswith("loadtests/") else a for a in argv]
    with ServiceProcess(resolve_scenario("quiet-baseline"), tmp_path / "target.db", token="readme-token") as svc:
        target["base_url"] = svc.url
        copy = tmp_path / "target.yaml"
        copy.write_text(yaml.safe_dump(target), encoding="utf-8")
        argv[index] = str(copy)
        return subprocess.run([sys.executable, "-m", "repaychaos", *argv[1:]], cwd=work,
                              env=dict(env, REPAYCHAOS_TOKEN="readme-token"), capture_output=True, text=True,
                              timeout=600)
