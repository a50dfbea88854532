"""The staleness of a load or target run while it goes on, in Prometheus text format.

The repaying users fire the event hooks of :mod:`repaychaos.load.events` (an ack, every
read after it, the end of each user). This module counts them per scenario, merges the
counts of Locust workers on the master (``report_to_master`` / ``worker_report``), and
serves them on a loopback port:

=========================================  =========  ==============================================
metric                                     type       what
=========================================  =========  ==============================================
``repaychaos_repayments_acked_total``      counter    repayments acknowledged so far
``repaychaos_reads_total{outcome}``        counter    status reads after an ack; ``outcome`` is
                                                      ``usable``, ``stale`` or ``hold`` (a legitimate
                                                      hold, not stale)
``repaychaos_stale_read_ratio``            gauge      stale reads / reads so far (NaN before the first read)
``repaychaos_time_to_usable_seconds``      histogram  ack to first usable read, scenario seconds
``repaychaos_users_done_total``            counter    users that stopped reading
``repaychaos_affected_users_total``        counter    users whose first look was stale (a user stops
                                                      at its first usable read, so these are the users
                                                      that saw at least one stale read)
``repaychaos_support_contacts_total``      counter    users that used every check and saw only stale
``repaychaos_never_usable_users_total``    counter    users done without a usable read
``repaychaos_run_fault_active{fault,type}`` gauge     1 while the scenario's fault window is open on
                                                      the run's scenario clock
``repaychaos_run_scenario_seconds``        gauge      the run's scenario clock
=========================================  =========  ==============================================

Every series carries ``scenario`` (its name) and ``source`` (``load`` or ``target``). The
counts cover every repayment of the run, warmup included; ``result.json`` counts only the
window ``[warmup, duration)`` (docs/reference/metrics.md), so the final numbers there can
differ a little from the last scrape. Time to usable here is what the user saw (ack to
the first usable read), later than the view's own change by up to one check interval. The
reference service's own ``/metrics`` (backlog,
stale accounts, faults active) is a separate endpoint with other names.

The counting (:class:`StalenessTally`) and the exposition (:func:`exposition`) import
neither Locust nor gevent; :func:`enable` attaches them to a Locust environment.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from repaychaos.core.histogram import LogHistogram
from repaychaos.core.result import fault_windows
from repaychaos.core.timescale import TimeScale

__all__ = [
    "TTU_BUCKETS",
    "StalenessTally",
    "LiveStaleness",
    "exposition",
    "enable",
    "MetricsServer",
    "WIRE_KEY",
    "SAMPLE_EVERY",
    "families",
    "settings_from_env",
]

#: Upper bounds (scenario seconds) of the time-to-usable histogram's buckets: from one
#: second to a day, so a fast pipeline and a night-long maintenance window both resolve.
TTU_BUCKETS: tuple[float, ...] = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800,
                                  86400)

#: Wall seconds between the points of the history the web UI's chart draws.
SAMPLE_EVERY = 2.0

#: Key of the staleness counts in a Locust worker's report to its master.
WIRE_KEY = "repaychaos_staleness"

_COUNTS = ("acked", "usable", "stale", "hold", "done", "affected", "support", "never")


@dataclass
class StalenessTally:
    """The running counts of one scenario's users; two tallies merge by adding."""

    acked: int = 0
    usable: int = 0
    stale: int = 0
    hold: int = 0
    done: int = 0
    affected: int = 0
    support: int = 0
    never: int = 0
    #: cumulative counts per bucket of :data:`TTU_BUCKETS` (plus +Inf last), and their sum
    buckets: list[int] = field(default_factory=lambda: [0] * (len(TTU_BUCKETS) + 1))
    ttu_sum: float = 0.0
    #: the same values in the 1 %-wide log bins of result.json, for quantiles
    ttu: LogHistogram = field(default_factory=LogHistogram)
    #: values observed since the last :meth:`take_wire` (what a worker sends its master)
    _new_ttu: list[float] = field(default_factory=list)

    @property
    def reads(self) -> int:
        return self.usable + self.stale + self.hold

    @property
    def stale_share(self) -> float | None:
        """Stale reads / reads, or None before the first read."""
        return self.stale / self.reads if self.reads else None

    def ack(self) -> None:
        self.acked += 1

    def read(self, usable: bool, hold: bool, index: int, holder: bool = False) -> None:
        """One status read: stale when it shows neither usable nor a legitimate hold. A stale
        first look of a repaying user makes it affected; a holder's (10b) is no repayment's."""
        if usable:
            self.usable += 1
        elif hold:
            self.hold += 1
        else:
            self.stale += 1
            if index == 0 and not holder:
                self.affected += 1

    def user_done(self, support_contact: bool, first_usable_s: float | None) -> None:
        self.done += 1
        if support_contact:
            self.support += 1
        if first_usable_s is None:
            self.never += 1
        else:
            self._add_ttu(float(first_usable_s))
            self._new_ttu.append(float(first_usable_s))

    def _add_ttu(self, value: float) -> None:
        value = max(0.0, value)
        for i, bound in enumerate(TTU_BUCKETS):
            if value <= bound:
                self.buckets[i] += 1
                break
        else:
            self.buckets[-1] += 1
        self.ttu_sum += value
        self.ttu.add(value)

    def quantile(self, q: float) -> float | None:
        """The ``q`` quantile of time to usable (scenario seconds, within 1 %), or None."""
        return self.ttu.quantile(q)

    def cumulative_buckets(self) -> list[tuple[str, int]]:
        """``(le, count)`` pairs as a Prometheus histogram states them (cumulative, +Inf last)."""
        out, running = [], 0
        for bound, count in zip((*TTU_BUCKETS, math.inf), self.buckets):
            running += count
            out.append(("+Inf" if bound == math.inf else repr(float(bound)), running))
        return out

    def take_wire(self) -> dict[str, Any]:
        """The counts as plain data (JSON/msgpack-safe) and reset: a worker's report since its last one."""
        wire: dict[str, Any] = {name: getattr(self, name) for name in _COUNTS}
        wire["ttu"] = list(self._new_ttu)
        fresh = StalenessTally()
        for name in (*_COUNTS, "buckets", "ttu_sum", "ttu", "_new_ttu"):
            setattr(self, name, getattr(fresh, name))
        return wire

    def add_wire(self, wire: Mapping[str, Any]) -> None:
        """Add a worker's report (what :meth:`take_wire` returned)."""
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + int(wire.get(name, 0)))
        for value in wire.get("ttu", ()):
            self._add_ttu(float(value))


