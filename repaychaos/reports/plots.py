"""Plots a capacity planner would rather look at than read, as PNG bytes.

Figures are built on :class:`matplotlib.figure.Figure` directly (Agg, no pyplot state),
so reports can be rendered from any thread or process without a display. Each function
takes result records (docs/reference/result-file.md plus the ``series``/``windows``/``slo`` extensions) and
returns ``bytes``; nothing here reads files or knows about HTML.
"""

from __future__ import annotations

import io
import math
from typing import Any, Sequence, Mapping

import matplotlib

matplotlib.use("Agg")  # never open a window, even if a GUI backend is installed

from matplotlib.figure import Figure  # noqa: E402

from repaychaos.core.catalog import QUANTILES  # noqa: E402
from repaychaos.scenarios.faults import CAUSES  # noqa: E402
from repaychaos.scenarios.faults import REGISTRY as FAULT_REGISTRY  # noqa: E402
from repaychaos.reports.fmt import result_label, seconds  # noqa: E402

__all__ = [
    "staleness_curve",
    "stale_reads_over_time",
    "backlog_over_time",
    "stale_reads_by_cause",
    "time_to_usable_quantiles",
    "model_vs_measurement",
    "slo_thresholds",
    "CAUSE_COLOURS",
]

DPI = 110
#: fault colours come from the fault registry (one module per type)
FAULT_COLOURS = {name: ft.colour for name, ft in FAULT_REGISTRY.items()}
CAUSE_COLOURS = {"queueing": "#8c8c8c", **FAULT_COLOURS, "cache": "#66a182"}
SOURCE_COLOURS = {"sim": "#1f5fa8", "load": "#d1495b", "target": "#2a9d5c"}


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _figure(width: float = 8.0, height: float = 4.2) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def slo_thresholds(result: Mapping[str, Any], prefix: str = "time_to_usable.") -> list[tuple[str, float, str]]:
    """``(metric, threshold, verdict)`` of every whole-run SLO on ``prefix*``.

    The threshold comes from the rule text through the scenario's own rule parser, so a
    report never disagrees with the gate about what ``< 2m`` means.
    """
    from repaychaos.scenarios.spec import SloRule

    out = []
    for row in result.get("slo", []):
        metric = row["metric"]
        if "@" in metric or not metric.startswith(prefix):
            continue
        try:
            rule = SloRule.parse(metric, row["rule"])
        except ValueError:
            continue
        out.append((metric, rule.threshold, row.get("verdict") or ("pass" if row.get("passed") else "fail")))
    return out


def _quantile_of(metric: str) -> float | None:
    key = metric.split(".", 1)[1] if "." in metric else ""
    return dict(QUANTILES).get(key)


def quantile_points(result: Mapping[str, Any]) -> list[tuple[float, float]]:
    """Points of the staleness curve read off the time-to-usable quantiles, where the fixed
    visibility grid is sparse (its steps widen to 5 and 15 minutes in the tail).

    ``time_to_usable`` covers repayments that became usable (q of them within pQ); the
    curve's population also holds the never-usable repayments whose truth is usable (lost
    or dropped messages, ``never_usable - risk_holds``), which are stale at every t. So at
    t = pQ the curve is ((1 - q)·(repayments - never_usable) + never_usable - risk_holds)
    / (repayments - risk_holds).
    """
    m = result["metrics"]
    ttu = m.get("time_to_usable") or {}
    n, never, held = m.get("repayments", 0), m.get("never_usable", 0), m.get("risk_holds", 0)
    usable_truth, finite = n - held, n - never
    if usable_truth <= 0 or finite <= 0:
        return []
    out = []
    for key, q in (*QUANTILES, ("max", 1.0)):
        t = ttu.get(key)
        if t is None or t <= 0:
            continue
        out.append((float(t), ((1 - q) * finite + (never - held)) / usable_truth))
    return out


def _curve(result: Mapping[str, Any]) -> tuple[list[float], list[float], list[float], list[float]]:
    """The visibility curve without t = 0 (a log axis cannot show it; it is 1 by definition)."""
    vis = result["metrics"]["visibility"]
    t, p = vis["t"], vis["p_stale"]
    low = vis.get("ci95_low") or p
    high = vis.get("ci95_high") or p
    keep = [i for i, x in enumerate(t) if x > 0]
    return [t[i] for i in keep], [p[i] for i in keep], [low[i] for i in keep], [high[i] for i in keep]


