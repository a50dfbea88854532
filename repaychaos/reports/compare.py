"""Model against measurement: does the SimPy model agree with the live service?

Where they agree, the model has earned the right to extrapolate; where they disagree the
report shows where. Each headline metric is a two-sample test of "model and measurement
estimate the same quantity": ``t = (model − measured) / sqrt(se_model² + se_measured²)``
with the standard errors each result carries (batch means over ack time, see
:mod:`repaychaos.core.stats`) and Welch–Satterthwaite degrees of freedom. The family of
headline metrics is controlled with **Holm's step-down procedure** at 5 %, so a correct
model is called "disagree" in at most 5 % of runs whatever the correlation between the
metrics (they are strongly correlated: Holm is then conservative). A metric without a
standard error on either side (a tail quantile of a short run) is shown, not tested.

The comparison also states its **power**: the smallest relative bias of
``stale_read_ratio`` it would detect with 80 % probability at this pair's standard
errors, at Holm's first-step level ``α/m`` (the level a lone biased metric must reach).

The staleness curves are compared point by point on the shared grid: the RMS difference,
the largest gap and how many points fall outside the combined bands. The curve is
reported beside the verdict, not folded in, because 18 simultaneous pointwise tests
would disagree by chance far too often.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

from repaychaos.reports.fmt import format_ci, format_value
from repaychaos.core.types import ResultRecord

__all__ = [
    "SCHEMA",
    "HEADLINE",
    "HEADLINE_IF_PRESENT",
    "ALPHA",
    "POWER",
    "compare_results",
    "holm",
    "two_sample_test",
    "interval_agreement",
    "write_comparison",
    "comparison_markdown",
    "comparison_html",
    "comparison_text",
]

SCHEMA = "repaychaos.comparison/2"
Z95 = 1.959963984540054

#: Family-wise error rate of the agreement verdict.
ALPHA = 0.05
#: The power at which the minimal detectable bias is stated.
POWER = 0.80

#: The metrics compared, in report order (the Holm family).
HEADLINE: tuple[str, ...] = (
    "stale_read_ratio",
    "affected_ratio",
    "time_to_usable.p50",
    "time_to_usable.p95",
    "time_to_usable.p99",
    "support_contacts_per_10k",
)

#: Compared too, in the same Holm family, when both results carry them (scenarios whose
#: users pay again: ``workload.check.pay_again``).
HEADLINE_IF_PRESENT: tuple[str, ...] = ("double_repayments_per_10k",)


def interval_agreement(a: float, a_ci: list[float] | None, b: float, b_ci: list[float] | None) -> tuple[bool, float]:
    """Do estimates ``a`` and ``b`` agree within their combined 95 % intervals (one
    pointwise check, used for the staleness-curve bands)?

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


def two_sample_test(a: float, se_a: float, dof_a: int | None, b: float, se_b: float,
                    dof_b: int | None) -> tuple[float, float, float | None]:
    """Two-sided test of ``a == b`` for independent estimates: ``(p_value, se_diff, dof)``.

    Welch–Satterthwaite d.o.f. from each side's (``None`` = normal); with both standard
    errors zero the p-value is 1 when the values are equal and 0 otherwise.
    """
    from scipy.stats import norm, t as student_t

    se = math.hypot(se_a, se_b)
    diff = abs(a - b)
    if se == 0:
        return (1.0 if diff <= 1e-12 * max(1.0, abs(a), abs(b)) else 0.0), 0.0, None
    dof: float | None = None
    if dof_a and dof_b:
        dof = se ** 4 / (se_a ** 4 / dof_a + se_b ** 4 / dof_b)
    elif dof_a and se_b == 0:
        dof = dof_a
    elif dof_b and se_a == 0:
        dof = dof_b
    stat = diff / se
    p = 2 * float(norm.sf(stat) if dof is None else student_t.sf(stat, dof))
    return p, se, dof


