"""Sweep throughput: grid points per minute for both model engines and 1 or N processes, side by side.

The same grid (bundled ``nightly-maintenance``, shortened) runs once per engine and
process count in this one invocation, so the ratios are measured on the same machine in
the same state. Also checks that every engine and process count produced byte-identical
rows (results are assembled in grid order; the engines agree exactly).

    .venv/bin/python bench/bench_sweep.py                 # fast and events engines, 1 vs 2 processes
    .venv/bin/python bench/bench_sweep.py --engines fast --processes 1 2 4 --duration 1h --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from repaychaos.scenarios import resolve_scenario, with_overrides  # noqa: E402
from repaychaos.sim.sweep import run_sweep  # noqa: E402

DEFAULT_VARY = ["pipeline.sync.workers=4,8,16", "workload.arrivals.rate=10/s,20/s"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="nightly-maintenance", help="bundled name or path")
    parser.add_argument("--duration", default="1h15m",
                        help="scenario duration for the bench (default 1h15m: the sync_delay fault is inside)")
    parser.add_argument("--repeat", type=int, default=2,
                        help="rounds, interleaving process counts; the fastest of each is kept (default 2)")
    parser.add_argument("--replications", type=int, default=2)
    parser.add_argument("--vary", action="append", default=None, help="as for repaychaos sweep (repeatable)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--engines", nargs="+", default=["fast", "events"], choices=["fast", "events"])
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)

    base = resolve_scenario(args.scenario)
    base = with_overrides(base, {"duration": args.duration, "warmup": "1m", "replications": args.replications})
    vary = args.vary or DEFAULT_VARY
    print(f"scenario {base.name}: duration {base.duration:g}s, {base.replications} replications, "
          f"vary {' '.join(vary)}; {os.cpu_count()} CPU(s)")
    best: dict[tuple[str, int], dict] = {}
    reference = None
    loads = []
    combos = [(e, n) for e in args.engines for n in args.processes]
    with tempfile.TemporaryDirectory() as tmp:
        # Interleaved rounds, best of each: other load on the machine hits every combination alike.
        for _ in range(max(1, args.repeat)):
            for engine, n in combos:
                loads.append(os.getloadavg()[0])
                started = time.perf_counter()
                out = run_sweep(base, vary, out_dir=Path(tmp) / f"{engine}{n}", processes=n, progress=False,
                                engine=engine)
                wall = time.perf_counter() - started
                rows = json.dumps(out["rows"])
                identical = reference is None or rows == reference
                reference = reference or rows
                points = len(out["rows"])
                repayments = sum(r["metrics"]["repayments"] for r in out["rows"])
                run = {"engine": engine, "processes": n, "points": points, "tasks": out["record"]["run"]["tasks"],
                       "wall_seconds": round(wall, 2), "points_per_minute": round(60 * points / wall, 2),
                       "repayments_per_second": round(repayments / wall), "identical_rows": identical}
                key = (engine, n)
                if key not in best or wall < best[key]["wall_seconds"]:
                    best[key] = {**run, "identical_rows": identical and best.get(key, run)["identical_rows"]}
    runs = [best[k] for k in combos]
    print(f"load average before the runs: {min(loads):.2f}..{max(loads):.2f} (other work on the machine skews ratios)")
    base_wall = runs[0]["wall_seconds"]
    print(f"{'engine':>7} {'processes':>9} {'points':>6} {'tasks':>5} {'wall s':>8} {'points/min':>10} {'repay/s':>9} "
          f"{'vs first':>8} identical")
    for run in runs:
        run["speedup"] = round(base_wall / run["wall_seconds"], 2)
        print(f"{run['engine']:>7} {run['processes']:>9} {run['points']:>6} {run['tasks']:>5} {run['wall_seconds']:>8.2f} "
              f"{run['points_per_minute']:>10.2f} {run['repayments_per_second']:>9} {run['speedup']:>7.2f}x "
              f"{run['identical_rows']}")
    if "fast" in args.engines and "events" in args.engines:
        for n in args.processes:
            ratio = best[("fast", n)]["points_per_minute"] / best[("events", n)]["points_per_minute"]
            print(f"fast / events at {n} process(es): {ratio:.2f}x points per minute")
    if args.json:
        args.json.write_text(json.dumps({"scenario": base.name, "vary": vary, "cpus": os.cpu_count(),
                                         "load_average": [min(loads), max(loads)], "runs": runs}, indent=2) + "\n")
    return 0 if all(r["identical_rows"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
