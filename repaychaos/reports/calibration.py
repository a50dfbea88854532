"""The calibration section of report.html and summary.md: closing the loop.

``repaychaos calibrate`` writes ``calibration.json`` (schema ``repaychaos.calibration/1``)
and ``calibration.png``; a report of the measured result shows them: the measured
(Turnbull) curve, the fitted families and the calibrated model's curve in one figure,
the fits by AIC, how well the chosen one fits, what capacity could be told, and the
verdict. The reports layer only *shows* a calibration record; making one is
:mod:`repaychaos.calibrate`'s job (it sits above this layer).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Mapping

__all__ = ["calibration_beside", "calibration_html", "calibration_markdown", "CALIBRATION_SCHEMA"]

CALIBRATION_SCHEMA = "repaychaos.calibration/1"

esc = html.escape


def calibration_beside(result_path: str | Path) -> tuple[dict[str, Any], bytes | None] | None:
    """The calibration record (and its figure) made from the result at ``result_path``, when
    ``calibration.json`` beside it says it came from that file; otherwise None."""
    result_path = Path(result_path)
    record_path = result_path.parent / "calibration.json"
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("schema") != CALIBRATION_SCHEMA:
        return None
    source = Path(str((record.get("source") or {}).get("result", "")))
    if source.name != result_path.name or source.resolve().parent != result_path.resolve().parent:
        return None
    figure = result_path.parent / "calibration.png"
    return record, (figure.read_bytes() if figure.is_file() else None)


def _fits_rows(record: Mapping[str, Any]) -> list[list[str]]:
    chosen = (record.get("chosen") or {}).get("family")
    rows = []
    for fit in record.get("fits", []):
        rows.append([fit["family"] + (" (chosen)" if fit["family"] == chosen else ""), f"{fit['aic']:.1f}",
                     f"{fit['median']:.4g} s", f"{fit['mean']:.4g} s", f"{fit['p95']:.4g} s"])
    return rows


def _lines(record: Mapping[str, Any]) -> list[str]:
    """The sentences both formats share, in reading order."""
    data, gof, check, cap = record["data"], record["goodness"], record["model_check"], record["capacity"]
    chosen = record["chosen"]
    lines = [
        f"Fitted from {data['users']:,} baseline users of the {record['source'].get('measured_source', '?')} run "
        f"({data['right_censored']:,} never saw usable: right-censored); each delay is known only between the "
        f"user's last stale and first usable read (interval-censored maximum likelihood, family chosen by AIC).",
        f"Chosen: {chosen['family']}, median {chosen['median']:.4g} s, p95 {chosen['p95']:.4g} s. Largest gap to the "
        f"Turnbull estimate {gof['max_gap']:.3f}; a correct fit strays that far with probability "
        f"{gof['p_value']:.2f} (95% of the time under {gof['max_gap_p95_by_chance']:.3f}).",
        "The calibrated model's staleness curve is "
        + (f"{100 * check['rms']:.2f} pp RMS" if check.get("rms") is not None else "not comparable")
        + f" from the measured one (allowed {100 * check['allowed']:.2f} pp).",
        "Capacity: " + (f"{cap['workers']} sync workers (95% set {cap['workers_ci95'][0]}..{cap['workers_ci95'][1]}), "
                        f"mean service {cap['service_mean']:.4g} s." if cap.get("fitted") else f"{cap['reason']}."),
    ]
    return lines


def calibration_html(record: Mapping[str, Any], figure_uri: str | None) -> str:
    """The section as an HTML fragment; ``figure_uri`` is calibration.png as a data URI."""
    good = record.get("verdict") == "good"
    parts = [f'<p class="{"pass" if good else "fail"}"><strong>Calibration: '
             f'{"good fit" if good else "poor fit"}</strong> (repaychaos calibrate of '
             f'{esc(str(record["source"].get("result", "?")))})</p>']
    if figure_uri:
        parts.append(f'<figure><img src="{figure_uri}" alt="calibration curves"><figcaption>The measured staleness '
                     "curve (Turnbull estimate from interval-censored reads), the best-fitting families and the "
                     "calibrated model's curve (repaychaos sim on calibrated.yaml, faults left out), side by side."
                     "</figcaption></figure>")
    parts += [f"<p>{esc(line)}</p>" for line in _lines(record)]
    parts.append('<p class="note">In the report repaychaos calibrate writes (calibration-report/), the model result is '
                 "the calibrated scenario's run (same scenario name), so the comparison above is the calibrated "
                 "model against the measurement it was fitted to.</p>")
    parts += [f'<p class="fail">Poor: {esc(reason)}</p>' for reason in record.get("reasons", [])]
    head = "".join(f"<th>{h}</th>" for h in ("family", "AIC", "median", "mean", "p95"))
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in _fits_rows(record))
    parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    return "\n".join(parts)


def calibration_markdown(record: Mapping[str, Any]) -> str:
    """The section as Markdown (for summary.md)."""
    good = record.get("verdict") == "good"
    out = [f"## Calibration: {'good fit' if good else 'POOR FIT'}", ""]
    out += [line + "  " for line in _lines(record)]
    out += [f"- poor: {reason}" for reason in record.get("reasons", [])]
    out += ["", "| family | AIC | median | mean | p95 |", "|---|---|---|---|---|"]
    out += ["| " + " | ".join(row) + " |" for row in _fits_rows(record)]
    return "\n".join(out) + "\n"
