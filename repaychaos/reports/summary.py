"""A readable terminal summary of a result record (the CLI prints records, never raw state)."""

from __future__ import annotations

from typing import Any, Mapping

from repaychaos.scenarios.faults import CAUSES
from repaychaos.reports.fmt import pct, seconds
from repaychaos.core.types import ResultRecord

__all__ = ["format_summary", "summarize_sweep"]


def _observed(row: Mapping[str, Any]) -> str:
    value = row["observed"]
    if value is None:
        return "n/a"
    if isinstance(value, float) and ("ratio" in row["metric"]):
        text = pct(value)
        if row.get("ci95"):
            text += f" [{pct(row['ci95'][0])}, {pct(row['ci95'][1])}]"
        return text
    if "time_to_usable" in row["metric"]:
        return seconds(value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def format_summary(result: ResultRecord) -> str:
    """Verdict, headline numbers, stale reads by cause and the SLO table, for a terminal."""
    m: Mapping[str, Any] = result["metrics"]
    scenario = result["scenario"]
    ttu = m["time_to_usable"]
    verdict = result.get("verdict", "pass" if result["passed"] else "fail").upper()
    lines = [
        f"{scenario['name']} [{result['source']}] seed={result['seed']} "
        f"replications={result.get('replications', 1)}: {verdict}",
        f"  repayments {m['repayments']:,}  reads {m['reads']:,}  stale reads {m['stale_reads']:,}",
        f"  stale_read_ratio {pct(m['stale_read_ratio']['value'])} "
        f"(95% CI {pct(m['stale_read_ratio']['ci95'][0])}..{pct(m['stale_read_ratio']['ci95'][1])})"
        f"   affected_ratio {pct(m['affected_ratio']['value'])}",
        f"  time_to_usable p50 {seconds(ttu['p50'])}  p95 {seconds(ttu['p95'])}  p99 {seconds(ttu['p99'])}"
        f"  max {seconds(ttu['max'])}   never_usable {m['never_usable']:,}",
        f"  support_contacts_per_10k {m['support_contacts_per_10k']:g}   lost {m['lost_repayments']}"
        f"   duplicates {m['duplicate_repayments']}   wrong_usable_reads {m['wrong_usable_reads']}",
    ]
    if "double_repayments_per_10k" in m:
        lines.append(f"  double_repayments_per_10k {m['double_repayments_per_10k']:g}"
                     f"   ({m['double_repayments']:,} users paid twice)")
    if "view_regressions" in m:
        lines.append(f"  view_regressions {m['view_regressions']:,}   (status writes that put an account's view back)")
    by_cause = m.get("stale_reads_by_cause", {})
    if m["stale_reads"]:
        parts = [f"{c} {by_cause.get(c, 0):,}" for c in CAUSES if by_cause.get(c)]
        lines.append("  stale reads by cause: " + ", ".join(parts))
    run: Mapping[str, Any] = result.get("run") or {}
    late = run.get("request_lateness_s")
    resolution = run.get("time_resolution")
    if late and resolution:
        kinds = ", ".join(f"{kind} {seconds(v.get('p99'))}" for kind, v in late.items() if v.get("n"))
        state = "ok" if resolution.get("ok") else "NOT OK"
        lines.append(f"  client lateness p99 (scenario time): {kinds}; time resolution {state}"
                     f" (reads {seconds(resolution['lateness_s'].get('mean'))} late on average against the"
                     f" shortest check delay {seconds(resolution.get('shortest_check_delay_s'))})")
    if result.get("slo"):
        lines.append("  SLOs:")
        width = max(len(r["metric"]) for r in result["slo"])
        for row in result["slo"]:
            mark = {"pass": "ok  ", "fail": "FAIL", "inconclusive": "??  "}[row.get("verdict", "pass" if row["passed"] else "fail")]
            lines.append(f"    {mark} {row['metric']:<{width}} {row['rule']:<10} observed {_observed(row)}")
    return "\n".join(lines)


def summarize_sweep(record: dict[str, Any]) -> str:
    """A few lines for the terminal: how many points met every SLO, and the frontier."""
    rows = record["rows"]
    passed = sum(1 for r in rows if r["passed"])
    run = record.get("run", {})
    where_run = {"processes": "local processes", "inline": "process", "dask": "Dask threads"}.get(run.get("backend"), "workers")
    head = f"sweep {record['scenario'].get('name', '')}: {len(rows)} point(s), {passed} met every SLO"
    if run.get("wall_seconds") is not None:
        head += f" ({run['wall_seconds']:.1f}s on {run['workers']} {where_run})"
    lines = [head]
    frontier = record.get("frontier")
    if frontier:
        key = frontier["key"]
        word = {"max": "highest", "min": "smallest"}.get(frontier.get("goal") or "", "best")
        for point in frontier["points"]:
            where = ", ".join(f"{k}={_text(v)}" for k, v in point["values"].items())
            prefix = f"  {where}: " if where else "  "
            if point["status"] == "none_pass":
                lines.append(f"{prefix}no {key} tried meets every SLO")
            elif point["status"] == "all_pass":
                beyond = f" (frontier at or beyond {_text(point['value'])})" if point["value"] is not None else ""
                lines.append(f"{prefix}every {key} tried meets every SLO{beyond}")
            else:
                lines.append(f"{prefix}{word} {key} meeting every SLO: {_text(point['value'])}")
    return "\n".join(lines)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else f"{value:g}" if isinstance(value, float) else str(value)
