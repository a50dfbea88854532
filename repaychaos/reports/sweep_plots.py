"""Plots of a sweep (sweep.json): the capacity frontier, a heat map of the headline metric
over two varied keys, and the headline metric along a single key.

Built on :class:`matplotlib.figure.Figure` directly (no pyplot state, no display), from
the sweep record alone, so they can be redrawn later from a saved sweep.json.
"""

from __future__ import annotations

import io
import itertools
import math
import os
from pathlib import Path
from typing import Any, Sequence

import matplotlib

matplotlib.use("Agg")  # never open a window, even if a GUI backend is installed

from matplotlib.colors import LogNorm  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

__all__ = ["frontier_plot", "heatmap_plot", "headline_plot", "write_sweep_plots", "cell_text"]

DPI = 110
PASS_COLOUR = "#2e7d32"
FAIL_COLOUR = "#c62828"
LINE_COLOURS = ("#1f5fa8", "#d1495b", "#e6a100", "#6a4c93", "#00798c", "#66a182", "#8c8c8c")
MAX_FACETS = 6


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _label(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (dict, list)):
        return ",".join(f"{k}={v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
    return str(value)


def _axis_label(key: str) -> str:
    """A key path with its unit as the sweep's ``settings`` hold it (``workload.arrivals.rate (/s)``)."""
    from repaychaos.scenarios.reference import key_unit

    unit = key_unit(key)
    return f"{key} ({unit})" if unit else key


def _pct(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{100 * value:.2g}%"


def _headline(row: dict[str, Any], metric: str) -> tuple[float | None, list[float] | None]:
    path, _, phase = metric.partition("@")
    node = row["metrics"] if not phase else row.get("phases", {}).get(phase, {})
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and "value" in node:
        return node["value"], node.get("ci95")
    return (node if isinstance(node, (int, float)) else None), None


def _axis(values: Sequence[Any]) -> tuple[list[float], list[str] | None]:
    """Positions on an axis: the numbers themselves, or 0, 1, 2, ... with tick labels."""
    nums = [_num(v) for v in values]
    numbers = [n for n in nums if n is not None]
    if len(numbers) == len(nums):
        return [float(n) for n in numbers], None
    return list(range(len(values))), [_label(v) for v in values]


def _unique(values: Sequence[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def frontier_plot(record: dict[str, Any]) -> bytes | None:
    """For each value of the first other key, the best value of the frontier key meeting every SLO."""
    frontier = record.get("frontier")
    if not frontier or not frontier.get("over") or not frontier.get("points"):
        return None
    key, goal, over = frontier["key"], frontier.get("goal") or "max", frontier["over"]
    x_key, line_keys = over[0], over[1:]
    points = frontier["points"]
    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    xs_all = _unique([p["settings"][x_key] for p in points])
    x_pos, x_ticks = _axis(xs_all)
    where = dict(zip(map(repr, xs_all), x_pos))
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for p in points:
        groups.setdefault(tuple(repr(p["values"][k]) for k in line_keys), []).append(p)
    # Frame the values actually tried, so "none passes" sits at the bottom of the tested range.
    tried = [n for r in record.get("rows", []) if (n := _num(r["settings"].get(key))) is not None]
    tried += [n for p in points if (n := _num(p["setting"])) is not None]
    floor = min(tried) if tried else 0.0
    if tried and max(tried) > floor:
        pad = 0.06 * (max(tried) - floor)
        ax.set_ylim(floor - 2 * pad, max(tried) + 2 * pad)
    beyond = "range end" if frontier.get("method") == "bisection" else "grid end"
    span = (max(x_pos) - min(x_pos)) or 1.0
    noted: set[tuple] = set()
    for j, (colour, (group_key, group)) in enumerate(zip(itertools.cycle(LINE_COLOURS), groups.items())):
        label = ", ".join(f"{k}={_label(group[0]['values'][k])}" for k in line_keys) or None
        # nudge lines sideways a little so equal frontiers do not hide each other
        dx = (j - (len(groups) - 1) / 2) * 0.012 * span
        xs = [where[repr(p["settings"][x_key])] + dx for p in group]
        yv = [_num(p["setting"]) for p in group]
        ax.plot([x for x, y in zip(xs, yv) if y is not None], [y for y in yv if y is not None],
                "-o", color=colour, label=label)
        for x, y, p in zip(xs, yv, group):
            # one note per spot, however many lines end there
            spot = (round(x - dx, 9), p["status"], y)
            first_here = spot not in noted
            noted.add(spot)
            if p["status"] == "none_pass":
                ax.plot([x], [floor], "x", color=FAIL_COLOUR, markersize=9)
                if first_here:
                    ax.annotate("none passes", (x - dx, floor), textcoords="offset points", xytext=(0, -14),
                                ha="center", fontsize=8, color=FAIL_COLOUR)
            elif p["status"] == "all_pass" and y is not None and first_here:
                ax.annotate(beyond, (x - dx, y), textcoords="offset points", xytext=(0, 8 if goal == "max" else -14),
                            ha="center", fontsize=8, color="#555555")
    if x_ticks:
        ax.set_xticks(x_pos, x_ticks)
    elif len(x_pos) <= 12:
        ax.set_xticks(x_pos, [_label(v) for v in xs_all])
    ax.set_xlabel(_axis_label(x_key))
    ax.set_ylabel(_axis_label(key))
    word = "highest" if goal == "max" else "smallest"
    ax.set_title(f"Capacity frontier: {word} {key} meeting every SLO")
    ax.grid(True, alpha=0.3)
    if line_keys:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return _png(fig)


def cell_text(value: float | None, verdict: bool | str | None) -> str:
    """A heat-map cell: the value, and FAIL or INCONCLUSIVE under it (a point whose SLO
    interval straddles its threshold is not a failure, and not a pass either)."""
    text = _pct(value)
    if verdict == "inconclusive":
        return text + "\nINCONCLUSIVE"
    if verdict is False:
        return text + "\nFAIL"
    return text


def heatmap_plot(record: dict[str, Any], metric: str = "stale_read_ratio") -> bytes | None:
    """The headline metric over the first two varied keys of a grid; failing cells are marked."""
    vary = record.get("vary") or []
    if record.get("search") or len(vary) < 2:
        return None
    frontier = record.get("frontier") or {}
    keys: list[str] = [v["key"] for v in vary]
    frontier_key = frontier.get("key")
    col_key = frontier_key if isinstance(frontier_key, str) and frontier_key in keys[:2] else keys[1]
    row_key = keys[0] if col_key != keys[0] else keys[1]
    facet_keys = [k for k in keys if k not in (row_key, col_key)]
    values = {v["key"]: v["values"] for v in vary}
    facets = list(itertools.product(*(values[k] for k in facet_keys)))[:MAX_FACETS]
    rows = record["rows"]
    n = len(facets)
    cols = min(n, 3)
    fig = Figure(figsize=(1.2 + 4.2 * cols, 0.8 + 3.6 * math.ceil(n / cols)), layout="constrained")
    # A log colour scale: one overloaded point (94 % stale) must not wash out the rest.
    positive = [v for r in rows if (v := _headline(r, metric)[0]) is not None and v > 0]
    vmax = max(positive) if positive else 1.0
    vmin = max(min(positive), vmax * 1e-4) if positive else vmax * 1e-4
    norm = LogNorm(vmin=vmin, vmax=vmax if vmax > vmin else vmin * 10, clip=True)
    image = None
    for f_index, facet in enumerate(facets):
        ax = fig.add_subplot(math.ceil(n / cols), cols, f_index + 1)
        fixed = dict(zip(facet_keys, facet))
        r_vals, c_vals = values[row_key], values[col_key]
        grid = [[math.nan] * len(c_vals) for _ in r_vals]
        verdict = [[None] * len(c_vals) for _ in r_vals]
        shown: list[list[float | None]] = [[None] * len(c_vals) for _ in r_vals]
        for row in rows:
            v = row["values"]
            if any(v.get(k) != fixed[k] for k in facet_keys):
                continue
            i, j = r_vals.index(v[row_key]), c_vals.index(v[col_key])
            value = _headline(row, metric)[0]
            grid[i][j] = math.nan if value is None else max(value, vmin)
            shown[i][j] = value
            verdict[i][j] = "inconclusive" if row.get("verdict") == "inconclusive" else row["passed"]
        image = ax.imshow(grid, cmap="YlOrRd", norm=norm, aspect="auto", origin="lower")
        for i in range(len(r_vals)):
            for j in range(len(c_vals)):
                cell = shown[i][j]
                text = cell_text(cell, verdict[i][j])
                dark = cell is not None and norm(max(cell, vmin)) > 0.6
                ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if dark else "black",
                        fontweight="bold" if verdict[i][j] is False else "normal")
        ax.set_xticks(range(len(c_vals)), [_label(v) for v in c_vals])
        ax.set_yticks(range(len(r_vals)), [_label(v) for v in r_vals])
        ax.set_xlabel(_axis_label(col_key))
        ax.set_ylabel(_axis_label(row_key))
        if fixed:
            ax.set_title(", ".join(f"{k}={_label(v)}" for k, v in fixed.items()), fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=fig.axes, label=f"{metric} (share of reads)", shrink=0.9)
    fig.suptitle(f"{metric}\nFAIL: some SLO not met\nINCONCLUSIVE: an SLO's 95% interval straddles its threshold",
                 fontsize=9)
    return _png(fig)


def _slo_threshold(record: dict[str, Any], metric: str) -> float | None:
    from repaychaos.scenarios.spec import SloRule

    rule = (record.get("scenario", {}).get("slo") or {}).get(metric)
    try:
        return SloRule.parse(metric, rule).threshold if rule is not None else None
    except ValueError:
        return None


def headline_plot(record: dict[str, Any], metric: str | None = None) -> bytes | None:
    """The first SLO's metric (else stale_read_ratio), with its 95 % interval and threshold,
    along the one varied or searched key."""
    keys = record.get("keys") or []
    if len(keys) != 1:
        return None
    key = keys[0]
    rows = record["rows"]
    if metric is None:
        slo_metrics = [s["metric"] for s in rows[0]["slo"]] if rows and rows[0].get("slo") else []
        metric = slo_metrics[0] if slo_metrics else "stale_read_ratio"
    x_pos, x_ticks = _axis([r["settings"][key] for r in rows])
    order = sorted(range(len(rows)), key=lambda i: x_pos[i])
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    xs, ys, lo, hi = [], [], [], []
    for i in order:
        value, ci = _headline(rows[i], metric)
        if value is None:
            continue
        xs.append(x_pos[i])
        ys.append(value)
        lo.append(value - (ci[0] if ci else value))
        hi.append((ci[1] if ci else value) - value)
    ax.errorbar(xs, ys, yerr=[lo, hi], fmt="-", color="#555555", capsize=3, zorder=1)
    for i in order:
        value = _headline(rows[i], metric)[0]
        if value is not None:
            ax.plot([x_pos[i]], [value], "o", color=PASS_COLOUR if rows[i]["passed"] else FAIL_COLOUR, zorder=2)
    threshold = _slo_threshold(record, metric)
    if threshold is not None:
        ax.axhline(threshold, color=FAIL_COLOUR, linestyle=":", alpha=0.8, label=f"SLO threshold {threshold:g}")
    frontier = record.get("frontier") or {}
    for p in frontier.get("points", []):
        if frontier.get("key") == key and _num(p.get("setting")) is not None and x_ticks is None:
            ax.axvline(float(p["setting"]), linestyle="--", color=PASS_COLOUR, alpha=0.7,
                       label=f"frontier: {_label(p['value'])}")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    if x_ticks:
        ax.set_xticks(range(len(x_ticks)), x_ticks)
    ax.set_xlabel(_axis_label(key))
    ax.set_ylabel(f"{metric} (share of reads)" if metric.split("@")[0].endswith("_ratio") else metric)
    ax.set_title(f"{metric} by {key} (green: every SLO met, red: not)", fontsize=10)
    if all(y > 0 for y in ys) and ys and max(ys) / min(ys) > 100:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    return _png(fig)


def write_sweep_plots(record: dict[str, Any], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Write whichever plots fit this sweep's shape; returns ``{file name: path}``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, draw in (("frontier.png", frontier_plot), ("heatmap.png", heatmap_plot), ("headline.png", headline_plot)):
        data = draw(record)
        if data is not None:
            path = out / name
            path.write_bytes(data)
            paths[name] = path
    return paths
