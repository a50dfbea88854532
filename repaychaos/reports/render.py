"""write_report: result records in, report.html + summary.md + junit.xml (+ plots) out.

The CLI's ``report`` and ``run`` commands call :func:`write_report`; nothing here runs a
model or a load test, it only renders records.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Sequence, Mapping

from repaychaos.core.errors import InvalidResult
from repaychaos.core.types import ResultRecord

__all__ = ["write_report", "result_plots", "pair_for_comparison"]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-") or "result"


def result_plots(result: Mapping[str, Any]) -> list[tuple[str, str, bytes, str]]:
    """``(name, alt, png, caption)`` of every per-result plot, in report order."""
    from repaychaos.reports import plots

    out = [("staleness", "staleness curve", plots.staleness_curve(result),
            "P(the app still shows 'unusable' t seconds after 'repayment successful'), among repayments whose truth "
            "is usable; dots: the fixed grid with its 95% CI band; diamonds: the same curve read off the "
            "time-to-usable quantiles (p50, p95, p99, p99.9), which fill the grid's wide tail steps. "
            "A time-to-usable pQ SLO holds where the curve passes under its X.")]
    if result.get("series"):
        out.append(("stale-reads-over-time", "stale reads over time", plots.stale_reads_over_time(result),
                    "Top: stale reads per minute by cause; bottom: the stale share of all reads, on its own axis. "
                    "Shaded bands are fault windows."))
        out.append(("backlog", "sync backlog over time", plots.backlog_over_time(result),
                    "Messages waiting for or in a sync worker; line: bin mean, shade: bin maximum."))
    out.append(("causes", "stale reads by cause", plots.stale_reads_by_cause(result),
                "What delayed each stale read (docs/reference/metrics.md attribution)."))
    out.append(("time-to-usable", "time to usable quantiles", plots.time_to_usable_quantiles(result),
                "Time from the ack until the app first shows usable; SLO thresholds drawn on their bars."))
    return out


def pair_for_comparison(results: Sequence[ResultRecord]) -> tuple[ResultRecord, ResultRecord] | None:
    """The (sim, load) pair to compare when the results are exactly one of each for one scenario."""
    sims = [r for r in results if r.get("source") == "sim"]
    loads = [r for r in results if r.get("source") in ("load", "target")]
    if len(sims) == 1 and len(loads) == 1 and sims[0]["scenario"].get("name") == loads[0]["scenario"].get("name"):
        return sims[0], loads[0]
    return None


def _check(results: Sequence[Mapping[str, Any]]) -> None:
    if not results:
        raise InvalidResult("a report needs at least one result")
    for i, r in enumerate(results):
        for key in ("source", "scenario", "metrics", "slo", "passed"):
            if not isinstance(r, dict) or key not in r:
                raise InvalidResult(f"result #{i + 1}: expected key '{key}' in a repaychaos result")


def _with_fault_free_recovery(result: ResultRecord) -> ResultRecord:
    """The result with ``recovery`` measured against a fault-free model run (see
    :mod:`repaychaos.reports.recovery`); unchanged when that cannot be done."""
    from repaychaos.core.errors import RepaychaosError
    from repaychaos.reports.recovery import fault_free_recovery

    try:
        recovery = fault_free_recovery(result)
    except RepaychaosError:
        recovery = None
    if recovery is None:
        return result
    measured: ResultRecord = {**result, "recovery": recovery}
    return measured


def write_report(results: Sequence[ResultRecord], out_dir: str | os.PathLike[str], *,
                 comparison: dict[str, Any] | None = None,
                 calibration: tuple[Mapping[str, Any], bytes | None] | None = None) -> dict[str, Path]:
    """Write report.html, summary.md, junit.xml and plots/*.png into ``out_dir``.

    When ``comparison`` is None but the results are one sim and one load result of the same
    scenario, the comparison is computed here (and comparison.json written). ``calibration``
    is a calibration record and its figure (:func:`repaychaos.reports.calibration.calibration_beside`)
    shown in its own section. Returns the
    paths by kind: ``html``, ``markdown``, ``junit``, ``comparison`` (if any) and
    ``plot:<file stem>`` for each PNG.
    """
    from repaychaos.reports import plots as plotting
    from repaychaos.reports.compare import compare_results, write_comparison
    from repaychaos.reports.html import report_html
    from repaychaos.reports.junit import junit_xml
    from repaychaos.reports.markdown import summary_markdown

    results = list(results)
    _check(results)
    results = [_with_fault_free_recovery(r) for r in results]
    out = Path(out_dir)
    plot_dir = out / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    pair = pair_for_comparison(results)
    if comparison is None and pair is not None:
        comparison = compare_results(*pair)
    if comparison is not None:
        paths["comparison"] = write_comparison(comparison, out)

    figures: list[list[tuple[str, bytes, str]]] = []
    used: set[str] = set()
    for result in results:
        stem = _slug(f"{result['scenario'].get('name', 'scenario')}-{result.get('source', 'result')}")
        base, n = stem, 2
        while stem in used:
            stem, n = f"{base}-{n}", n + 1
        used.add(stem)
        per_result = []
        for name, alt, png, caption in result_plots(result):
            path = plot_dir / f"{stem}-{name}.png"
            path.write_bytes(png)
            paths[f"plot:{path.stem}"] = path
            per_result.append((alt, png, caption))
        figures.append(per_result)

    comparison_png = None
    if comparison is not None and pair is not None:
        comparison_png = plotting.model_vs_measurement(pair[0], pair[1], comparison)
        path = plot_dir / "model-vs-measurement.png"
        path.write_bytes(comparison_png)
        paths["plot:model-vs-measurement"] = path

    html_path = out / "report.html"
    html_path.write_text(report_html(results, figures, comparison, comparison_png,
                                     *(calibration or (None, None))), encoding="utf-8")
    md_path = out / "summary.md"
    md_path.write_text(summary_markdown(results, comparison, calibration[0] if calibration else None), encoding="utf-8")
    junit_path = out / "junit.xml"
    junit_path.write_text(junit_xml(results), encoding="utf-8")
    paths = {"html": html_path, "markdown": md_path, "junit": junit_path, **paths}
    return paths
