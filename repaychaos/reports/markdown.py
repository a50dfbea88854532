"""summary.md: the verdict, the SLO table and the headline numbers, fit for a CI job summary
(e.g. appended to ``$GITHUB_STEP_SUMMARY``). No images: a job summary must stand alone."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from repaychaos.scenarios.faults import CAUSES
from repaychaos.reports.fmt import (
    VERDICT_MARK,
    VERDICT_WORD,
    format_ci,
    format_value,
    overall_verdict,
    pct,
    per_10k,
    result_label,
    seconds,
    validity_notes,
    verdict_of,
)

__all__ = ["summary_markdown", "slo_table_markdown", "INCONCLUSIVE_RULE"]

INCONCLUSIVE_RULE = (
    "An SLO is **inconclusive** when the 95% confidence interval of a ratio straddles its "
    "threshold: the run cannot tell pass from fail, and a rerun could flip it. "
    "More repayments (longer runs, more replications) narrow the interval."
)


def _escape(text: str) -> str:
    return str(text).replace("|", "\\|")


def slo_table_markdown(results: Sequence[Mapping[str, Any]]) -> str:
    """One row per SLO per result; the gate column says whether it counts against the run."""
    head = "| result | SLO | rule | observed | 95% CI | verdict | gate |\n|---|---|---|---|---|---|---|\n"
    rows = []
    for result in results:
        for row in result.get("slo", []):
            metric = row["metric"]
            verdict = verdict_of(row)
            gate = "passes" if row.get("passed") else "**fails**"
            rows.append("| " + " | ".join([
                _escape(result_label(result)), f"`{_escape(metric)}`", f"`{_escape(row['rule'])}`",
                format_value(metric, row.get("observed")), format_ci(metric, row.get("ci95")),
                VERDICT_MARK[verdict], gate,
            ]) + " |")
    if not rows:
        return "_No SLOs in these scenarios._\n"
    return head + "\n".join(rows) + "\n"


def _headline(results: Sequence[Mapping[str, Any]]) -> str:
    # users who paid twice: a column only where a scenario has them (workload.check.pay_again)
    doubles = any("double_repayments_per_10k" in r["metrics"] for r in results)
    # views put back by an older write: a column only where a scenario has accounts (workload.accounts)
    regressions = any("view_regressions" in r["metrics"] for r in results)
    head = ("| result | repayments | reads | stale read ratio | affected | time to usable p50 / p95 / p99 "
            "| never usable | support /10k | " + ("paid twice /10k | " if doubles else "") + "lost | duplicates |"
            + (" view regressions |" if regressions else "") + "\n"
            "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if doubles else "")
            + ("---|" if regressions else "") + "\n")
    rows = []
    for r in results:
        m = r["metrics"]
        ttu = m.get("time_to_usable", {})
        srr = m["stale_read_ratio"]
        cells = [
            _escape(result_label(r)),
            f"{m['repayments']:,}",
            f"{m['reads']:,}",
            f"{pct(srr['value'])} ({format_ci('stale_read_ratio', srr.get('ci95'))})",
            pct(m["affected_ratio"]["value"]),
            " / ".join(seconds(ttu.get(k)) for k in ("p50", "p95", "p99")),
            f"{m.get('never_usable', 0):,}",
            per_10k(m.get('support_contacts_per_10k', 0)),
            str(m.get("lost_repayments", 0)),
            str(m.get("duplicate_repayments", 0)),
        ]
        if doubles:
            cells.insert(8, per_10k(m.get("double_repayments_per_10k")))
        if regressions:
            cells.append(f"{m['view_regressions']:,}" if "view_regressions" in m else "")
        rows.append("| " + " | ".join(cells) + " |")
    return head + "\n".join(rows) + "\n"


def _causes(results: Sequence[Mapping[str, Any]]) -> str:
    head = "| result | " + " | ".join(CAUSES) + " |\n|---|" + "---|" * len(CAUSES) + "\n"
    rows = []
    for r in results:
        by = r["metrics"].get("stale_reads_by_cause", {})
        total = sum(by.values()) or 1
        rows.append("| " + _escape(result_label(r)) + " | " + " | ".join(
            f"{by.get(c, 0):,} ({100 * by.get(c, 0) / total:.0f}%)" for c in CAUSES) + " |")
    return head + "\n".join(rows) + "\n"


def summary_markdown(results: Sequence[Mapping[str, Any]], comparison: dict[str, Any] | None = None,
                     calibration: Mapping[str, Any] | None = None) -> str:
    """The whole summary.md text: verdict first, then SLOs, headline numbers, causes, comparison."""
    verdict = overall_verdict(results)
    names = ", ".join(result_label(r) for r in results)
    gate = all(r.get("passed") for r in results)
    if comparison and comparison.get("inconclusive"):
        parts = [f"## repaychaos: NOT COMPARED — {_escape(names)}", "",
                 f"The measurement is not one: {_escape(comparison['inconclusive'])}; CI gate: **failed**."]
    elif comparison and not comparison.get("agree", False):
        on = ", ".join(comparison.get("disagree_on") or ["(nothing comparable)"])
        parts = [f"## repaychaos: DISAGREE — {_escape(names)}", "",
                 f"Model and measurement disagree on {_escape(on)}; SLOs {VERDICT_WORD[verdict]}; CI gate: **failed**."]
    else:
        parts = [f"## repaychaos: {VERDICT_WORD[verdict]} — {_escape(names)}", ""]
        agreed = "Model and measurement agree. " if comparison else ""
        parts.append(f"{agreed}CI gate: **{'passed' if gate else 'failed'}**.")
    for note in validity_notes(results):
        parts += ["", f"**Not a measurement.** {_escape(note)}"]
    if any(verdict_of(row) == "inconclusive" for r in results for row in r.get("slo", [])):
        parts.append("")
        parts.append(INCONCLUSIVE_RULE)
    parts += ["", "### SLOs", "", slo_table_markdown(results), "### Headline numbers", "", _headline(results),
              "### Stale reads by cause", "", _causes(results)]
    for r in results:
        rec = (r.get("recovery") or {}).get("windows") or []
        if rec:
            base = r["recovery"].get("baseline") or "the stale share outside fault windows"
            parts += [f"### Recovery after each fault window — {_escape(result_label(r))}", "",
                      f"Back to baseline: a bin's stale share within 1.5× of {_escape(base)}.", "",
                      "| fault | window | back to baseline after |\n|---|---|---|"]
            for w in rec:
                end = "open" if w.get("end") is None else seconds(w["end"])
                after = "not within the run" if w.get("recovered_after") is None else seconds(w["recovered_after"])
                parts.append(f"| {_escape(w['fault'])} | {seconds(w['start'])} – {end} | {after} |")
            parts.append("")
    if comparison:
        from repaychaos.reports.compare import comparison_markdown

        parts += [comparison_markdown(comparison)]
    if calibration:
        from repaychaos.reports.calibration import calibration_markdown

        parts += [calibration_markdown(calibration)]
    if any((r.get("run") or {}).get("synthetic") for r in results):
        parts += ["> note: built from synthetic records (tests/synthetic.py), not a model run or a measurement."]
    return "\n".join(parts).rstrip() + "\n"
