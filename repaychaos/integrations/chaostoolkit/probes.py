"""Chaos Toolkit probes: how stale a system is right now, and what the model says of a scenario.

Each probe is a plain function with typed arguments (Chaos Toolkit passes the provider's
``arguments``; ``secrets`` where the activity names some). Over a measurement: the
exporter of a running ``repaychaos load`` (``--metrics-port``,
docs/how-to/live-dashboards.md) or the reference service's own ``/metrics``. Without a
load generator: :func:`canary_unusable_ratio` makes its own repayments and reads them.
"""

import math
import time
import uuid
from typing import Any

import requests

from repaychaos.integrations.chaostoolkit._http import base, fail, request

__all__ = [
    "stale_read_ratio",
    "time_to_usable_quantile",
    "service_gauge",
    "canary_unusable_ratio",
    "model_slo_verdicts",
    "model_slos_met",
]


def _scrape(metrics_url: str, allow_remote: bool, timeout: float) -> list[Any]:
    from repaychaos.integrations.live_metrics import families

    text = request("GET", base(metrics_url, allow_remote), timeout=timeout)
    if not isinstance(text, str):
        fail(f"GET {metrics_url}: expected the Prometheus text format")
    return list(families(text))


def _sum(fams: list[Any], sample_name: str, scenario: str, **labels: str) -> float:
    total = 0.0
    for fam in fams:
        for s in fam.samples:
            if s.name != sample_name or (scenario and s.labels.get("scenario") != scenario):
                continue
            if all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def _buckets(fams: list[Any], scenario: str) -> dict[float, float]:
    out: dict[float, float] = {}
    for fam in fams:
        for s in fam.samples:
            if s.name == "repaychaos_time_to_usable_seconds_bucket" and (
                    not scenario or s.labels.get("scenario") == scenario):
                le = float(s.labels["le"])
                out[le] = out.get(le, 0.0) + s.value
    return out


def _window(metrics_url: str, window: float, allow_remote: bool, timeout: float) -> tuple[list[Any], list[Any] | None]:
    """One scrape (window 0), or two ``window`` wall seconds apart (the first, then the second)."""
    if window < 0:
        fail(f"window: expected >= 0 seconds, found {window}")
    first = _scrape(metrics_url, allow_remote, timeout)
    if window == 0:
        return first, None
    time.sleep(window)
    return first, _scrape(metrics_url, allow_remote, timeout)


def stale_read_ratio(metrics_url: str, window: float = 0.0, scenario: str = "", allow_remote: bool = False,
                     timeout: float = 10.0) -> float:
    """Stale reads / reads from a running measurement's exporter (``repaychaos_reads_total``).

    ``window`` 0: since the run began; otherwise of the reads made in the next ``window``
    wall seconds. ``scenario``: only that scenario's series (default: all). Fails when there
    were no reads to judge.
    """
    before, after = _window(metrics_url, window, allow_remote, timeout)

    def counts(fams: list[Any]) -> tuple[float, float]:
        return (_sum(fams, "repaychaos_reads_total", scenario, outcome="stale"),
                _sum(fams, "repaychaos_reads_total", scenario))

    stale, reads = counts(before)
    if after is not None:
        stale2, reads2 = counts(after)
        stale, reads = stale2 - stale, reads2 - reads
    if reads <= 0:
        fail(f"no reads at {metrics_url}" + (f" in {window:g} s" if window else "") + ": nothing to judge")
    return stale / reads


def time_to_usable_quantile(metrics_url: str, quantile: float = 0.99, window: float = 0.0, scenario: str = "",
                            allow_remote: bool = False, timeout: float = 10.0) -> float:
    """A quantile of time to usable (scenario seconds) from the exporter's histogram.

    Read off the buckets as PromQL's ``histogram_quantile`` does (linear within a bucket; the
    largest finite bound when it falls in +Inf). ``window`` as in :func:`stale_read_ratio`.
    """
    if not 0 < quantile < 1:
        fail(f"quantile: expected a number in (0, 1), found {quantile}")
    before, after = _window(metrics_url, window, allow_remote, timeout)
    buckets = _buckets(before, scenario)
    if after is not None:
        later = _buckets(after, scenario)
        buckets = {le: later.get(le, 0.0) - buckets.get(le, 0.0) for le in later}
    return _histogram_quantile(quantile, buckets, metrics_url)


