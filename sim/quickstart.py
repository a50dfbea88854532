"""Drive the model from Python: load a bundled scenario, run it, read the result.

    .venv/bin/python sim/quickstart.py                    # nightly-maintenance, cut to 90 minutes
    .venv/bin/python sim/quickstart.py month-end-peak --duration 4h --replications 4

The same as ``repaychaos sim``, but the result record is a dict in your hands: print what
you need, plot it, feed it to your own checks. Keys: docs/reference/result-file.md.
"""

from __future__ import annotations

import argparse

from repaychaos.scenarios import resolve_scenario, with_overrides
from repaychaos.sim.simulate import run_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="nightly-maintenance", help="a bundled name or a path")
    parser.add_argument("--duration", default="90m", help="cut the scenario to this length (default 90m)")
    parser.add_argument("--replications", type=int, default=2)
    args = parser.parse_args()

    scenario = with_overrides(resolve_scenario(args.scenario), {"duration": args.duration})
    # processes=1 runs the replications in this process: no `if __name__` subtleties, no pool
    result = run_model(scenario, replications=args.replications, processes=1)

    m = result["metrics"]
    low, high = m["stale_read_ratio"]["ci95"] or (float("nan"), float("nan"))
    print(f"{scenario.name}: {m['repayments']:,} repayments, {m['reads']:,} reads, verdict {result['verdict']}")
    print(f"  stale_read_ratio {m['stale_read_ratio']['value']:.2%}  (95% CI {low:.2%} .. {high:.2%})")
    print(f"  affected_ratio   {m['affected_ratio']['value']:.2%}")
    print(f"  time to usable   p50 {m['time_to_usable']['p50']:.3f}s  p99 {m['time_to_usable']['p99']:.1f}s")
    print(f"  stale reads by cause: {dict((k, v) for k, v in m['stale_reads_by_cause'].items() if v)}")
    print("  staleness curve (share of repayments still showing unusable t seconds after the ack):")
    for t, p in zip(m["visibility"]["t"], m["visibility"]["p_stale"]):
        if t in (1, 10, 60, 600):
            print(f"    t = {t:>4g}s  {p:.3%}")
    for row in result["slo"]:
        print(f"  SLO {row['metric']} {row['rule']}: {row['verdict']} (observed {row['observed']})")


if __name__ == "__main__":
    main()
