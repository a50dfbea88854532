"""Is a load run a measurement? Its time resolution and its validity, from what the users recorded.

A run that could not keep up is not a measurement: its arrivals left late, its
repayments went unacked, its users never finished, or its reads landed so far from
their instants that the staleness they show is biased. Each check below is one line of
``run.validity.why``; when any fails the result's verdict is ``inconclusive``, it never
passes, and the command line exits 3 with the reasons.

Time resolution. At time scale K every wall second a read lands after its instant is K
scenario seconds. A read meant for ``d`` after the ack that lands ``e`` later sees the
staleness ``p(d + e) = p(d) + p'(d) e + ...``: to first order the share of stale reads
is biased by ``e`` times the mean of ``p'`` over the reads, linear in ``e``, so the
*mean* lateness is what biases it (a few stragglers do not). Relative to the share,
``p'/p`` is the hazard ``h`` of the view's delay, and for the delays a check policy is
built to catch the hazard is at most about ``1 / d_check`` (an exponential delay whose
mean is ``d_check`` has exactly that hazard everywhere), with ``d_check`` the shortest
delay at which users typically check: the smaller of ``first_after``'s median and
``every`` (when a user checks more than once). So ``mean(e) / d_check`` bounds the
relative bias, and the run's resolution is ok when it is at most
:data:`RESOLUTION_RATIO` = 5 % (0.018 at e^-1 = 0.368, a third of the 99.9 % interval
of 800 reads). ``e`` counts what the client adds: the read's instant (the service's, when
its description names it; else the midpoint of sending and answer) after the planned one,
plus, when the service names no ack instant of its own, half the round trip of the
acknowledging request (the commit happened somewhere in it: the midpoint, as for a
read's instant; a service that answers right after its commit makes this an
overestimate).
A service that answers as of the planned instant (``{read_at}``) and says so in its
``read_at`` removes the read's part.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from repaychaos.load.lateness import Lateness

if TYPE_CHECKING:
    from repaychaos.core.types import ResultRecord
    from repaychaos.scenarios import Scenario

__all__ = ["time_resolution", "validity", "mark_invalid", "shortest_check_delay", "RESOLUTION_RATIO",
           "ARRIVAL_LATE_P50", "ARRIVAL_LATE_P99", "UNACKED_MAX", "INCOMPLETE_MAX", "READ_ERRORS_MAX"]

#: The client's mean lateness (scenario s) may be at most this share of the shortest typical check delay.
RESOLUTION_RATIO = 0.05
#: Wall seconds the arrivals' median lateness may reach: beyond it the client is not keeping to its
#: schedule (overloaded, it falls seconds behind; a busy machine's stalls move the tail, not the median).
ARRIVAL_LATE_P50 = 0.05
#: Wall seconds the arrivals' p99 lateness may reach: beyond it the client stalled.
ARRIVAL_LATE_P99 = 1.0
#: Share of users whose repayment was never acked beyond which the staleness measured is not the run's.
UNACKED_MAX = 0.02
#: Share of acked users who had not finished their checks when the run ended.
INCOMPLETE_MAX = 0.01
#: Share of status reads with no usable answer (an error, a timeout, or a read sent so late that the
#: service no longer answers as of its instant): the reads that remain are not the policy's reads.
READ_ERRORS_MAX = 0.01


def shortest_check_delay(scenario: Scenario) -> float:
    """Scenario seconds: the median of ``first_after``, or ``every`` if smaller and used."""
    check = scenario.workload.check
    dist = check.first_after
    lo, hi = 0.0, 1.0
    while dist.survival(hi) > 0.5 and hi < 1e9:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        if dist.survival(mid) > 0.5:
            lo = mid
        else:
            hi = mid
    d = hi
    if check.max_checks > 1:
        d = min(d, check.every)
    return d


def read_lateness(users: list[dict[str, Any]]) -> Lateness:
    """Wall seconds each read landed after its planned instant, plus half the ack's round trip when
    the service names no ack instant of its own (the client's part of every staleness reading)."""
    out = Lateness()
    for user in users:
        ack_lag = 0.0 if user.get("acked_at") is not None else max(0.0, float(user.get("ack_latency") or 0.0)) / 2
        for read in user.get("reads") or ():
            if len(read) >= 5 and read[4] is not None:
                out.add(float(read[0]) - float(read[4]) + ack_lag)
    return out


def time_resolution(scenario: Scenario, users: list[dict[str, Any]], k: float) -> dict[str, Any]:
    """``{ok, why, lateness_s, shortest_check_delay_s, ratio, threshold}`` (scenario seconds)."""
    late = read_lateness(users)
    d_min = shortest_check_delay(scenario)
    summary = late.summary(k)
    mean = summary["mean"]
    out: dict[str, Any] = {"lateness_s": summary, "shortest_check_delay_s": round(d_min, 6),
                           "threshold": RESOLUTION_RATIO}
    if mean is None:
        out.update(ok=True, ratio=None, why="no reads")
        return out
    ratio = max(0.0, float(mean)) / d_min if d_min > 0 else float("inf")
    out["ratio"] = round(ratio, 4) if ratio != float("inf") else None
    if ratio <= RESOLUTION_RATIO:
        out.update(ok=True, why=f"reads landed {float(mean):.3g} s (mean, scenario time) after their instants, "
                                f"{100 * ratio:.1f}% of the shortest check delay {d_min:.3g} s")
    else:
        out.update(ok=False, why=f"reads landed {float(mean):.3g} s (mean, scenario time: wall x K = {k:g}) after "
                                 f"their instants, {100 * ratio:.0f}% of the shortest check delay {d_min:.3g} s (at "
                                 f"most {100 * RESOLUTION_RATIO:g}%): the stale share reads low by up to about that "
                                 "share of itself; lower the time scale or the load on this machine")
    return out


def validity(*, arrivals_late: Lateness, users: int, acked: int, unacked: int, incomplete: int, complete: bool,
             cap_hit: bool, resolution: dict[str, Any], began_late_s: float | None = None,
             k: float = 1.0, reads_sent: int = 0, read_errors: int = 0) -> dict[str, Any]:
    """``{ok, why: [reasons]}``: did the run keep up well enough to be a measurement?
    ``began_late_s``: scenario seconds after 0 at which the arrivals began (None: not checked,
    as when attaching to a running service whose clock started earlier)."""
    why: list[str] = []
    if began_late_s is not None and began_late_s > ARRIVAL_LATE_P99 * k:
        why.append(f"the arrivals began {began_late_s:.3g} s (scenario time) after scenario time 0: Locust "
                   "started late and the arrivals before were never sent")
    p50, p99 = arrivals_late.quantile(0.5), arrivals_late.quantile(0.99)
    if p50 is not None and p50 > ARRIVAL_LATE_P50:
        why.append(f"arrivals left {p50:.3g} s late at the median (wall; at most {ARRIVAL_LATE_P50:g} s): "
                   "the client could not keep to the schedule")
    elif p99 is not None and p99 > ARRIVAL_LATE_P99:
        why.append(f"arrivals left up to {p99:.3g} s late (p99, wall; at most {ARRIVAL_LATE_P99:g} s): "
                   "the client stalled")
    if users and unacked > UNACKED_MAX * users:
        why.append(f"{unacked:,} of {users:,} repayments were never acked ({100 * unacked / users:.1f}%, at most "
                   f"{100 * UNACKED_MAX:g}%)")
    if not complete:
        why.append("the run ended before every shard's users were done")
    if acked and incomplete > INCOMPLETE_MAX * acked:
        why.append(f"{incomplete:,} of {acked:,} acked users had not finished their checks "
                   f"({100 * incomplete / acked:.1f}%, at most {100 * INCOMPLETE_MAX:g}%)")
    if reads_sent and read_errors > READ_ERRORS_MAX * reads_sent:
        why.append(f"{read_errors:,} of {reads_sent:,} status reads got no usable answer "
                   f"({100 * read_errors / reads_sent:.1f}%, at most {100 * READ_ERRORS_MAX:g}%): errors, timeouts, "
                   "or reads sent so late the service no longer answers as of their instants")
    if cap_hit:
        why.append("the request cap (max_requests) was reached")
    if not resolution.get("ok", True):
        why.append("time resolution: " + str(resolution["why"]))
    return {"ok": not why, "why": why}


def mark_invalid(result: ResultRecord) -> ResultRecord:
    """A result whose ``run.validity`` failed: verdict ``inconclusive``, never passed, and no SLO
    row passes either (each says why in ``not_a_measurement``)."""
    valid = result.get("run", {}).get("validity", {})
    if not valid.get("ok", True):
        result["verdict"] = "inconclusive"
        result["passed"] = False
        why = "; ".join(valid.get("why") or ())
        for row in result.get("slo") or ():
            if row.get("verdict") == "pass" or row.get("passed"):
                row["verdict"] = "inconclusive"
                row["passed"] = False
                row["not_a_measurement"] = why
    return result
