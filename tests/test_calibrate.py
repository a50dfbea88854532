"""`repaychaos calibrate`: fitted parameters against the known truth of the reference service,
measured black-box (target mode, short runs at a high time scale), the command and its report,
and bad input. The whole loop on a bundled scenario as shipped is a soak test."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from builders import scenario_data
from honest import resolved_exit
from synthetic import synthetic_result

from repaychaos.calibrate import calibrate
from repaychaos.core.result import write_result
from repaychaos.load.blackbox import run_target
from repaychaos.load.launcher import ServiceProcess
from repaychaos.scenarios import load_scenario, load_scenario_data
from repaychaos.target import load_target

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "calibrate-test-token"
K = 5.0


def _measure(tmp_path: Path, sync: dict, duration: str = "90s", arrivals: dict | None = None) -> Path:
    """A target run of the reference service with this sync stage; users first look at a
    uniform instant in the first second, then every second (so each user's delay is known
    to within a second: the interval-censored data the fit expects)."""
    scenario = load_scenario_data(scenario_data(
        {"workload": {"arrivals": arrivals or {"rate": "8/s"},
                      "check": {"first_after": {"dist": "uniform", "low": "0s", "high": "1s"}, "every": "1s",
                                "max_checks": 25}},
         "pipeline": {"channel": {"latency": 0}, "credit": {"service": 0}, "reconcile": "off", "sync": sync}},
        name="calibrate-check", duration=duration, warmup=None, seed=5, replications=None))
    text = (ROOT / "loadtests" / "targets" / "reference-service.yaml").read_text().split("\nfaults:")[0]
    with ServiceProcess(scenario, tmp_path / "svc.db", time_scale=K, token=TOKEN) as svc:
        (tmp_path / "target.yaml").write_text(text.replace("http://127.0.0.1:8000", svc.url))
        result = run_target(scenario, load_target(tmp_path / "target.yaml"), time_scale=K,
                            read_log=tmp_path / "out" / "reads.jsonl.gz")
    return write_result(result, tmp_path / "out")


#: The sync stages of the two measurements the tests fit.
LOGNORMAL = {"workers": "unlimited", "service": {"dist": "lognormal", "median": "1.5s", "p95": "4s"}}
EXPONENTIAL = {"workers": "unlimited", "service": {"dist": "exponential", "mean": "2s"}}


@pytest.fixture(scope="module")
def measurements(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Measured result.json files (with their read logs) of unlimited workers with lognormal(median
    1.5 s, p95 4 s) and with exp(mean 2 s) service: two services measured at once (each run is
    ~40 repayments/s wall and waits on the clock, so the pair takes the wall time of one)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        runs = {name: pool.submit(_measure, tmp_path_factory.mktemp(name), sync)
                for name, sync in (("lognormal", LOGNORMAL), ("exponential", EXPONENTIAL))}
        return {name: run.result() for name, run in runs.items()}


@pytest.fixture(scope="module")
def lognormal_measurement(measurements: dict[str, Path]) -> Path:
    return measurements["lognormal"]


@pytest.mark.live
def test_a_lognormal_delay_is_recovered(lognormal_measurement):
    """Unlimited workers with lognormal(median 1.5 s, p95 4 s) service: AIC picks lognormal, the
    median within 10 %, and the calibrated model's staleness curve within 2 pp RMS of the
    measured (Turnbull) one. ~720 users: the median's standard error is about 3 %."""
    record = calibrate(lognormal_measurement)
    chosen = record["chosen"]
    # The measured delay is the lognormal sync time plus the pipeline's other (small, fixed)
    # stage times, so a shifted family may legitimately win AIC by a hair; what must hold is
    # a right-skewed family, not the memoryless exponential, and lognormal itself not rejected.
    aic = {f["family"]: f["aic"] for f in record["fits"]}
    assert chosen["family"] != "exponential", record["fits"]
    assert aic["lognormal"] <= chosen["aic"] + 10 or chosen["family"].endswith("lognormal"), record["fits"]
    assert abs(chosen["median"] - 1.5) <= 0.15
    assert record["model_check"]["rms"] <= 0.02
    assert record["verdict"] == "good", record["reasons"]
    written = load_scenario(record["paths"]["scenario"])  # the calibrated scenario loads, and says what it is
    # unlimited workers: the written delay is the credit stage's constant floor (0 unless the
    # chosen family is shifted) plus the sync service (lognormal as such, another family as
    # 200 of its quantiles); its median is the fitted one
    floor = written.pipeline.credit.service.mean
    assert abs(written.pipeline.sync.service.survival(chosen["median"] - floor) - 0.5) <= 0.02
    text = Path(record["paths"]["scenario"]).read_text()
    assert "interval-censored maximum likelihood" in text and "<- chosen" in text
    assert Path(record["paths"]["figure"]).stat().st_size > 10_000