class LiveStaleness:
    """The tallies of a run, one per scenario name, with the run's scenario clock and fault windows.

    ``clock`` returns the run's scenario seconds (None: the latest ack instant seen, the
    best a listener without the run's ``t0`` knows). ``scenario``: the scenario object whose
    fault windows :func:`exposition` reports as in force (None: no fault gauge).
    """

    def __init__(self, source: str, scenario: Any = None, clock: Callable[[], float] | None = None):
        if source not in ("load", "target"):
            raise ValueError(f"source: expected 'load' or 'target', found {source!r}")
        self.source = source
        self.scenario = scenario
        self.windows = fault_windows(scenario) if scenario is not None else []
        self._clock = clock
        self._last_ack = 0.0
        self.tallies: dict[str, StalenessTally] = {}
        self.lock = threading.Lock()
        self.history: list[dict[str, Any]] = []
        self._last_sample = -math.inf
        self._started = time.time()
        if scenario is not None:
            self.tallies[scenario.name] = StalenessTally()

    def tally(self, scenario: str) -> StalenessTally:
        found = self.tallies.get(scenario)
        if found is None:
            found = self.tallies[scenario] = StalenessTally()
        return found

    def now(self) -> float:
        """The run's scenario clock (scenario seconds since t0)."""
        return self._clock() if self._clock is not None else self._last_ack

    # the event listeners (keyword arguments as documented in repaychaos.load.events)

    def on_repayment_acked(self, scenario: str, ack_at: float, **_: Any) -> None:
        with self.lock:
            self._last_ack = max(self._last_ack, float(ack_at))
            self.tally(scenario).ack()

    def on_read_seen(self, scenario: str, usable: bool, hold: bool, since_ack_s: float, index: int,
                     holder: bool = False, **_: Any) -> None:
        with self.lock:
            self.tally(scenario).read(bool(usable), bool(hold), int(index), bool(holder))

    def on_user_done(self, scenario: str, support_contact: bool, first_usable_s: float | None, **_: Any) -> None:
        with self.lock:
            self.tally(scenario).user_done(bool(support_contact), first_usable_s)

    def take_wire(self) -> dict[str, Any]:
        """Every tally's counts since the last call, by scenario name (a worker's report)."""
        with self.lock:
            return {name: t.take_wire() for name, t in self.tallies.items() if t.reads or t.acked or t.done}

    def add_wire(self, wire: Mapping[str, Mapping[str, Any]]) -> None:
        """Add a worker's report (what :meth:`take_wire` returned on the worker)."""
        with self.lock:
            for name, counts in wire.items():
                self.tally(str(name)).add_wire(counts)

    def faults_in_force(self, t: float | None = None) -> list[tuple[str, str, bool]]:
        """``(fault label, type, in force at t)`` for each fault of the scenario (t: now)."""
        t = self.now() if t is None else t
        state: dict[tuple[str, str], bool] = {}
        for w in self.windows:
            key = (w["fault"], w["type"])
            inside = w["start"] <= t and (w["end"] is None or t < w["end"])
            state[key] = state.get(key, False) or inside
        return [(f, ty, on) for (f, ty), on in state.items()]

    def sample(self, min_gap: float = 1.0) -> list[dict[str, Any]]:
        """Add a point to :attr:`history` (at most one per ``min_gap`` wall seconds) and return it.

        A point holds, per scenario, the cumulative stale share, the share of the reads since
        the previous point, and time-to-usable quantiles; ``t`` is the scenario clock.
        """
        now = time.time()
        with self.lock:
            if now - self._last_sample >= min_gap:
                self._last_sample = now
                point: dict[str, Any] = {"t": round(self.now(), 3), "wall": round(now - self._started, 3),
                                         "scenarios": {}}
                previous = self.history[-1]["scenarios"] if self.history else {}
                for name, t in self.tallies.items():
                    before = previous.get(name, {"reads": 0, "stale": 0})
                    new_reads = t.reads - before["reads"]
                    point["scenarios"][name] = {
                        "reads": t.reads, "stale": t.stale, "share": t.stale_share,
                        "recent_share": (t.stale - before["stale"]) / new_reads if new_reads > 0 else None,
                        "p50": t.quantile(0.5), "p95": t.quantile(0.95), "p99": t.quantile(0.99),
                    }
                self.history.append(point)
                if len(self.history) > 2000:  # keep the chart light: every other old point
                    self.history[:1000] = self.history[:1000:2]
            return self.history

    def summary(self) -> list[dict[str, Any]]:
        """One row per scenario: the counts and quantiles as the web UI's table shows them."""
        rows = []
        with self.lock:
            faults = ", ".join(f for f, _, on in self.faults_in_force() if on) or "none"
            for name, t in sorted(self.tallies.items()):
                share = t.stale_share
                rows.append({
                    "scenario": name, "source": self.source, "acked": t.acked, "reads": t.reads,
                    "stale_reads": t.stale, "stale_share": "n/a" if share is None else f"{100 * share:.2f} %",
                    "ttu_p50": _fmt_s(t.quantile(0.5)), "ttu_p95": _fmt_s(t.quantile(0.95)),
                    "ttu_p99": _fmt_s(t.quantile(0.99)), "users_done": t.done, "affected_users": t.affected,
                    "support_contacts": t.support, "faults_in_force": faults,
                })
        return rows


