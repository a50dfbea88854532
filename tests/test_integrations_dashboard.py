"""The Grafana dashboard and its Prometheus setup: every query names a metric a short run exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from repaychaos.load.launcher import ServiceProcess, free_port, stop_process
from repaychaos.scenarios import load_scenario_data

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "dashboards"
DASHBOARD = json.loads((DASHBOARDS / "repaychaos-live.json").read_text(encoding="utf-8"))
METRIC = re.compile(r"\brepaychaos_[a-z0-9_]+")


def _queries() -> list[str]:
    """Every PromQL expression in the dashboard: panel targets, annotations, template variables."""
    out = [t["expr"] for p in DASHBOARD["panels"] for t in p.get("targets", [])]
    out += [a["expr"] for a in DASHBOARD["annotations"]["list"] if "expr" in a]
    out += [v["definition"] for v in DASHBOARD["templating"]["list"] if v["type"] == "query"]
    return out


def _names(text: str) -> set[str]:
    return {s.name for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_dashboard_is_provisionable() -> None:
    """A stable uid and title, panels on the grid with a Prometheus query each, the data source
    picked by a variable, and the fault windows (run and service) as annotations."""
    assert DASHBOARD["uid"] == "repaychaos-live" and DASHBOARD["title"]
    assert isinstance(DASHBOARD["schemaVersion"], int)
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    for p in DASHBOARD["panels"]:
        assert {"h", "w", "x", "y"} <= set(p["gridPos"]), p["title"]
        if p["type"] == "row":
            continue
        assert p["targets"], p["title"]
        for t in p["targets"]:
            assert t["datasource"]["uid"] == "${datasource}" and METRIC.search(t["expr"]), (p["title"], t)
    annotations = [a for a in DASHBOARD["annotations"]["list"] if "expr" in a]
    assert {m for a in annotations for m in METRIC.findall(a["expr"])} == {"repaychaos_run_fault_active",
                                                                          "repaychaos_faults_active"}


def test_provisioning_points_grafana_at_the_dashboard_and_prometheus() -> None:
    """The compose file mounts the dashboard where the provider reads it, and the data source is the
    Prometheus that dashboards/prometheus.yml configures."""
    compose = yaml.safe_load((DASHBOARDS / "docker-compose.yml").read_text())
    provider = yaml.safe_load((DASHBOARDS / "grafana/provisioning/dashboards/repaychaos.yaml").read_text())
    source = yaml.safe_load((DASHBOARDS / "grafana/provisioning/datasources/prometheus.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    path = provider["providers"][0]["options"]["path"]
    assert any(m.startswith("./repaychaos-live.json:" + path + "/") for m in mounts)
    (ds,) = source["datasources"]
    assert ds["type"] == "prometheus" and ds["url"].endswith(":9090")
    assert "--web.listen-address=127.0.0.1:9090" in compose["services"]["prometheus"]["command"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed (apt: prometheus)")
def test_promtool_accepts_the_config_and_every_query(tmp_path: Path) -> None:
    """``promtool check config`` accepts dashboards/prometheus.yml, and ``promtool check rules`` parses
    every dashboard query (Grafana's variables replaced by values) as PromQL."""
    proc = subprocess.run(["promtool", "check", "config", str(DASHBOARDS / "prometheus.yml")], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    exprs = [q for q in _queries() if not q.startswith("label_values(")]
    exprs = [q.replace("$__rate_interval", "1m").replace("$scenario", ".*").replace("$source", ".*") for q in exprs]
    rules = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:query{i}", "expr": e}
                                                        for i, e in enumerate(exprs)]}]}
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    proc = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


TINY = {
    "version": 1, "name": "dashboard-check", "description": "a short run for the dashboard test",
    "duration": "60s", "seed": 3,
    "workload": {"arrivals": {"rate": "4/s"}, "check": {"first_after": "2s", "every": "2s", "max_checks": 3}},
    "pipeline": {"channel": {"latency": "20ms"}, "sync": {"workers": 4, "service": "100ms"},
                 "credit": {"service": "20ms", "risk_hold_ratio": 0}},
    "faults": [{"type": "maintenance", "name": "short-pause", "component": "sync", "mode": "pause", "at": "20s",
                "for": "10s"}],
}


@pytest.mark.live
def test_every_dashboard_metric_is_exported_by_a_short_run(tmp_path: Path) -> None:
    """``repaychaos load --metrics-port`` against a running reference service: the URL it prints
    serves the run's metrics while it goes on, and every metric the dashboard queries is among
    the samples of that endpoint or of the service's /metrics."""
    scenario = load_scenario_data(TINY)
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    port = free_port()
    with ServiceProcess(scenario, tmp_path / "service.db", time_scale=6.0, token="dash-token") as service:
        env = dict(os.environ, REPAYCHAOS_TOKEN="dash-token")
        cmd = [sys.executable, "-m", "repaychaos", "load", str(path), "--host", service.url, "--metrics-port",
               str(port), "--max-wall", "90", "--out", str(tmp_path / "out"), "--no-progress"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        run_text, end = "", time.time() + 60
        try:
            while time.time() < end and proc.poll() is None:
                try:
                    run_text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                    if 'scenario="dashboard-check"' in run_text:
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.5)
            service_text = requests.get(service.url + "/metrics", timeout=10).text
        finally:
            out = _finish(proc)
    assert f"live metrics: http://127.0.0.1:{port}/metrics" in out
    assert 'scenario="dashboard-check"' in run_text and 'source="load"' in run_text, out[-2000:]
    exported = _names(run_text) | _names(service_text)
    used = {m for q in _queries() for m in METRIC.findall(q)}
    assert used - exported == set()
    # and the other way round: the dashboard shows every family the run's exporter has
    run_families = {f.name for f in text_string_to_metric_families(run_text)}
    assert {re.sub(r"_(total|bucket)$", "", m) for m in used} >= run_families


def _finish(proc: subprocess.Popen[Any]) -> str:
    try:
        out, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        stop_process(proc, 10.0)
        out, _ = proc.communicate()
    return str(out)