def holm(p_values: list[float], alpha: float = ALPHA) -> tuple[list[float], list[bool]]:
    """Holm's step-down procedure: Holm-adjusted p-values and which hypotheses are rejected
    at family-wise error ``alpha`` (Holm 1979, Scand. J. Statist. 6)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted, [adj <= alpha for adj in adjusted]


def _estimate(result: Mapping[str, Any], metric: str) -> tuple[float | None, list[float] | None, float | None, int | None]:
    """Value, 95 % interval, standard error and d.o.f. of ``metric`` (``path@phase``) in a result."""
    path, _, phase = metric.partition("@")
    source = result["metrics"] if not phase else (result.get("phases") or {}).get(phase)
    if source is None:
        return None, None, None, None
    node: Any = source
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        value, info = node.get("value"), node
    else:
        value, info = node, (source.get("intervals") or {}).get(path) or {}
    ci = info.get("ci95")
    se = info.get("se")
    if se is None and ci is not None and value is not None and "se" not in info:
        se = (ci[1] - ci[0]) / (2 * Z95)  # a record from before standard errors were written
    return value, ci, se, info.get("dof")


def _z(p: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(p))


def _curve(sim: Mapping[str, Any], load: Mapping[str, Any]) -> dict[str, Any]:
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


#: Relative difference of a ratio that a paired comparison tolerates before testing: the live
#: harness resolves time only to about K wall milliseconds (a user cannot look before the ack
#: reaches it), which moves its ratios by up to a few per cent; the
#: paired test is precise enough to see that, and "disagree" must mean a model error that
#: matters, not the harness's resolution. A 10 % bias is still caught (``power`` says at what size).
PAIRED_MARGIN = 0.03

#: Ratios compared paired by batch position when both results carry ``batches``:
#: metric -> (numerator, denominator) keys of the batches section.
PAIRED: dict[str, tuple[str, str]] = {"stale_read_ratio": ("stale_reads", "reads"),
                                      "affected_ratio": ("affected", "repayments"),
                                      "double_repayments_per_10k": ("double", "repayments")}
#: Metrics written as a multiple of their ratio (per 10,000 repayments).
PAIRED_SCALE: dict[str, float] = {"double_repayments_per_10k": 10_000.0}


def _same_positions(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Both results carry per-position batches over the same stretch of ack time."""
    ba, bb = a.get("batches"), b.get("batches")
    if not ba or not bb or ba.get("positions") != bb.get("positions"):
        return False
    sa, sb = a["scenario"], b["scenario"]
    return bool(sa.get("warmup") == sb.get("warmup") and sa.get("duration") == sb.get("duration"))


def paired_test(sim_result: Mapping[str, Any], load_result: Mapping[str, Any],
                metric: str) -> tuple[float, float, float, float] | None:
    """``metric`` (a PAIRED ratio) compared by batch position: ``(model − measured, p, se, dof)``
    with the measurement's counts against the model's per-position ratios
    (:func:`repaychaos.core.stats.paired_ratio_difference`); None when not possible."""
    from scipy.stats import t as student_t

    from repaychaos.core.stats import paired_ratio_difference

    if metric not in PAIRED or not _same_positions(sim_result, load_result):
        return None
    num, den = PAIRED[metric]
    scale = PAIRED_SCALE.get(metric, 1.0)
    bm, bl = sim_result["batches"], load_result["batches"]
    for result, batches in ((sim_result, bm), (load_result, bl)):
        value = _estimate(result, metric)[0]
        total = sum(batches.get(den) or ())
        if (value is None or not total or num not in batches
                or abs(scale * sum(batches[num]) / total - value) > 1e-6 * max(1.0, value)):
            return None  # the batches are not this result's (an edited record): no pairing
    found = paired_ratio_difference(bl[num], bl[den], bm[num], bm[den])
    if found is None:
        return None
    diff, se, dof = found[0] * scale, found[1] * scale, found[2]
    excess = max(0.0, abs(diff) - paired_margin(sim_result, metric))
    if se == 0:
        return -diff, (1.0 if excess <= 1e-12 else 0.0), 0.0, dof
    return -diff, min(1.0, 2 * float(student_t.sf(excess / se, dof))), se, dof


def paired_margin(sim_result: Mapping[str, Any], metric: str) -> float:
    """The absolute difference a paired test of ``metric`` tolerates: PAIRED_MARGIN of the model's value."""
    value = _estimate(sim_result, metric)[0]
    return PAIRED_MARGIN * abs(value or 0.0)


def _test_rows(sim_result: Mapping[str, Any], load_result: Mapping[str, Any], metrics: list[str]) -> list[dict[str, Any]]:
    """One row per metric with both values, the test, and Holm's verdict over the rows tested."""
    rows = []
    for metric in metrics:
        m, m_ci, m_se, m_dof = _estimate(sim_result, metric)
        s, s_ci, s_se, s_dof = _estimate(load_result, metric)
        row: dict[str, Any] = {"metric": metric, "model": m, "model_ci95": m_ci, "model_se": m_se,
                               "measured": s, "measured_ci95": s_ci, "measured_se": s_se,
                               "difference": None, "tolerance": None, "p_value": None, "p_holm": None,
                               "agree": None, "measured_over_model": None, "test": None}
        if m is not None and s is not None:
            row["difference"] = round(m - s, 9)
            row["measured_over_model"] = round(s / m, 6) if m else None
            paired = paired_test(sim_result, load_result, metric)
            if paired is not None:
                # the model's per-position ratios weighted as the measurement's batches are
                diff, p, se, dof = paired
                row.update(difference=round(diff, 9), p_value=round(p, 6),
                           tolerance=round(paired_margin(sim_result, metric) + _t(dof) * se, 9),
                           test="paired by batch position", margin_relative=PAIRED_MARGIN)
            elif m_se is not None and s_se is not None:
                p, se, welch = two_sample_test(m, m_se, m_dof, s, s_se, s_dof)
                crit = _z(1 - ALPHA / 2) if welch is None else _t(welch)
                row.update(p_value=round(p, 6), tolerance=round(crit * se, 9), test="two-sample")
        rows.append(row)
    tested = [r for r in rows if r["p_value"] is not None]
    adjusted, rejected = holm([r["p_value"] for r in tested])
    for row, adj, rej in zip(tested, adjusted, rejected):
        row["p_holm"] = round(adj, 6)
        row["agree"] = not rej
    return rows