def _draw_curve(ax: Any, result: Mapping[str, Any], colour: str, label: str) -> None:
    t, p, low, high = _curve(result)
    ax.fill_between(t, low, high, color=colour, alpha=0.2, linewidth=0, step=None)
    # the grid and the quantile points together, in time order, so the tail has its shape
    merged = sorted([*zip(t, p), *quantile_points(result)])
    shown = [(x, y) for x, y in merged if y > 0]  # a log axis cannot show 0
    ax.plot([x for x, _ in shown], [y for _, y in shown], color=colour, label=label)
    ax.plot(t, p, "o", markersize=3.5, color=colour)
    qs = [(x, y) for x, y in quantile_points(result) if y > 0]
    if qs:
        ax.plot([x for x, _ in qs], [y for _, y in qs], "D", markersize=4.5, color=colour,
                markerfacecolor="white", label=f"{label.split(' (')[0]}: from time-to-usable quantiles")


def _curve_axes(ax: Any, results: Sequence[Mapping[str, Any]]) -> None:
    positive = [v for r in results for v in _curve(r)[1] if v > 0]
    positive += [v for r in results for _, v in quantile_points(r) if v > 0]
    # keep every SLO target point (T, 1 - Q) inside the axes
    positive += [1 - q for r in results for metric, _, _ in slo_thresholds(r)
                 if (q := _quantile_of(metric)) is not None and q < 1]
    floor = min(positive) / 3 if positive else 1e-4
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(max(floor, 1e-6), 1.5)
    ax.set_xlabel("time since 'repayment successful' (log scale)")
    ax.set_ylabel("P(app still shows unusable) (share, log)")
    ax.grid(True, which="major", alpha=0.3)
    _seconds_ticks(ax)


def _seconds_ticks(ax: Any) -> None:
    ticks = [0.1, 1, 10, 60, 600, 3600]
    ax.set_xticks(ticks)
    ax.set_xticklabels([seconds(x) for x in ticks])


def _mark_slos(ax: Any, result: Mapping[str, Any]) -> None:
    """A time_to_usable.pQ < T SLO holds (roughly) where the curve passes under (T, 1 - Q)."""
    colours = {"pass": "#2e7d32", "fail": "#c62828", "inconclusive": "#ef6c00"}
    for metric, threshold, verdict in slo_thresholds(result):
        colour = colours.get(verdict, "black")
        ax.axvline(threshold, color=colour, linestyle="--", linewidth=1)
        q = _quantile_of(metric)
        label = f"SLO {metric.split('.', 1)[1]} < {seconds(threshold)} ({verdict})"
        if q is not None and q < 1:
            ax.plot([threshold], [1 - q], marker="X", markersize=9, color=colour, linestyle="none", label=label)
        else:
            ax.plot([], [], color=colour, linestyle="--", label=label)


def staleness_curve(result: Mapping[str, Any]) -> bytes:
    """P(still stale at t) with its 95 % band, log time axis, time-to-usable SLOs marked."""
    fig = _figure(8.0, 4.8)
    ax = fig.add_subplot()
    colour = SOURCE_COLOURS.get(result.get("source", ""), "#1f5fa8")
    _draw_curve(ax, result, colour, f"{result_label(result)} (band: 95% CI)")
    _curve_axes(ax, [result])
    _mark_slos(ax, result)
    ax.set_title("Staleness curve: how long users keep seeing 'unusable'")
    fig.legend(loc="outside lower center", fontsize=8, ncol=2, frameon=False)  # off the data, never over the tail
    return _png(fig)


def _time_unit(duration: float) -> tuple[float, str]:
    if duration >= 4 * 3600:
        return 3600.0, "h"
    if duration >= 600:
        return 60.0, "min"
    return 1.0, "s"


def _shade_windows(ax: Any, result: Mapping[str, Any], scale: float, duration: float, label: bool = True) -> None:
    """Shade every fault window and name it at the top of the axes."""
    transform = ax.get_xaxis_transform()
    for i, w in enumerate(result.get("windows", [])):
        start = w["start"]
        end = duration if w.get("end") is None else min(w["end"], duration)
        if start >= duration:
            continue
        colour = FAULT_COLOURS.get(w.get("type", ""), "#999999")
        ax.axvspan(start / scale, end / scale, color=colour, alpha=0.15, linewidth=0)
        if label:
            y = 0.97 - 0.08 * (i % 3)  # stagger labels so overlapping windows stay readable
            ax.text(start / scale, y, f" {w['fault']}", transform=transform, fontsize=7.5, color=colour,
                    va="top", ha="left", fontweight="bold", zorder=5,
                    bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "alpha": 0.75, "linewidth": 0})


def _series_axis(result: Mapping[str, Any]) -> tuple[list[float], float, float, str, float]:
    series = result["series"]
    duration = float(result["scenario"].get("duration", series["bin_width"] * len(series["t"])))
    scale, unit = _time_unit(duration)
    width = series["bin_width"]
    centres = [(t + width / 2) / scale for t in series["t"]]
    return centres, width, scale, unit, duration


