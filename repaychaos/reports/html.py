"""report.html: one self-contained page (inline CSS, PNGs as base64 data URIs, no network).

Order is what a reader needs first: the verdict, the SLO table, the headline numbers,
the model-vs-measurement comparison and the calibration (when there is one), then the
plots, recovery and phases of each result, and last the scenario that produced it all.
"""

from __future__ import annotations

import base64
import html
from typing import Any, Mapping, Sequence

import yaml

from repaychaos.scenarios.faults import CAUSES
from repaychaos.reports.fmt import (VERDICT_WORD, format_ci, format_value, overall_verdict, pct, per_10k, result_label,
                                    seconds, validity_notes, verdict_of)
from repaychaos.reports.markdown import INCONCLUSIVE_RULE

__all__ = ["report_html", "data_uri"]

esc = html.escape

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1100px;padding:1.2em;color:#222}
h1{font-size:1.5em;margin:.2em 0} h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em} h3{margin-bottom:.3em}
.banner{padding:.8em 1.1em;border-radius:6px;color:#fff;font-size:1.15em}
.banner.pass{background:#2e7d32}.banner.fail{background:#c62828}.banner.inconclusive{background:#ef6c00}
table{border-collapse:collapse;margin:.5em 0 1em;font-size:13px} th,td{border:1px solid #ddd;padding:.3em .6em;text-align:left}
th{background:#f4f4f4} tr.fail td{background:#fdecea} tr.inconclusive td{background:#fff4e5} tr.pass td{background:#f1f8f1}
p.fail{color:#c62828} p.pass{color:#2e7d32} .note{color:#555;font-size:12px}
figure{margin:1em 0} figure img{max-width:100%;border:1px solid #eee} figcaption{color:#555;font-size:12px}
pre{background:#f7f7f7;padding:.8em;overflow:auto;font-size:12px} code{font-size:12px}
.mark{vertical-align:-2px;margin-right:.3em} .na{color:#777}
.scenario{display:grid;grid-template-columns:1fr 1fr;gap:1em} .scenario h3{font-size:1em;margin:.2em 0}
.scenario>div{min-width:0} .scenario pre{white-space:pre-wrap;word-break:break-word}
"""

_MARK_COLOUR = {"pass": "#2e7d32", "fail": "#c62828", "inconclusive": "#ef6c00"}
_MARK_PATH = {"pass": "M4 8.5l2.5 2.5 5.5-6", "fail": "M5 5l6 6M11 5l-6 6", "inconclusive": "M8 4v5M8 11.5v.5"}


def verdict_mark(verdict: str, colour: str | None = None) -> str:
    """A small inline-SVG mark (tick, cross, exclamation) and the word: no emoji font needed."""
    stroke = colour or _MARK_COLOUR[verdict]
    fill = "none" if colour else "#fff"
    return (f'<svg class="mark" width="14" height="14" viewBox="0 0 16 16" aria-hidden="true">'
            f'<circle cx="8" cy="8" r="7.5" fill="{fill}" stroke="{stroke}"/>'
            f'<path d="{_MARK_PATH[verdict]}" stroke="{stroke}" stroke-width="2" fill="none" stroke-linecap="round"/>'
            f"</svg>{esc(VERDICT_WORD[verdict])}")


def data_uri(png: bytes) -> str:
    """A PNG as an inline ``data:`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _slo_table(results: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for r in results:
        for row in r.get("slo", []):
            metric, verdict = row["metric"], verdict_of(row)
            rows.append(
                f'<tr class="{verdict}"><td>{esc(result_label(r))}</td><td><code>{esc(metric)}</code></td>'
                f"<td><code>{esc(row['rule'])}</code></td><td>{esc(format_value(metric, row.get('observed')))}</td>"
                f"<td>{esc(format_ci(metric, row.get('ci95')))}</td><td>{verdict_mark(verdict)}</td>"
                f"<td>{'passes' if row.get('passed') else '<strong>fails</strong>'}</td></tr>")
    if not rows:
        return "<p>No SLOs in these scenarios.</p>"
    return ("<table><thead><tr><th>result</th><th>SLO</th><th>rule</th><th>observed</th><th>95% CI</th>"
            "<th>verdict</th><th>gate</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _headline(results: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    # users who paid twice: a column only where a scenario has them (workload.check.pay_again)
    doubles = any("double_repayments_per_10k" in r["metrics"] for r in results)
    # views put back by an older write: a column only where a scenario has accounts (workload.accounts)
    regressions = any("view_regressions" in r["metrics"] for r in results)
    for r in results:
        m = r["metrics"]
        ttu = m.get("time_to_usable", {})
        srr = m["stale_read_ratio"]
        cells = [result_label(r), f"{m['repayments']:,}", f"{m['reads']:,}",
                 f"{pct(srr['value'])} ({format_ci('stale_read_ratio', srr.get('ci95'))})",
                 pct(m["affected_ratio"]["value"]),
                 " / ".join(seconds(ttu.get(k)) for k in ("p50", "p95", "p99", "max")),
                 f"{m.get('never_usable', 0):,}", per_10k(m.get('support_contacts_per_10k', 0)),
                 str(m.get("lost_repayments", 0)), str(m.get("duplicate_repayments", 0)),
                 str(m.get("wrong_usable_reads", 0))]
        if doubles:
            cells.insert(8, per_10k(m.get("double_repayments_per_10k")))
        if regressions:
            cells.append(f"{m['view_regressions']:,}" if "view_regressions" in m else "")
        rows.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    head = ["result", "repayments", "reads", "stale read ratio (95% CI)", "affected", "time to usable p50 / p95 / p99 / max",
            "never usable", "support /10k", "lost", "duplicates", "wrong usable reads"]
    if doubles:
        head.insert(8, "paid twice /10k")
    if regressions:
        head.append("view regressions")
    return ("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _figure(png: bytes, alt: str, caption: str) -> str:
    return (f'<figure><img alt="{esc(alt)}" src="{data_uri(png)}">'
            f"<figcaption>{esc(caption)}</figcaption></figure>")


def _recovery(result: Mapping[str, Any]) -> str:
    rec = result.get("recovery") or {}
    windows = rec.get("windows") or []
    if not windows:
        return ""
    rows = []
    for w in windows:
        end = "open" if w.get("end") is None else seconds(w["end"])
        after = "not within the run" if w.get("recovered_after") is None else seconds(w["recovered_after"])
        rows.append(f"<tr><td>{esc(w['fault'])}</td><td>{esc(seconds(w['start']))} – {esc(end)}</td><td>{esc(after)}</td></tr>")
    baseline = rec.get("baseline_stale_share")
    against = (f"the same bin of {rec['baseline']}, whose stale share over the run is {pct(baseline)}"
               if rec.get("baseline") else f"the stale share outside fault windows ({pct(baseline)})")
    return (f"<h3>Recovery after each fault window</h3><p class=\"note\">Time from the window's end until the stale "
            f"share of reads is back within 1.5&times; of {esc(against)}.</p>"
            "<table><thead><tr><th>fault</th><th>window</th><th>back to baseline after</th></tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _phases(result: Mapping[str, Any]) -> str:
    phases = result.get("phases") or {}
    if not phases:
        return ""
    rows = []
    for name, m in phases.items():
        ttu = m.get("time_to_usable") or {}
        srr = m.get("stale_read_ratio") or {}
        if not m.get("repayments"):
            rows.append(f"<tr><td>{esc('@' + name)}</td><td>0</td>"
                        '<td colspan="5" class="na">n/a (no repayments)</td></tr>')
            continue
        cells = [f"@{name}", f"{m.get('repayments', 0):,}", pct(srr.get("value")),
                 format_ci("stale_read_ratio", srr.get("ci95")), pct((m.get("affected_ratio") or {}).get("value")),
                 seconds(ttu.get("p99")), per_10k(m.get('support_contacts_per_10k', 0))]
        rows.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    return ("<h3>By phase</h3><p class=\"note\">Repayments acked inside each fault's windows, and <code>@after</code> "
            "every window has ended; usable in SLOs as <code>metric@phase</code>.</p><table><thead><tr><th>phase</th>"
            "<th>repayments</th><th>stale read ratio</th><th>95% CI</th><th>affected</th><th>time to usable p99</th>"
            "<th>support /10k</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _causes(result: Mapping[str, Any]) -> str:
    by = result["metrics"].get("stale_reads_by_cause", {})
    return ", ".join(f"{c} {by.get(c, 0):,}" for c in CAUSES if by.get(c))


def report_html(results: Sequence[Mapping[str, Any]], plots: list[list[tuple[str, bytes, str]]],
                comparison: dict[str, Any] | None = None, comparison_png: bytes | None = None,
                calibration: Mapping[str, Any] | None = None, calibration_png: bytes | None = None) -> str:
    """The whole page. ``plots[i]`` are the ``(alt, png, caption)`` figures of ``results[i]``;
    ``calibration`` is a ``calibration.json`` record made from one of the results."""
    verdict = overall_verdict(results)
    gate = all(r.get("passed") for r in results)
    title = "repaychaos report — " + ", ".join(result_label(r) for r in results)
    if comparison and comparison.get("inconclusive"):
        banner = (f'<div class="banner inconclusive"><strong>NOT COMPARED</strong> — the measurement is not '
                  f"one: {esc(comparison['inconclusive'])}; CI gate failed</div>")
    elif comparison and not comparison.get("agree", False):
        # a disagreement outranks the SLO verdict: the numbers above it are not yet trusted
        on = ", ".join(comparison.get("disagree_on") or ["(nothing comparable)"])
        banner = (f'<div class="banner fail"><strong>DISAGREE</strong> — model and measurement disagree on '
                  f"{esc(on)}; SLOs {VERDICT_WORD[verdict]}; CI gate failed</div>")
    else:
        agreed = " — model and measurement agree" if comparison else ""
        banner = (f'<div class="banner {verdict}"><strong>{verdict_mark(verdict, "#fff")}</strong>{agreed} — CI gate '
                  f"{'passed' if gate else 'failed'}</div>")
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{esc(title)}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{esc(title)}</h1>", banner]
    parts += [f'<p class="warn"><strong>Not a measurement.</strong> {esc(note)}</p>' for note in validity_notes(results)]
    if any(verdict_of(row) == "inconclusive" for r in results for row in r.get("slo", [])):
        parts.append(f"<p>{INCONCLUSIVE_RULE.replace('**', '')}</p>")
    parts += ["<h2>SLOs</h2>", _slo_table(results), "<h2>Headline numbers</h2>", _headline(results)]
    if comparison:
        from repaychaos.reports.compare import comparison_html

        parts.append("<h2>Model vs measurement</h2>")
        if comparison_png:
            parts.append(_figure(comparison_png, "model vs measurement",
                                 "Left: staleness curves of the model and the measurement, bands are 95% CIs. "
                                 "Right: headline ratios and time-to-usable quantiles with 95% intervals."))
        parts.append(comparison_html(comparison))
    if calibration:
        from repaychaos.reports.calibration import calibration_html

        parts.append("<h2>Calibration: measured, fitted and calibrated model</h2>")
        parts.append(calibration_html(calibration, data_uri(calibration_png) if calibration_png else None))
    for r, figures in zip(results, plots):
        label = result_label(r)
        parts.append(f"<h2>{esc(label)}</h2>")
        causes = _causes(r)
        if causes:
            parts.append(f"<p>Stale reads by cause: {esc(causes)}.</p>")
        for alt, png, caption in figures:
            parts.append(_figure(png, alt, caption))
        parts.append(_recovery(r))
        parts.append(_phases(r))
    shown: list[dict[str, Any]] = []
    for r in results:
        if r["scenario"] in shown:  # sim and load of one scenario: print it once
            continue
        shown.append(r["scenario"])
        runs = "; ".join(
            f"{result_label(x)}: seed {x.get('seed')}, {x.get('replications', 1)} replication(s)"
            + (", synthetic record" if (x.get("run") or {}).get("synthetic") else "")
            for x in results if x["scenario"] == r["scenario"])
        normalised = yaml.safe_dump(r["scenario"], sort_keys=False, allow_unicode=True)
        written = next((x.get("scenario_as_written") for x in results
                        if x["scenario"] == r["scenario"] and x.get("scenario_as_written")), None)
        parts.append(f"<h2>Scenario — {esc(str(r['scenario'].get('name', '?')))}</h2>"
                     f'<p class="note">{esc(runs)}</p>')
        if written:
            parts.append('<div class="scenario"><div><h3>As written</h3>'
                         f"<pre>{esc(written)}</pre></div><div><h3>Normalised (seconds, per-second rates, "
                         f"defaults filled in)</h3><pre>{esc(normalised)}</pre></div></div>")
        else:
            parts.append(f"<h3>Normalised (seconds, per-second rates, defaults filled in)</h3><pre>{esc(normalised)}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
