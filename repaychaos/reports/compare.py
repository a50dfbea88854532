"""Model against measurement: does the SimPy model agree with the live service?

Where they agree, the model has earned the right to extrapolate; where they disagree the
report shows where. For each headline metric we compare the model's value with the
measured one and say whether they agree *within their combined intervals*: with
``d = model - measured``, they agree when ``|d| <= sqrt(h_model² + h_measured²)``, using
each side's 95 % half-width on the side facing the other (the usual interval for a
difference of two independent estimates). Quantiles carry no interval in result.json,
so theirs is read off the staleness curve: the order-statistic interval
``[Q(q - δ), Q(q + δ)]`` with ``δ = 1.96·sqrt(q(1-q)/n)``, interpolated log-linearly
between grid points (approximate, and labelled so).

The staleness curves are compared point by point on the shared grid: the RMS difference,
the largest gap and how many points fall outside the combined bands. ``agree`` is True
when every headline metric agrees; the curve is reported beside it, not folded in, because
18 simultaneous pointwise tests would disagree by chance far too often.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any

from repaychaos.core.metrics import wilson
from repaychaos.reports.fmt import format_ci, format_value

__all__ = [
    "SCHEMA",
    "HEADLINE",
    "compare_results",
    "interval_agreement",
    "quantile_interval",
    "write_comparison",
    "comparison_markdown",
    "comparison_html",
]

SCHEMA = "repaychaos.comparison/1"
Z95 = 1.959963984540054

#: The metrics compared, in report order.
HEADLINE: tuple[str, ...] = (
    "stale_read_ratio",
    "affected_ratio",
    "time_to_usable.p50",
    "time_to_usable.p95",
    "time_to_usable.p99",
    "support_contacts_per_10k",
)


def interval_agreement(a: float, a_ci: list[float] | None, b: float, b_ci: list[float] | None) -> tuple[bool, float]:
    """Do estimates ``a`` and ``b`` agree within their combined 95 % intervals?

    Returns ``(agree, tolerance)``; a missing interval counts as zero width.
    """
    a_low, a_high = a_ci if a_ci else (a, a)
    b_low, b_high = b_ci if b_ci else (b, b)
    if a >= b:
        tol = math.hypot(a - a_low, b_high - b)
    else:
        tol = math.hypot(a_high - a, b - b_low)
    # a hair of float slack so identical inputs always agree
    return abs(a - b) <= tol + 1e-12 * max(1.0, abs(a), abs(b)), tol


def _inverse_curve(t: list[float], p: list[float], target: float) -> float:
    """The first t where the (non-increasing) curve p falls to ``target``; log-linear in t."""
    if target >= p[0]:
        return t[0]
    for i in range(1, len(t)):
        if p[i] <= target:
            t0, t1, p0, p1 = t[i - 1], t[i], p[i - 1], p[i]
            if p0 == p1:
                return t1
            frac = (p0 - target) / (p0 - p1)
            if t0 > 0:
                return math.exp(math.log(t0) + frac * (math.log(t1) - math.log(t0)))
            return t0 + frac * (t1 - t0)
    return math.inf


def quantile_interval(result: dict[str, Any], q: float) -> list[float] | None:
    """An approximate 95 % interval of the time-to-usable ``q`` quantile (see the module doc)."""
    m = result["metrics"]
    vis = m.get("visibility") or {}
    t, p = vis.get("t"), vis.get("p_stale")
    value = (m.get("time_to_usable") or {}).get(f"p{round(q * 100) if q < 0.999 else 999}")
    holds = m.get("risk_holds", 0)
    n = m.get("repayments", 0) - holds
    if not t or not p or n <= 0 or value is None:
        return None
    never = max(0, m.get("never_usable", 0) - holds) / n
    if never >= 1:
        return None
    # the curve counts never-usable repayments as stale forever; quantiles leave them out
    p_usable = [max(0.0, (x - never) / (1 - never)) for x in p]
    delta = Z95 * math.sqrt(q * (1 - q) / n)
    low = _inverse_curve(t, p_usable, 1 - max(0.0, q - delta))
    high = _inverse_curve(t, p_usable, 1 - min(1.0, q + delta))
    top = (m.get("time_to_usable") or {}).get("max") or value
    high = min(high, top)
    return [min(low, value), max(high, value)]


def _support_interval(result: dict[str, Any]) -> list[float] | None:
    m = result["metrics"]
    n = m.get("repayments", 0)
    contacts = m.get("support_contacts")
    if contacts is None or not n:
        return None
    low, high = wilson(contacts, n)
    return [10_000 * low, 10_000 * high]


def _value_and_interval(result: dict[str, Any], metric: str) -> tuple[float | None, list[float] | None, str]:
    path, _, phase = metric.partition("@")
    source = result["metrics"] if not phase else (result.get("phases") or {}).get(phase)
    if source is None:
        return None, None, "missing"
    if path in ("stale_read_ratio", "affected_ratio"):
        node = source.get(path) or {}
        return node.get("value"), node.get("ci95"), "ci95 from the result"
    if path.startswith("time_to_usable."):
        value = (source.get("time_to_usable") or {}).get(path.split(".", 1)[1])
        q = int(path.split(".p", 1)[1]) / (1000 if path.endswith("p999") else 100)
        sub = result if not phase else {"metrics": source}
        return value, quantile_interval(sub, q), "order-statistic interval from the staleness curve (approx.)"
    if path == "support_contacts_per_10k":
        sub = result if not phase else {"metrics": source}
        return source.get(path), _support_interval(sub), "Wilson interval on support contacts"
    return source.get(path), None, "no interval"


def _curve(sim: dict[str, Any], load: dict[str, Any]) -> dict[str, Any]:
    a, b = sim["metrics"].get("visibility") or {}, load["metrics"].get("visibility") or {}
    shared = [x for x in a.get("t", []) if x in set(b.get("t", []))]
    ia = {x: i for i, x in enumerate(a.get("t", []))}
    ib = {x: i for i, x in enumerate(b.get("t", []))}
    model = [a["p_stale"][ia[x]] for x in shared]
    measured = [b["p_stale"][ib[x]] for x in shared]
    diffs = [m - s for m, s in zip(model, measured)]
    outside = []
    for x, m, s in zip(shared, model, measured):
        ci_a = [a["ci95_low"][ia[x]], a["ci95_high"][ia[x]]] if "ci95_low" in a else None
        ci_b = [b["ci95_low"][ib[x]], b["ci95_high"][ib[x]]] if "ci95_low" in b else None
        if not interval_agreement(m, ci_a, s, ci_b)[0]:
            outside.append(x)
    rms = math.sqrt(sum(d * d for d in diffs) / len(diffs)) if diffs else None
    return {
        "t": shared,
        "model": model,
        "measured": measured,
        "rms": None if rms is None else round(rms, 9),
        "max_abs": round(max((abs(d) for d in diffs), default=0.0), 9) if diffs else None,
        "points_outside_bands": outside,
    }


def compare_results(sim_result: dict[str, Any], load_result: dict[str, Any]) -> dict[str, Any]:
    """Per headline metric: model value, measured value, intervals, agreement; the curve
    RMS difference; ``agree`` overall. Phase ratios shared by both results are compared too."""
    notes = []
    if sim_result.get("source") != "sim" or load_result.get("source") not in ("load", "target"):
        notes.append(f"expected a sim and a load result, got {sim_result.get('source')!r} and {load_result.get('source')!r}")
    name_a = sim_result["scenario"].get("name")
    name_b = load_result["scenario"].get("name")
    if name_a != name_b:
        notes.append(f"the results are of different scenarios ({name_a!r} vs {name_b!r})")
    metrics = list(HEADLINE)
    shared_phases = sorted(set(sim_result.get("phases") or {}) & set(load_result.get("phases") or {}))
    metrics += [f"stale_read_ratio@{p}" for p in shared_phases]
    rows = []
    for metric in metrics:
        m, m_ci, basis = _value_and_interval(sim_result, metric)
        s, s_ci, _ = _value_and_interval(load_result, metric)
        row: dict[str, Any] = {"metric": metric, "model": m, "model_ci95": m_ci, "measured": s, "measured_ci95": s_ci,
                               "basis": basis}
        if m is None or s is None:
            row.update(difference=None, tolerance=None, agree=None, measured_over_model=None)
        else:
            agree, tol = interval_agreement(m, m_ci, s, s_ci)
            row.update(difference=round(m - s, 9), tolerance=round(tol, 9), agree=agree,
                       measured_over_model=round(s / m, 6) if m else None)
        rows.append(row)
    headline = [r for r in rows if "@" not in r["metric"]]
    judged = [r for r in headline if r["agree"] is not None]
    missing = [r["metric"] for r in headline if r["agree"] is None]
    if missing:
        notes.append("not compared (missing in a result): " + ", ".join(missing))
    return {
        "schema": SCHEMA,
        "scenario": name_a,
        "model": {"source": sim_result.get("source"), "seed": sim_result.get("seed"),
                  "replications": sim_result.get("replications", 1),
                  "repayments": sim_result["metrics"].get("repayments")},
        "measured": {"source": load_result.get("source"), "seed": load_result.get("seed"),
                     "replications": load_result.get("replications", 1),
                     "repayments": load_result["metrics"].get("repayments")},
        "metrics": rows,
        "curve": _curve(sim_result, load_result),
        "agree": bool(judged) and all(r["agree"] for r in judged),
        "disagree_on": [r["metric"] for r in judged if not r["agree"]],
        "notes": notes,
    }


def write_comparison(comparison: dict[str, Any], out_dir: str | os.PathLike[str]) -> Path:
    """Write ``comparison.json`` into ``out_dir`` and return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "comparison.json"
    path.write_text(json.dumps(comparison, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def _cells(row: dict[str, Any]) -> list[str]:
    metric = row["metric"]
    agree = {True: "✅ agree", False: "❌ disagree", None: "n/a"}[row["agree"]]
    ratio = row.get("measured_over_model")
    return [
        metric,
        format_value(metric, row["model"]),
        format_ci(metric, row["model_ci95"]),
        format_value(metric, row["measured"]),
        format_ci(metric, row["measured_ci95"]),
        "n/a" if ratio is None else f"{ratio:.3g}×",
        agree,
    ]


_HEAD = ["metric", "model", "model 95% CI", "measured", "measured 95% CI", "measured / model", "agreement"]


def _summary_line(comparison: dict[str, Any]) -> str:
    curve = comparison["curve"]
    verdict = "agree" if comparison["agree"] else "DISAGREE on " + ", ".join(comparison["disagree_on"] or ["(nothing comparable)"])
    rms = "n/a" if curve["rms"] is None else f"{curve['rms']:.3g}"
    return (f"Model and measurement {verdict}. Staleness curves: RMS difference {rms}, "
            f"{len(curve['points_outside_bands'])} of {len(curve['t'])} grid points outside the combined bands.")


def comparison_markdown(comparison: dict[str, Any]) -> str:
    """The comparison as a Markdown section (used in summary.md)."""
    lines = ["### Model vs measurement", "", _summary_line(comparison), "",
             "| " + " | ".join(_HEAD) + " |", "|" + "---|" * len(_HEAD)]
    for row in comparison["metrics"]:
        lines.append("| " + " | ".join(_cells(row)) + " |")
    lines.append("")
    lines.append("Agreement: |model − measured| ≤ √(h_model² + h_measured²) with 95% half-widths; "
                 "quantile intervals are read off the staleness curve (approximate).")
    for note in comparison.get("notes", []):
        lines.append(f"\n> note: {note}")
    return "\n".join(lines) + "\n"


def comparison_html(comparison: dict[str, Any]) -> str:
    """The comparison as an HTML fragment (used in report.html)."""
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in _HEAD)
    body = []
    for row in comparison["metrics"]:
        cls = {True: "pass", False: "fail", None: ""}[row["agree"]]
        body.append(f'<tr class="{cls}">' + "".join(f"<td>{esc(c)}</td>" for c in _cells(row)) + "</tr>")
    notes = "".join(f'<p class="note">{esc(n)}</p>' for n in comparison.get("notes", []))
    return (f'<p class="{"pass" if comparison["agree"] else "fail"}"><strong>{esc(_summary_line(comparison))}</strong></p>'
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            '<p class="note">Agreement: |model − measured| ≤ √(h_model² + h_measured²) with 95% half-widths; '
            "quantile intervals are read off the staleness curve (approximate).</p>" + notes)
