"""The highest request rate target mode sustains, on the one load engine (Locust users).

Against a minimal loopback stub that answers at once (bench/stub_target.py) with 1 and
2 Locust workers, and against the reference service (``repaychaos serve``, time scale
1). For each rate, a fault-free scenario of ``--seconds`` of arrivals; every user
repays, then reads 4 times 100 ms apart (the stub always answers ``unusable``, so every
repayment costs 5 requests). "Sustained" means a rate shortfall under 2 % (requests
sent against the requests the arrivals called for, users who never finished counted as
missing) and a request lateness p99 under 20 ms (every kind: repay, read). Prints one
JSON line per run, then a table of the highest sustained rate per setting.

    .venv/bin/python bench/bench_target.py [--seconds 10] [--stub-rates 1000,2000,3000]
        [--service-rates 300,600,900] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stub_target import TARGET_YAML, start  # noqa: E402

from repaychaos.load.blackbox import run_target  # noqa: E402
from repaychaos.load.launcher import ServiceProcess, free_port, stop_process  # noqa: E402
from repaychaos.scenarios import load_scenario_data  # noqa: E402
from repaychaos.target import load_target  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHECKS = 4
SHORTFALL_MAX = 0.02
LATE_P99_MAX = 0.020


def scenario(rate: float, seconds: float) -> object:
    return load_scenario_data({
        "version": 1, "name": "bench-target", "duration": seconds, "seed": 1,
        "workload": {"arrivals": {"rate": rate},
                     "check": {"first_after": "100ms", "every": "100ms", "max_checks": CHECKS}},
        "pipeline": {"channel": {"latency": 0}, "sync": {"workers": 256, "service": {"dist": "exponential", "mean": "50ms"}},
                     "credit": {"service": "5ms"}, "reconcile": "off"},
    })


def measure(target_path: Path, requests_per_s: float, seconds: float, workers: int, reads_stop: bool) -> dict:
    rate = requests_per_s / (1 + CHECKS)
    started = time.time()
    load_before = os.getloadavg()[0]
    result = run_target(scenario(rate, seconds), load_target(target_path), time_scale=1.0,
                        locust_workers=workers, fail_on_inconclusive=False)
    run = result["run"]
    late = run["request_lateness_s"]
    if reads_stop:  # a real service: users stop at their first usable read; count what was owed
        owed = run["acked"] - run["incomplete"]
        shortfall = 1 - owed / max(1, run["arrivals"])
    else:
        shortfall = 1 - run["requests"] / max(1, run["arrivals"] * (1 + CHECKS))
    p99 = max((v["p99"] or 0.0) for v in late.values() if v["n"])
    return {
        "workers": workers, "offered_requests_per_s": requests_per_s, "repayments_per_s": round(rate, 1),
        "requests": run["requests"], "requests_per_s": round(run["requests"] / seconds, 1),
        "shortfall": round(shortfall, 4), "lateness_p99_ms": round(1000 * p99, 2),
        "lateness_ms": {k: {"p50": round(1000 * (v["p50"] or 0), 2), "p99": round(1000 * (v["p99"] or 0), 2)}
                        for k, v in late.items() if v["n"]},
        "lead_ms": {k: round(1000 * v, 2) for k, v in run["lead_wall_s"].items()},
        "locust_cpu_s": run["cpu_seconds"]["locust"],
        "valid": run["validity"]["ok"], "why": run["validity"]["why"],
        "sustained": shortfall < SHORTFALL_MAX and p99 < LATE_P99_MAX,
        "wall_s": round(time.time() - started, 1), "loadavg_1m_before": round(load_before, 2),
    }


def ladder(name: str, target_path: Path, rates: list[float], seconds: float, workers: int, reads_stop: bool,
           table: list[dict]) -> None:
    best = None
    for r in rates:
        row = {"target": name, **measure(target_path, r, seconds, workers, reads_stop)}
        print(json.dumps(row), flush=True)
        if not row["sustained"]:
            break
        best = row
    table.append({"target": name, "workers": workers, "best": best})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--stub-rates", default="500,1000,1500,2000,2500,3000,4000")
    parser.add_argument("--service-rates", default="500,1000,1500,2000,2500,3000")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--skip-service", action="store_true")
    args = parser.parse_args()
    table: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        stub = start(port)
        try:
            path = Path(tmp) / "stub.yaml"
            path.write_text(TARGET_YAML.format(url=f"http://127.0.0.1:{port}"), encoding="utf-8")
            for workers in (int(w) for w in args.workers.split(",")):
                ladder("stub", path, [float(r) for r in args.stub_rates.split(",")], args.seconds, workers,
                       False, table)
        finally:
            stop_process(stub, 5.0)
        if not args.skip_service:
            with ServiceProcess(scenario(1.0, args.seconds), Path(tmp) / "svc.db", time_scale=1.0) as svc:
                text = (ROOT / "loadtests" / "targets" / "reference-service.yaml").read_text(encoding="utf-8")
                text = text.replace("http://127.0.0.1:8000", svc.url).split("\nfaults:")[0]
                path = Path(tmp) / "service.yaml"
                path.write_text(text + "\nmax_requests: 100000000\n", encoding="utf-8")
                for workers in (int(w) for w in args.workers.split(",")):
                    ladder("reference service", path, [float(r) for r in args.service_rates.split(",")],
                           args.seconds, workers, True, table)
    print("\n| target | Locust workers | highest sustained requests/s | repayments/s | lateness p99 ms | shortfall |")
    print("|---|---|---|---|---|---|")
    for row in table:
        b = row["best"]
        if b is None:
            print(f"| {row['target']} | {row['workers']} | none of the rates tried | | | |")
        else:
            print(f"| {row['target']} | {row['workers']} | {b['requests_per_s']:g} (offered {b['offered_requests_per_s']:g}) "
                  f"| {b['repayments_per_s']:g} | {b['lateness_p99_ms']} | {100 * b['shortfall']:.2f}% |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