@pytest.mark.live
def test_an_exponential_delay_is_not_mistaken_for_a_heavy_tail(measurements):
    """exp(mean 2 s): AIC picks a light-tailed family (exponential, or gamma/Weibull that contain
    it), lognormal loses clearly, and the mean comes out within 10 % (se about 4 %)."""
    record = calibrate(measurements["exponential"])
    aic = {f["family"]: f["aic"] for f in record["fits"]}
    assert record["chosen"]["family"] in ("exponential", "gamma", "weibull"), record["fits"]
    assert aic["lognormal"] > aic["exponential"] + 10
    assert abs(record["chosen"]["mean"] - 2.0) <= 0.2
    assert record["verdict"] == "good", record["reasons"]


@pytest.mark.soak
@pytest.mark.live
def test_capacity_from_a_three_level_ramp(tmp_path):
    """Two exp(mean 0.5 s) workers under 1, 2.5 and 3.5 repayments/s (utilisation 0.25..0.88):
    the fitted worker count is within 1 of 2, or the tool says plainly it cannot tell. (30 s of
    wall time: the soak; the fit itself is held to exact Erlang C means in the default suite.)"""
    path = _measure(tmp_path, {"workers": 2, "service": {"dist": "exponential", "mean": "500ms"}}, duration="150s",
                    arrivals={"profile": [{"at": "0s", "rate": "1/s"}, {"at": "50s", "rate": "2.5/s"},
                                          {"at": "100s", "rate": "3.5/s"}]})
    capacity = calibrate(path)["capacity"]
    assert len(capacity["levels"]) == 3
    if capacity["fitted"]:
        assert abs(capacity["workers"] - 2) <= 1, capacity
    else:
        assert "cannot tell" in capacity["reason"]


def test_a_constant_rate_cannot_tell_workers_from_service_time():
    """One arrival level: the capacity fit declines, saying why."""
    from repaychaos.calibrate.capacity import fit_capacity

    verdict = fit_capacity([{"rate": 8.0, "mean": 1.0, "se": 0.05, "users": 700}])
    assert not verdict["fitted"] and "cannot tell" in verdict["reason"]


def test_capacity_recovers_workers_from_exact_erlang_c_means():
    """Mean delays computed from M/M/3 with s = 0.4 s at three rates: c = 3 and s = 0.4 come back."""
    from repaychaos.calibrate.capacity import erlang_c_wait, fit_capacity

    levels = [{"rate": lam, "mean": 0.4 + erlang_c_wait(lam, 3, 0.4), "se": 0.01, "users": 500} for lam in (2, 5, 6.5)]
    verdict = fit_capacity(levels)
    assert verdict["fitted"] and verdict["workers"] == 3 and verdict["service_mean"] == pytest.approx(0.4, rel=1e-3)