def _fmt_s(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.1f} s" if value < 600 else f"{value / 60:.1f} min"


def exposition(live: LiveStaleness) -> bytes:
    """The Prometheus text format (version 0.0.4) of ``live``'s tallies, as a scrape sees them."""
    from prometheus_client import CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(live))
    return generate_latest(registry)


class _Collector:
    """A prometheus_client collector that reads the tallies at scrape time."""

    def __init__(self, live: LiveStaleness):
        self.live = live

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        live = self.live
        base = ["scenario", "source"]

        def counter(name: str, doc: str) -> Any:
            return CounterMetricFamily(name, doc, labels=base)

        acked = counter("repaychaos_repayments_acked", "Repayments acknowledged so far in this run")
        reads = CounterMetricFamily("repaychaos_reads", "Status reads made after an ack, by what they showed "
                                    "(stale: neither usable nor a legitimate hold)", labels=[*base, "outcome"])
        ratio = GaugeMetricFamily("repaychaos_stale_read_ratio", "Stale reads / reads so far in this run",
                                  labels=base)
        ttu = HistogramMetricFamily("repaychaos_time_to_usable_seconds", "From the ack to the user's first usable "
                                    "read, in scenario seconds (users that saw one)", labels=base)
        done = counter("repaychaos_users_done", "Users that stopped reading")
        affected = counter("repaychaos_affected_users", "Users that saw at least one stale read (their first "
                           "look was stale)")
        support = counter("repaychaos_support_contacts", "Users that used every check and saw only stale reads")
        never = counter("repaychaos_never_usable_users", "Users done without a usable read (support contacts "
                        "and held accounts included)")
        faults = GaugeMetricFamily("repaychaos_run_fault_active", "1 while the scenario's fault window is open "
                                   "on the run's scenario clock", labels=[*base, "fault", "type"])
        clock = GaugeMetricFamily("repaychaos_run_scenario_seconds", "The run's scenario clock (scenario "
                                  "seconds since its start)", labels=base)
        with live.lock:
            now = live.now()
            for name, t in sorted(live.tallies.items()):
                labels = [name, live.source]
                acked.add_metric(labels, t.acked)
                for outcome, count in (("usable", t.usable), ("stale", t.stale), ("hold", t.hold)):
                    reads.add_metric([*labels, outcome], count)
                ratio.add_metric(labels, t.stale / t.reads if t.reads else math.nan)  # no reads: no share
                ttu.add_metric(labels, t.cumulative_buckets(), sum_value=t.ttu_sum)
                done.add_metric(labels, t.done)
                affected.add_metric(labels, t.affected)
                support.add_metric(labels, t.support)
                never.add_metric(labels, t.never)
                clock.add_metric(labels, now)
            scenario_name = live.scenario.name if live.scenario is not None else None
        if scenario_name is not None:
            for fault, fault_type, on in live.faults_in_force(now):
                faults.add_metric([scenario_name, live.source, fault, fault_type], 1.0 if on else 0.0)
        yield from (acked, reads, ratio, ttu, done, affected, support, never, faults, clock)