def _t(dof: float) -> float:
    from scipy.stats import t as student_t

    return float(student_t.ppf(1 - ALPHA / 2, dof))


def _power(sim_result: Mapping[str, Any], load_result: Mapping[str, Any], family: int) -> dict[str, Any]:
    """The smallest relative bias of stale_read_ratio caught with probability POWER."""
    m, _, m_se, _ = _estimate(sim_result, "stale_read_ratio")
    _, _, s_se, _ = _estimate(load_result, "stale_read_ratio")
    out: dict[str, Any] = {"metric": "stale_read_ratio", "power": POWER, "alpha": ALPHA,
                           "family": family, "level": round(ALPHA / max(1, family), 6),
                           "min_detectable_relative_bias": None}
    paired = paired_test(sim_result, load_result, "stale_read_ratio")
    se: float | None = None
    if m and paired is not None:
        out["test"] = "paired by batch position"
        se = paired[2]
    elif m_se is not None and s_se is not None:
        se = math.hypot(m_se, s_se)
    if m and se is not None:
        mde = (_z(1 - ALPHA / max(1, family) / 2) + _z(POWER)) * se
        if out.get("test"):
            mde += paired_margin(sim_result, "stale_read_ratio")
        out["min_detectable_relative_bias"] = round(mde / m, 6)
    return out


