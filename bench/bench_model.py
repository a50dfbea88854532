"""Model speed: both engines against a bare SimPy M/M/c loop, Ciw and a pure-Python floor.

    python bench/bench_model.py            # M/M/10 at rho 0.8, 100k customers; memory at 100k and 400k
    python bench/bench_model.py --day      # plus the one-day, 10-million-repayment scenario on both engines

Everything simulates the same customers: the inter-arrival gaps and service times are
drawn once from the model's own random streams (repaychaos.core.streams) — and both
engines draw exactly those — so the FIFO waits agree and the mean time in system printed
beside each rate is a correctness check. The model does much more per customer than the
others (fault hooks, reads, attribution, streaming metrics); the targets for the fast
engine (the default) are at least 4x the bare SimPy loop and 6x Ciw. The floor is a
per-customer pure-Python recursion over the same customers (a heap of worker free times,
nothing else): what any Python loop per customer costs at least. Neither engine needs a
compiler, so there is no first-run cost to report. Peak memory (tracemalloc) of each
engine at two horizons shows it does not grow with the number of repayments.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from heapq import heapreplace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import simpy  # noqa: E402

from repaychaos.scenarios import load_scenario_data  # noqa: E402
from repaychaos.semantics import arrival_times  # noqa: E402
from repaychaos.sim.executor import replicate  # noqa: E402
from repaychaos.core.streams import stream  # noqa: E402

__all__ = ["main"]

SEED = 1


def mmc_scenario(n: int, lam: float, c: int, mean: float) -> Any:
    """Our model reduced to M/M/c: no channel/credit delay, no faults, reconcile off."""
    return load_scenario_data({
        "version": 1, "name": "bench-mmc", "duration": f"{n / lam}s", "seed": SEED,
        "workload": {"arrivals": {"rate": lam},
                     "check": {"first_after": {"dist": "lognormal", "median": "5s", "p95": "2m"},
                               "every": "30s", "max_checks": 5}},
        "pipeline": {"channel": {"latency": 0}, "sync": {"workers": c, "service": {"dist": "exponential", "mean": mean}},
                     "credit": {"service": 0, "risk_hold_ratio": 0}, "reconcile": {"every": "off"}},
    })


def day_scenario() -> Any:
    """One day at 10 million repayments with the usual faults: a nightly pause, a slow hour, a bug."""
    return load_scenario_data({
        "version": 1, "name": "bench-day", "duration": "1d", "warmup": "10m", "seed": SEED,
        "workload": {"arrivals": {"rate": 10_000_000 / 86_400},
                     "check": {"first_after": {"dist": "lognormal", "median": "5s", "p95": "2m"},
                               "every": "30s", "max_checks": 5}},
        "pipeline": {"channel": {"latency": {"dist": "lognormal", "median": "150ms", "p95": "600ms"}},
                     "sync": {"workers": 16, "service": {"dist": "exponential", "mean": "50ms"}},
                     "credit": {"service": "20ms", "risk_hold_ratio": 0.01}, "reconcile": {"every": "15m"}},
        "faults": [
            {"type": "maintenance", "component": "sync", "at": "2h", "for": "20m", "mode": "pause"},
            {"type": "sync_delay", "at": "12h", "for": "1h", "extra": {"dist": "pareto", "scale": "50ms", "shape": 2}},
            {"type": "interface_bug", "link": "sync->credit", "at": "18h", "for": "45m", "drop_ratio": 0.01},
        ],
    })


def same_inputs(sc: Any) -> tuple[list[float], list[float]]:
    """The arrival instants and sync service times our model draws for ``sc`` (replication 0)."""
    arr = stream(SEED, 0, "arrivals")
    times = list(arrival_times(sc.workload.arrivals.steps, sc.duration, lambda: arr.expovariate(1.0)))
    svc = sc.pipeline.sync.service.sampler(stream(SEED, 0, "service"))
    return times, [svc() for _ in times]


def run_ours(sc: Any, engine: str) -> tuple[float, int, float]:
    gc.collect()
    t0 = time.perf_counter()
    state, n = replicate(sc, SEED, 0, engine=engine)
    wall = time.perf_counter() - t0
    return wall, n, state.ttu.total / state.ttu.n


def run_floor(times: list[float], services: list[float], c: int) -> tuple[float, int, float]:
    """The pure-Python floor: one loop iteration per customer, a heap of worker free times."""
    gc.collect()
    t0 = time.perf_counter()
    free = [0.0] * c
    total = 0.0
    for t, s in zip(times, services):
        f = free[0]
        done = (t if t > f else f) + s
        heapreplace(free, done)
        total += done - t
    wall = time.perf_counter() - t0
    return wall, len(times), total / len(times)


def run_bare_simpy(times: list[float], services: list[float], c: int) -> tuple[float, int, float]:
    """The canonical SimPy M/M/c: a source process, one process per customer, a Resource."""
    gc.collect()
    t0 = time.perf_counter()
    env = simpy.Environment()
    server = simpy.Resource(env, capacity=c)
    total = [0.0]

    def customer(env: simpy.Environment, service: float):
        arrived = env.now
        with server.request() as req:
            yield req
            yield env.timeout(service)
        total[0] += env.now - arrived

    def source(env: simpy.Environment):
        prev = 0.0
        for t, s in zip(times, services):
            yield env.timeout(t - prev)
            prev = t
            env.process(customer(env, s))

    env.process(source(env))
    env.run()
    wall = time.perf_counter() - t0
    return wall, len(times), total[0] / len(times)


def run_ciw(times: list[float], services: list[float], c: int) -> tuple[float, int, float]:
    import ciw

    gaps = [times[0]] + [b - a for a, b in zip(times, times[1:])]
    gc.collect()
    t0 = time.perf_counter()
    ciw.seed(SEED)
    network = ciw.create_network(arrival_distributions=[ciw.dists.Sequential(gaps)],
                                 service_distributions=[ciw.dists.Sequential(services)],
                                 number_of_servers=[c])
    sim = ciw.Simulation(network)
    sim.simulate_until_max_customers(len(times), method="Finish")
    wall = time.perf_counter() - t0
    recs = sim.get_all_records()
    return wall, len(recs), sum(r.waiting_time + r.service_time for r in recs) / len(recs)


def peak_memory(sc: Any, engine: str) -> tuple[int, float]:
    gc.collect()
    tracemalloc.start()
    _, n = replicate(sc, SEED, 0, engine=engine)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return n, peak / 2**20


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000, help="customers per engine (default 100k)")
    ap.add_argument("--workers", type=int, default=10)
    ap.add_argument("--rho", type=float, default=0.8)
    ap.add_argument("--no-ciw", action="store_true", help="skip Ciw (slow)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per engine; the fastest counts (default 3)")
    ap.add_argument("--day", action="store_true", help="also time the one-day 10M-repayment scenario")
    args = ap.parse_args(argv)

    c, mean = args.workers, 1.0
    lam = args.rho * c / mean
    sc = mmc_scenario(args.customers, lam, c, mean)
    times, services = same_inputs(sc)
    print(f"M/M/{c} at rho {args.rho}: lambda {lam:g}/s, mean service {mean:g}s, {len(times):,} customers, "
          f"best of {args.repeat}\n")
    def best(run: Any, *a: Any) -> tuple[float, int, float]:
        # the fastest of a few runs: the machine's other load only ever slows a run down
        return min((run(*a) for _ in range(args.repeat)), key=lambda r: r[0])

    rows = [("repaychaos fast", best(run_ours, sc, "fast")), ("repaychaos events", best(run_ours, sc, "events")),
            ("bare SimPy M/M/c", best(run_bare_simpy, times, services, c))]
    if not args.no_ciw:
        rows.append(("Ciw", best(run_ciw, times, services, c)))
    rows.append(("pure-Python floor", best(run_floor, times, services, c)))
    fast = rows[0][1][1] / rows[0][1][0]
    print(f"{'engine':<20}{'customers':>11}{'wall s':>9}{'customers/s':>13}{'fast/this':>11}{'mean T s':>10}")
    for name, (wall, n, mean_t) in rows:
        rate = n / wall
        print(f"{name:<20}{n:>11,}{wall:>9.3f}{rate:>13,.0f}{fast / rate:>11.2f}{mean_t:>10.4f}")

    print("\npeak memory of the full model (tracemalloc)")
    print(f"{'engine':<10}{'repayments':>12}{'peak MiB':>10}")
    for engine in ("fast", "events"):
        for k in (1, 4):
            n, mib = peak_memory(mmc_scenario(args.customers * k, lam, c, mean), engine)
            print(f"{engine:<10}{n:>12,}{mib:>10.2f}")

    if args.day:
        day = day_scenario()
        print()
        for engine in ("fast", "events"):
            gc.collect()
            t0 = time.perf_counter()
            state, n = replicate(day, SEED, 0, engine=engine)
            wall = time.perf_counter() - t0
            print(f"one day, one replication, {engine} engine: {n:,} repayments in {wall:.1f} s ({n / wall:,.0f}/s); "
                  f"{state.all.reads:,} reads, {state.all.stale_reads:,} stale")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