def stale_reads_over_time(result: Mapping[str, Any]) -> bytes:
    """Stale reads per minute over scenario time, stacked by cause, fault windows shaded."""
    fig = _figure(9.0, 6.0)
    ax, share_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 2])
    series = result["series"]
    x, width, scale, unit, duration = _series_axis(result)
    per_minute = 60.0 / width / max(1, series.get("replications", 1))
    by_cause = series.get("stale_reads_by_cause") or {"queueing": series["stale_reads"]}
    layers, labels, colours = [], [], []
    for cause in CAUSES:
        values = by_cause.get(cause)
        if values and any(values):
            layers.append([v * per_minute for v in values])
            labels.append(cause)
            colours.append(CAUSE_COLOURS[cause])
    if layers:
        ax.stackplot(x, *layers, labels=labels, colors=colours, alpha=0.85, step="mid")
    else:
        ax.plot(x, [0] * len(x), color="#8c8c8c", label="no stale reads")
    _shade_windows(ax, result, scale, duration)
    ax.set_xlim(0, duration / scale)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("stale reads / min" + (" (per replication)" if series.get("replications", 1) > 1 else ""))
    ax.set_title("Stale reads over time, by cause (shaded: fault windows)")
    # the stale share on its own axis: on a quiet run the stale reads are a sliver of all reads
    share = [100 * s / r if r else math.nan for s, r in zip(series["stale_reads"], series["reads"])]
    share_ax.plot(x, share, color="black", linewidth=1.0, drawstyle="steps-mid", label="stale share of reads")
    _shade_windows(share_ax, result, scale, duration, label=False)
    share_ax.set_ylim(bottom=0)
    share_ax.set_ylabel("stale share of reads (%)")
    share_ax.set_xlabel(f"scenario time ({unit})")
    share_ax.grid(True, axis="y", alpha=0.3)
    fig.legend(loc="outside lower center", fontsize=8, ncol=len(labels) + 1, frameon=False)
    return _png(fig)


def backlog_over_time(result: Mapping[str, Any]) -> bytes:
    """Sync backlog (messages waiting or in service): bin mean and bin maximum."""
    fig = _figure(9.0, 3.6)
    ax = fig.add_subplot()
    series = result["series"]
    x, _, scale, unit, duration = _series_axis(result)
    mean = [math.nan if v is None else v for v in series.get("backlog_mean", [])]
    peak = list(series.get("backlog_max", []))
    if any(not math.isnan(v) for v in mean):
        ax.fill_between(x, 0, peak, color="#1f5fa8", alpha=0.15, step="mid", label="max in bin")
        ax.plot(x, mean, color="#1f5fa8", linewidth=1.4, drawstyle="steps-mid", label="mean in bin")
    else:
        ax.text(0.5, 0.5, "no backlog samples in this result", transform=ax.transAxes, ha="center")
    _shade_windows(ax, result, scale, duration)
    ax.set_xlim(0, duration / scale)
    ax.set_ylim(bottom=0)
    ax.set_xlabel(f"scenario time ({unit})")
    ax.set_ylabel("sync backlog (messages)")
    ax.set_title("Sync backlog over time (shaded: fault windows)")
    if ax.get_legend_handles_labels()[0]:
        fig.legend(loc="outside right upper", fontsize=8, frameon=False)
    return _png(fig)


def stale_reads_by_cause(result: Mapping[str, Any]) -> bytes:
    """Total stale reads per cause, with each cause's share of all stale reads."""
    fig = _figure(7.0, 3.2)
    ax = fig.add_subplot()
    by_cause = result["metrics"].get("stale_reads_by_cause", {})
    counts = [by_cause.get(c, 0) for c in CAUSES]
    total = sum(counts)
    y = list(range(len(CAUSES)))[::-1]
    ax.barh(y, counts, color=[CAUSE_COLOURS[c] for c in CAUSES])
    ax.set_yticks(y)
    ax.set_yticklabels(CAUSES)
    for yi, count in zip(y, counts):
        share = f"{count:,}  ({100 * count / total:.1f}%)" if total else "0"
        ax.text(count, yi, "  " + share, va="center", fontsize=8)
    ax.set_xlim(0, max(counts + [1]) * 1.35)
    ax.set_xlabel("stale reads (count)")
    ax.set_title(f"Stale reads by cause (total {total:,})")
    return _png(fig)