class MetricsServer:
    """``GET /metrics`` of a :class:`LiveStaleness` on ``127.0.0.1:port`` (0: a free port), in a thread.

    Under Locust the thread is a greenlet (gevent patches threading); elsewhere a daemon thread.
    """

    def __init__(self, live: LiveStaleness, port: int = 0, host: str = "127.0.0.1"):
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        class _Quiet(WSGIRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
                pass

        self.live = live
        self.server = make_server(host, port, self._app, handler_class=_Quiet)
        self.port = int(self.server.server_port)
        self.host = host
        self.thread = threading.Thread(target=self.server.serve_forever, name="repaychaos-metrics", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/metrics"

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "/") not in ("/metrics", "/"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: the metrics are at /metrics\n"]
        body = exposition(self.live)
        start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def enable(environment: Any, scenario: Any = None, source: str = "load", port: int | None = 0,
           clock: Callable[[], float] | None = None) -> tuple[LiveStaleness, str | None]:
    """Listen to the repaying users' events in ``environment`` (a Locust Environment).

    On a Locust worker: count, and send the counts to the master with every report. On
    the master or a local runner: count (and add the workers' reports), keep a history
    point every :data:`SAMPLE_EVERY` seconds for the web UI's chart, and when ``port``
    is not None serve ``/metrics`` on ``127.0.0.1:port`` (0 picks a free port). Returns
    the tallies and the metrics URL (None where nothing is served). ``scenario``: the
    Scenario, for the name of an empty tally and its fault windows; ``clock``: the run's
    scenario seconds (see :class:`LiveStaleness`). OSError when ``port`` cannot be bound
    (then nothing is registered).
    """
    from locust.runners import WorkerRunner

    from repaychaos.load import events

    live = LiveStaleness(source, scenario, clock)
    worker = isinstance(environment.runner, WorkerRunner)
    # bind first: a port that is taken raises OSError before anything is registered
    server = MetricsServer(live, port) if port is not None and not worker else None
    environment.repaychaos_staleness = live
    events.repayment_acked.add_listener(live.on_repayment_acked)
    events.read_seen.add_listener(live.on_read_seen)
    events.user_done.add_listener(live.on_user_done)

    if worker:
        def report(client_id: str, data: dict[str, Any], **_: Any) -> None:
            data[WIRE_KEY] = live.take_wire()

        environment.events.report_to_master.add_listener(report)
        return live, None

    def merge(client_id: str, data: dict[str, Any], **_: Any) -> None:
        wire = data.get(WIRE_KEY)
        if wire:
            live.add_wire(wire)

    environment.events.worker_report.add_listener(merge)
    import gevent

    def sample_forever() -> None:
        while True:
            live.sample(min_gap=0.5 * SAMPLE_EVERY)
            gevent.sleep(SAMPLE_EVERY)

    sampler = gevent.spawn(sample_forever)
    environment.events.quit.add_listener(lambda **_: sampler.kill(block=False))
    if server is None:
        return live, None
    environment.repaychaos_metrics_server = server
    environment.events.quit.add_listener(lambda **_: server.close())
    return live, server.url


def settings_from_env(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Port, source, scenario and clock for :func:`enable` from the ``REPAYCHAOS_*`` environment
    variables of :mod:`repaychaos.integrations.locust_plugin` (InvalidInput on a malformed value)."""
    import json
    import os

    from repaychaos.core.errors import InvalidInput
    from repaychaos.load.settings import LocustSettings
    from repaychaos.scenarios import load_scenario_data, resolve_scenario

    env = dict(os.environ if environ is None else environ)
    raw_port = env.get("REPAYCHAOS_METRICS_PORT", "")
    port: int | None = None
    if raw_port != "":
        try:
            port = int(raw_port)
        except ValueError:
            raise InvalidInput(f"REPAYCHAOS_METRICS_PORT: expected a port number, found {raw_port!r}") from None
        if not 0 <= port <= 65535:
            raise InvalidInput(f"REPAYCHAOS_METRICS_PORT: expected 0..65535, found {port}")
    source = env.get("REPAYCHAOS_METRICS_SOURCE", "") or "load"
    if source not in ("load", "target"):
        raise InvalidInput(f"REPAYCHAOS_METRICS_SOURCE: expected 'load' or 'target', found {source!r}")
    settings = LocustSettings.from_env(env)
    # as the locustfile reads it: a bundled name, a path, or the scenario itself as JSON
    text = settings.scenario.strip()
    scenario = load_scenario_data(json.loads(text)) if text.startswith("{") else resolve_scenario(text)
    clock: Callable[[], float] | None = None
    if settings.t0 is not None and (settings.time_scale is not None or settings.time_scales is not None):
        t0 = settings.t0
        scale = TimeScale.of(settings.time_scales if settings.time_scales is not None else settings.time_scale or 1.0)
        clock = lambda: max(0.0, scale.scenario_at(time.time() - t0))  # noqa: E731
    return {"port": port, "source": source, "scenario": scenario, "clock": clock}


def families(text: str) -> Sequence[Any]:
    """The metric families of a scrape (prometheus_client's parser), for probes and tests."""
    from prometheus_client.parser import text_string_to_metric_families

    return list(text_string_to_metric_families(text))