def compare_results(sim_result: ResultRecord, load_result: ResultRecord) -> dict[str, Any]:
    """Per headline metric: model value, measured value, intervals, the two-sample test and
    Holm's verdict; the curve RMS difference; the power; ``agree`` overall. Phase stale ratios
    shared by both results are compared too, as their own Holm family (shown, not folded in)."""
    notes = []
    if sim_result.get("source") != "sim" or load_result.get("source") not in ("load", "target"):
        notes.append(f"expected a sim and a load result, got {sim_result.get('source')!r} and {load_result.get('source')!r}")
    name_a = sim_result["scenario"].get("name")
    name_b = load_result["scenario"].get("name")
    if name_a != name_b:
        notes.append(f"the results are of different scenarios ({name_a!r} vs {name_b!r})")
    family = list(HEADLINE) + [m for m in HEADLINE_IF_PRESENT
                               if m in sim_result["metrics"] and m in load_result["metrics"]]
    headline = _test_rows(sim_result, load_result, family)
    shared_phases = sorted(set(sim_result.get("phases") or {}) & set(load_result.get("phases") or {}))
    phase_rows = _test_rows(sim_result, load_result, [f"stale_read_ratio@{p}" for p in shared_phases])
    judged = [r for r in headline if r["agree"] is not None]
    missing = [r["metric"] for r in headline if r["model"] is None or r["measured"] is None]
    if missing:
        notes.append("not compared (missing in a result): " + ", ".join(missing))
    untested = [r["metric"] for r in headline if r["agree"] is None and r["metric"] not in missing]
    if untested:
        notes.append("shown, not tested (no standard error, e.g. a tail quantile of a short run): " + ", ".join(untested))
    # a measurement that could not keep up (or whose reads landed too far from their
    # instants) is inconclusive: it agrees with nothing and disagrees with nothing
    run = load_result.get("run") or {}
    invalid = [str(w) for w in (run.get("validity") or {}).get("why") or ()]
    if (run.get("time_resolution") or {}).get("ok") is False and not any(w.startswith("time resolution") for w in invalid):
        invalid.append("time resolution: " + str(run["time_resolution"].get("why")))
    if invalid:
        notes.append("the measurement is inconclusive: " + "; ".join(invalid))
    return {
        "schema": SCHEMA,
        "scenario": name_a,
        "inconclusive": "; ".join(invalid) if invalid else None,
        "model": {"source": sim_result.get("source"), "seed": sim_result.get("seed"),
                  "replications": sim_result.get("replications", 1),
                  "repayments": sim_result["metrics"].get("repayments")},
        "measured": {"source": load_result.get("source"), "seed": load_result.get("seed"),
                     "replications": load_result.get("replications", 1),
                     "repayments": load_result["metrics"].get("repayments")},
        "method": {"test": "two-sample t on the results' standard errors (Welch-Satterthwaite d.o.f.); "
                           "stale_read_ratio and affected_ratio paired by batch position when both results "
                           "carry per-position batches (each row's 'test')",
                   "family_wise_error": "Holm", "alpha": ALPHA},
        "metrics": headline + phase_rows,
        "curve": _curve(sim_result, load_result),
        "power": _power(sim_result, load_result, len(judged)),
        "agree": not invalid and bool(judged) and all(r["agree"] for r in judged),
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


def _p(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "<0.0001" if value < 1e-4 else f"{value:.2g}"


def _cells(row: Mapping[str, Any]) -> list[str]:
    metric = row["metric"]
    agree = {True: "agree", False: "DISAGREE", None: "not tested"}[row["agree"]]
    diff, tol = row.get("difference"), row.get("tolerance")
    signed = "n/a" if diff is None else ("+" if diff >= 0 else "−") + format_value(metric, abs(diff))
    return [
        metric,
        format_value(metric, row["model"]) + " " + format_ci(metric, row["model_ci95"]),
        format_value(metric, row["measured"]) + " " + format_ci(metric, row["measured_ci95"]),
        signed,
        "n/a" if tol is None else "±" + format_value(metric, tol)
        + (" paired" if row.get("test") == "paired by batch position" else ""),
        f"{_p(row.get('p_value'))} / {_p(row.get('p_holm'))}",
        agree,
    ]


_HEAD = ["metric", "model (95% CI)", "measured (95% CI)", "model − measured", "tolerance (95%)",
         "p / Holm p", "verdict"]

_METHOD_NOTE = ("Each metric: two-sample t-test on the results' batch-means standard errors; a tolerance marked "
                "'paired' is of a ratio tested by batch position — the measurement's batches against the "
                "model's ratio at the same stretch of ack time, so a fault window is not counted as noise "
                "(which is why it can be far narrower than the measured interval) — beyond a margin of 3% of "
                "the model's value, the live harness's time resolution; "
                "the headline metrics' family-wise error is held at 5% by Holm's procedure "
                "(so a correct model agrees in at least 95% of runs). Tolerance: the difference "
                "a single test would accept at 95%.")


def _power_line(comparison: dict[str, Any]) -> str:
    power = comparison.get("power") or {}
    mde = power.get("min_detectable_relative_bias")
    if mde is None:
        return "Power: n/a."
    return (f"Power: a relative bias of stale_read_ratio of {100 * mde:.3g}% or more is caught with "
            f"{100 * power['power']:.0f}% probability at these run sizes.")


def _summary_line(comparison: dict[str, Any]) -> str:
    curve = comparison["curve"]
    verdict = "agree" if comparison["agree"] else "DISAGREE on " + ", ".join(comparison["disagree_on"] or ["(nothing comparable)"])
    rms = "n/a" if curve["rms"] is None else f"{100 * curve['rms']:.3g} pp"
    return (f"Model and measurement {verdict}. Staleness curves: RMS difference {rms}, "
            f"{len(curve['points_outside_bands'])} of {len(curve['t'])} grid points outside the combined bands.")


def comparison_text(comparison: dict[str, Any]) -> str:
    """The comparison for a terminal: the verdict, a fixed-width per-metric table, curve RMS and power."""
    rows = [_HEAD] + [_cells(r) for r in comparison["metrics"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEAD))]
    lines = ["model vs measurement: " + ("AGREE" if comparison["agree"] else "DISAGREE")]
    for k, r in enumerate(rows):
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if k == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    lines.append("  " + _summary_line(comparison))
    lines.append("  " + _power_line(comparison))
    for note in comparison.get("notes", []):
        lines.append(f"  note: {note}")
    return "\n".join(lines)


def comparison_markdown(comparison: dict[str, Any]) -> str:
    """The comparison as a Markdown section (used in summary.md)."""
    lines = ["### Model vs measurement", "", _summary_line(comparison), "", _power_line(comparison), "",
             "| " + " | ".join(_HEAD) + " |", "|" + "---|" * len(_HEAD)]
    for row in comparison["metrics"]:
        lines.append("| " + " | ".join(_cells(row)) + " |")
    lines.append("")
    lines.append(_METHOD_NOTE)
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
            f'<p>{esc(_power_line(comparison))}</p>'
            f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
            f'<p class="note">{esc(_METHOD_NOTE)}</p>' + notes)