@pytest.mark.parametrize("source", ["sim", "target"])
def test_bad_input_exits_2_with_a_clear_message(tmp_path, source):
    """A sim result (no reads measured) or a target result without its read log: exit 2, no traceback."""
    scenario = load_scenario(ROOT / "loadtests" / "targets" / "pause-sync-demo.yaml")
    path = write_result(synthetic_result(scenario, source=source), tmp_path)
    proc = subprocess.run([sys.executable, "-m", "repaychaos", "calibrate", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert ("has no measured reads" if source == "sim" else "no per-user read log") in proc.stderr
    missing = subprocess.run([sys.executable, "-m", "repaychaos", "calibrate", str(tmp_path / "nope.json")],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


@pytest.mark.live
def test_the_calibrate_command_reports_and_report_finds_the_calibration(lognormal_measurement, tmp_path):
    """The command-line loop on a short measurement (the soak test below runs it on a bundled
    scenario): `repaychaos calibrate` exits 0 saying GOOD and writes one report with the
    calibration section; `repaychaos report` of the measured and the calibrated results finds
    calibration.json beside the measured one by itself."""
    cli = [sys.executable, "-m", "repaychaos"]
    cal = subprocess.run(cli + ["calibrate", str(lognormal_measurement), "--no-progress"], capture_output=True,
                         text=True, timeout=300)
    assert cal.returncode == 0, cal.stdout + cal.stderr
    assert "GOOD" in cal.stdout and "wrote report:" in cal.stdout
    folder = lognormal_measurement.parent
    page = (folder / "calibration-report" / "report.html").read_text(encoding="utf-8")
    assert "Calibration: good fit" in page and page.count("data:image/png;base64,") >= 3
    again = subprocess.run(cli + ["report", str(lognormal_measurement), str(folder / "calibrated-sim" / "result.json"),
                                  "--out", str(tmp_path / "again")], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "Calibration: good fit" in (tmp_path / "again" / "report.html").read_text(encoding="utf-8")


@pytest.mark.soak
@pytest.mark.live
def test_calibrating_a_bundled_scenario_closes_the_loop(tmp_path):
    """The calibration loop from the command line on the bundled slow-sync scenario as shipped
    (30 minutes at time scale 30, a minute of arrivals, ~3,400 users: enough that the
    calibrated model's 2 pp RMS check holds; at a third of that the measured curve is too
    noisy for it), then `repaychaos calibrate`:
    exit 0; the fitted median within 10 % of the truth (lognormal sync of median 1.5 s plus
    the 20 ms credit stage; 16 workers at 3.6 Erlangs barely queue); one report with the
    measurement, the calibrated model's run and the calibration section; the calibrated
    model's stale_read_ratio agrees with the measured one and its curve is within 2 pp RMS;
    and `repaychaos report` finds the calibration beside the measured result by itself."""
    import yaml

    from repaychaos.scenarios import bundled_scenarios

    data = yaml.safe_load(Path(bundled_scenarios()["slow-sync"]).read_text(encoding="utf-8"))
    scenario = tmp_path / "slow-sync.yaml"
    scenario.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    cli = [sys.executable, "-m", "repaychaos"]
    load = subprocess.run(cli + ["load", str(scenario), "--time-scale", "30", "--out", str(tmp_path / "load"),
                                 "--no-progress"], capture_output=True, text=True, timeout=300)
    if not resolved_exit(load, tmp_path / "load", (0, 1)):
        return  # reads landed too late on this machine to calibrate from: the run said so (exit 3)
    result = tmp_path / "load" / "result.json"
    cal = subprocess.run(cli + ["calibrate", str(result), "--no-progress"], capture_output=True, text=True, timeout=300)
    assert cal.returncode == 0, cal.stdout + cal.stderr
    assert "GOOD" in cal.stdout and "wrote report:" in cal.stdout
    record = json.loads((tmp_path / "load" / "calibration.json").read_text())
    assert abs(record["chosen"]["median"] - 1.52) <= 0.152, record["chosen"]
    page = (tmp_path / "load" / "calibration-report" / "report.html").read_text(encoding="utf-8")
    assert "Calibration: good fit" in page and page.count("data:image/png;base64,") >= 3
    comparison = json.loads((tmp_path / "load" / "calibration-report" / "comparison.json").read_text())
    stale = next(m for m in comparison["metrics"] if m["metric"] == "stale_read_ratio")
    assert stale["agree"], stale
    assert comparison["curve"]["rms"] <= 0.02
    # `repaychaos report` of the two results shows the calibration too (calibration.json beside)
    again = subprocess.run(cli + ["report", str(result), str(tmp_path / "load" / "calibrated-sim" / "result.json"),
                                  "--out", str(tmp_path / "again")], capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "Calibration: good fit" in (tmp_path / "again" / "report.html").read_text(encoding="utf-8")
    assert "## Calibration: good fit" in (tmp_path / "again" / "summary.md").read_text(encoding="utf-8")