def time_to_usable_quantiles(result: Mapping[str, Any]) -> bytes:
    """Time-to-usable quantiles on a log axis, each SLO threshold drawn on its bar."""
    fig = _figure(7.0, 3.6)
    ax = fig.add_subplot()
    ttu = result["metrics"].get("time_to_usable", {})
    keys = ["p50", "p95", "p99", "p999", "max", "mean"]
    values = [ttu.get(k) for k in keys]
    shown = [max(v, 1e-3) if v is not None else 0 for v in values]
    bars = ax.bar(keys, shown, color=["#1f5fa8"] * 5 + ["#8c8c8c"])
    for bar, v in zip(bars, values):
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(), seconds(v), ha="center", va="bottom", fontsize=8)
    colours = {"pass": "#2e7d32", "fail": "#c62828", "inconclusive": "#ef6c00"}
    for metric, threshold, verdict in slo_thresholds(result):
        key = metric.split(".", 1)[1]
        if key in keys:
            i = keys.index(key)
            ax.hlines(threshold, i - 0.45, i + 0.45, colors=colours.get(verdict, "black"), linewidth=2.5)
            ax.text(i + 0.47, threshold, f"SLO < {seconds(threshold)}", fontsize=7,
                    color=colours.get(verdict, "black"), va="center")
    positive = [v for v in shown if v > 0] + [t for _, t, _ in slo_thresholds(result)]
    if positive:
        ax.set_yscale("log")
        ax.set_ylim(min(positive) / 3, max(positive) * 4)
    never = result["metrics"].get("never_usable", 0)
    ax.set_xlabel("statistic of the time from the ack until usable")
    ax.set_ylabel("seconds after the ack (log)")
    ax.set_title(f"Time to usable (never usable: {never:,})")
    return _png(fig)


def model_vs_measurement(sim: Mapping[str, Any], load: Mapping[str, Any], comparison: dict[str, Any] | None = None) -> bytes:
    """Model and measurement on the same axes: staleness curves with bands, headline numbers with CIs.

    Each headline metric gets its own small panel (their scales differ by orders of
    magnitude), model above, measurement below, agreement written in the title.
    """
    fig = _figure(12.0, 5.0)
    grid = fig.add_gridspec(2, 4, width_ratios=[2.2, 2.2, 1.3, 1.3])
    left = fig.add_subplot(grid[:, :2])
    _draw_curve(left, sim, SOURCE_COLOURS["sim"], "model (sim)")
    _draw_curve(left, load, SOURCE_COLOURS["load"], "measured (load)")
    _curve_axes(left, [sim, load])
    _mark_slos(left, sim)
    left.legend(loc="upper left", bbox_to_anchor=(0.0, -0.14), fontsize=7.5, ncol=2, frameon=False)
    title = "Staleness curve: model vs measurement"
    if comparison and comparison.get("curve", {}).get("rms") is not None:
        title += f" (RMS difference {comparison['curve']['rms']:.3g})"
    left.set_title(title, fontsize=10)

    rows = {r["metric"]: r for r in (comparison or {}).get("metrics", [])}
    panels = ["stale_read_ratio", "affected_ratio", "time_to_usable.p95", "time_to_usable.p99"]
    for k, metric in enumerate(panels):
        ax = fig.add_subplot(grid[k // 2, 2 + k % 2])
        row = rows.get(metric)
        if row is None:
            m_val, m_ci = _headline_value(sim, metric)
            s_val, s_ci = _headline_value(load, metric)
        else:
            m_val, m_ci, s_val, s_ci = row["model"], row["model_ci95"], row["measured"], row["measured_ci95"]
        is_ratio = not metric.startswith("time_to_usable")
        scale = 100.0 if is_ratio else 1.0
        for y, value, ci, source in ((1, m_val, m_ci, "sim"), (0, s_val, s_ci, "load")):
            if value is None:
                continue
            xerr = [[scale * (value - ci[0])], [scale * (ci[1] - value)]] if ci else None
            ax.errorbar([scale * value], [y], xerr=xerr, fmt="o", color=SOURCE_COLOURS[source], capsize=4)
        ax.set_yticks([0, 1])
        ax.set_yticklabels(["measured", "model"], fontsize=8)
        ax.set_ylim(-0.6, 1.6)
        ax.tick_params(axis="x", labelsize=7)
        ax.set_xlabel("%" if is_ratio else "seconds", fontsize=8)
        ax.grid(True, axis="x", alpha=0.3)
        verdict = ""
        if row is not None and row.get("agree") is not None:
            verdict = " - agree" if row["agree"] else " - DISAGREE"
        ax.set_title(metric.replace("time_to_usable.", "time to usable ") + verdict, fontsize=8.5,
                     color="#c62828" if verdict == " - DISAGREE" else "black")
    return _png(fig)


def _headline_value(result: Mapping[str, Any], metric: str) -> tuple[float | None, list[float] | None]:
    m = result["metrics"]
    if metric.startswith("time_to_usable."):
        return (m.get("time_to_usable") or {}).get(metric.split(".", 1)[1]), None
    node = m.get(metric) or {}
    return node.get("value"), node.get("ci95")