def _histogram_quantile(q: float, buckets: dict[float, float], where: str) -> float:
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        fail(f"no time-to-usable observations at {where}: nothing to judge")
    total = buckets[bounds[-1]]
    rank = q * total
    lower, below = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if math.isinf(le):
                return lower
            return lower + (le - lower) * (rank - below) / (count - below) if count > below else le
        lower, below = le, count
    return lower


def service_gauge(base_url: str, name: str = "repaychaos_stale_accounts", allow_remote: bool = False,
                  timeout: float = 10.0) -> float:
    """A value of the reference service's ``/metrics``, summed over its labels.

    E.g. ``repaychaos_stale_accounts`` (accounts whose view shows unusable while the truth is
    usable), ``repaychaos_sync_backlog``, ``repaychaos_faults_active``
    (docs/reference/http-api.md). Fails when the service exports no such metric.
    """
    fams = _scrape(base(base_url, allow_remote) + "/metrics", allow_remote, timeout)
    found = [s.value for fam in fams for s in fam.samples if s.name == name]
    if not found:
        fail(f"{base_url}/metrics has no metric {name!r}")
    return float(sum(found))


def canary_unusable_ratio(base_url: str, repayments: int = 10, read_after: float = 60.0, allow_remote: bool = False,
                          timeout: float = 30.0) -> float:
    """Repay ``repayments`` fresh accounts on the reference service, read each once
    ``read_after`` scenario seconds later, and return the share that still showed unusable.

    Wall time: ``read_after`` / the service's time scale (``/healthz``). A risk hold also
    reads unusable, so on a scenario with holds this is an upper bound of the stale share.
    """
    if repayments < 1:
        fail(f"repayments: expected at least 1, found {repayments}")
    url = base(base_url, allow_remote)
    health = request("GET", url + "/healthz", timeout=timeout)
    k = float(health.get("time_scale", 1.0)) if isinstance(health, dict) else 1.0
    run = uuid.uuid4().hex[:8]
    accounts = []
    for i in range(repayments):
        account = f"canary-{run}-{i}"
        body = {"account": account, "amount": "1.00"}
        try:
            resp = requests.post(url + "/repayments", json=body, headers={"Idempotency-Key": account},
                                 timeout=timeout)
        except requests.RequestException as exc:
            fail(f"POST {url}/repayments: {type(exc).__name__}: {exc}")
        if resp.status_code not in (200, 201):
            fail(f"POST {url}/repayments answered {resp.status_code}: {resp.text[:300]}")
        accounts.append(account)
    time.sleep(max(0.0, read_after / k))
    unusable = 0
    for account in accounts:
        status = request("GET", f"{url}/accounts/{account}/status", timeout=timeout)
        if not isinstance(status, dict) or status.get("status") not in ("usable", "unusable"):
            fail(f"GET {url}/accounts/{account}/status: expected a status, found {str(status)[:200]}")
        unusable += status["status"] == "unusable"
    return unusable / len(accounts)


def model_slo_verdicts(scenario: str, seed: int = -1, replications: int = 1) -> list[dict[str, Any]]:
    """Run the model on ``scenario`` (a bundled name or a path) and return its SLO verdicts.

    One dict per SLO: ``metric``, ``rule``, ``observed``, ``passed`` (docs/reference/result-file.md).
    ``seed`` -1: the scenario's own.
    """
    from repaychaos.core.errors import RepaychaosError
    from repaychaos.scenarios import resolve_scenario
    from repaychaos.sim.simulate import run_model

    try:
        sc = resolve_scenario(scenario)
        result = run_model(sc, seed=None if seed < 0 else seed, replications=replications, processes=1,
                           progress=False, fail_on_inconclusive=False)
    except RepaychaosError as exc:
        fail(f"model run of {scenario}: {exc}")
    return [dict(v) for v in result.get("slo", [])]


def model_slos_met(scenario: str, seed: int = -1, replications: int = 1) -> bool:
    """True when the model run of ``scenario`` meets every SLO (see :func:`model_slo_verdicts`)."""
    return all(v.get("passed") is True for v in model_slo_verdicts(scenario, seed, replications))
