"""Compare settings of one scenario on equal terms: common random numbers.

    .venv/bin/python sim/compare_workers.py                        # quiet-baseline, 2/3/4/8 workers
    .venv/bin/python sim/compare_workers.py month-end-peak --workers 6 8 12 --duration 4h

Every variant runs with the scenario's seed, and the model's random streams are split by
purpose (arrivals, users, service times, decisions, faults), so all variants see the same
arrivals and the same users: the differences printed are the setting's, not noise. (Where
no one waits for a worker, two settings give the very same numbers: quiet-baseline's
10 repayments/s of 100 ms each keep one worker busy on average, so with 16 workers or 32 a
message waits with probability below 1e-12 — Erlang C.)
``repaychaos sweep`` does this over grids, with plots (docs/how-to/capacity-sweep.md).
"""

from __future__ import annotations

import argparse

from repaychaos.scenarios import resolve_scenario, with_overrides
from repaychaos.sim.simulate import run_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="quiet-baseline")
    parser.add_argument("--workers", type=int, nargs="+", default=[2, 3, 4, 8])
    parser.add_argument("--duration", default="1h", help="cut the scenario to this length (default 1h)")
    parser.add_argument("--replications", type=int, default=2)
    args = parser.parse_args()

    base = with_overrides(resolve_scenario(args.scenario), {"duration": args.duration})
    print(f"{base.name}, {args.duration}, {args.replications} replications per setting, seed {base.seed}")
    print(f"{'workers':>8}  {'stale_read_ratio (95% CI)':>30}  {'p99 time to usable':>19}  verdict")
    for workers in args.workers:
        scenario = with_overrides(base, {"pipeline.sync.workers": workers})
        result = run_model(scenario, replications=args.replications, processes=1)
        ratio = result["metrics"]["stale_read_ratio"]
        low, high = ratio["ci95"] or (float("nan"), float("nan"))
        p99 = result["metrics"]["time_to_usable"]["p99"]
        print(f"{workers:>8}  {ratio['value']:>9.3%} ({low:.3%} .. {high:.3%})  {p99:>18.3f}s  {result['verdict']}")


if __name__ == "__main__":
    main()
