"""How numbers read in every report: one place, so HTML, Markdown and JUnit agree."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from repaychaos.core.catalog import RATIO_METRICS
from repaychaos.scenarios.units import format_duration

__all__ = [
    "pct",
    "seconds",
    "per_10k",
    "metric_kind",
    "format_value",
    "format_ci",
    "verdict_of",
    "overall_verdict",
    "VERDICT_MARK",
    "VERDICT_WORD",
    "result_label",
    "slo_sentence",
]

#: Short marks for tables: plain words, no emoji (they render as empty boxes where no emoji
#: font is installed, e.g. on a CI runner or a headless browser).
VERDICT_MARK = {"pass": "pass", "fail": "FAIL", "inconclusive": "INCONCLUSIVE"}
VERDICT_WORD = {"pass": "PASS", "fail": "FAIL", "inconclusive": "INCONCLUSIVE"}


def pct(value: float | None, digits: int = 3) -> str:
    """A ratio as a percentage with ``digits`` significant digits (``0.00567`` -> ``0.567%``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.{digits}g}%"


def seconds(value: float | None) -> str:
    """A duration as people read it (the one formatter, :func:`~repaychaos.scenarios.units.format_duration`)."""
    return format_duration(value)


def per_10k(value: float | None) -> str:
    """A rate per 10,000 repayments: three significant digits, never in e-notation."""
    if value is None:
        return "n/a"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def metric_kind(metric: str) -> str:
    """``ratio``, ``time``, ``rate`` or ``count`` for a metric path (``@phase`` ignored)."""
    base = metric.split("@", 1)[0]
    if base in RATIO_METRICS:
        return "ratio"
    if base.startswith("time_to_usable."):
        return "time"
    if base in ("support_contacts_per_10k", "double_repayments_per_10k"):
        return "rate"
    return "count"


def format_value(metric: str, value: Any) -> str:
    """An observed value formatted for its metric kind."""
    if value is None:
        return "n/a"
    kind = metric_kind(metric)
    if kind == "ratio":
        return pct(value)
    if kind == "time":
        return seconds(value)
    if kind == "rate":
        return per_10k(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:g}"


def format_ci(metric: str, ci: Any) -> str:
    """``[low, high]`` formatted like the value, or an empty string."""
    if not ci:
        return ""
    return f"{format_value(metric, ci[0])} – {format_value(metric, ci[1])}"


def verdict_of(row_or_result: Mapping[str, Any]) -> str:
    """The verdict of an SLO row or a result (older records only have ``passed``)."""
    return row_or_result.get("verdict") or ("pass" if row_or_result.get("passed") else "fail")


def overall_verdict(results: Sequence[Mapping[str, Any]]) -> str:
    """The worst verdict over several results: fail > inconclusive > pass."""
    verdicts = {verdict_of(r) for r in results}
    for v in ("fail", "inconclusive"):
        if v in verdicts:
            return v
    return "pass"


def validity_notes(results: Sequence[Mapping[str, Any]]) -> list[str]:
    """One sentence per load result that is not a measurement (``run.validity``) or whose time
    resolution was not ok (``run.time_resolution``), for every report's top."""
    notes = []
    for r in results:
        run = r.get("run") or {}
        why = list((run.get("validity") or {}).get("why") or ())
        resolution = run.get("time_resolution") or {}
        if resolution.get("ok") is False and not any(str(w).startswith("time resolution") for w in why):
            why.append(f"time resolution: {resolution.get('why')}")
        if why:
            notes.append(f"{result_label(r)} is not a measurement (verdict inconclusive): " + "; ".join(map(str, why)))
    return notes


def result_label(result: Mapping[str, Any]) -> str:
    """``nightly-maintenance (sim)``: how a result is named in every report."""
    return f"{result['scenario'].get('name', '?')} ({result.get('source', '?')})"


def slo_sentence(row: Mapping[str, Any]) -> str:
    """One line saying what was observed against which rule, for failure messages."""
    metric = row["metric"]
    text = f"{metric}: observed {format_value(metric, row.get('observed'))}"
    if row.get("ci95"):
        text += f" (95% CI {format_ci(metric, row['ci95'])})"
    text += f", rule {row['rule']}"
    verdict = verdict_of(row)
    if row.get("not_a_measurement"):
        text += f" -> INCONCLUSIVE: the run is not a measurement ({row['not_a_measurement']})"
    elif verdict == "inconclusive":
        text += " -> INCONCLUSIVE: the 95% interval straddles the threshold"
        text += "; counted as a failure" if not row.get("passed") else "; not counted as a failure"
    else:
        text += f" -> {VERDICT_WORD[verdict]}"
    return text
