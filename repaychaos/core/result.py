"""The result record (docs/reference/result-file.md): built once here for the model and the load test, SLO
verdicts included, written and read back with clear errors.

Extensions beyond the core keys of docs/reference/result-file.md (documented there too): ``replications``, ``verdict``
(``pass``/``fail``/``inconclusive``), per-SLO ``verdict`` and ``ci95``, ``phases``
(the metrics of repayments acked inside each fault's windows and ``after`` them),
``series`` (fixed-width time bins), ``windows`` (every fault window), ``recovery``,
``ci_method`` (how the intervals were made), ``metrics.intervals`` (intervals of the
metrics docs/reference/result-file.md gives as plain numbers) and ``run`` (wall-clock facts that are *not* part of the deterministic metrics).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Sequence, cast

from repaychaos.core.errors import InvalidResult
from repaychaos.core.recovery import recovery_times
from repaychaos.core.types import ResultRecord, SloRow, Verdict

__all__ = [
    "SCHEMA",
    "build_result",
    "evaluate_slos",
    "lookup_metric",
    "fault_windows",
    "write_result",
    "read_result",
    "read_record",
    "default_out_dir",
]

SCHEMA = "repaychaos.result/1"
#: Also read: the name versions 0.1.x wrote between the namespace move and this fix.
LEGACY_SCHEMAS = ("repaychaos.core.result/1",)


def default_out_dir(scenario_name: str, source: str) -> Path:
    """docs/reference/cli.md: ``reports/out/<scenario>-<source>/``."""
    return Path("reports") / "out" / f"{scenario_name}-{source}"


def fault_windows(scenario: Any, horizon: float | None = None) -> list[dict[str, Any]]:
    """Every fault window of the scenario, labelled, in scenario seconds (end None = open)."""
    horizon = scenario.duration if horizon is None else horizon
    out = []
    for index, fault in enumerate(scenario.faults):
        for start, end in fault.windows(horizon):
            row = {"fault": scenario.fault_label(index), "type": fault.type, "start": start,
                   "end": None if end == math.inf else end}
            for extra in ("component", "mode", "link"):
                if hasattr(fault, extra):
                    row[extra] = getattr(fault, extra)
            out.append(row)
    return out


def lookup_metric(metrics: dict[str, Any], phases: dict[str, Any], key: str) -> tuple[float | None, list[float] | None]:
    """Value and 95 % interval (None where the metric has none) of a metric path such as
    ``time_to_usable.p99`` or ``stale_read_ratio@maintenance``.

    Ratios carry their interval in their node (docs/reference/result-file.md); other metrics with an interval
    (quantiles, the mean, support contacts) carry it in the population's ``intervals``.
    """
    path, _, phase = key.partition("@")
    source = metrics if not phase else phases.get(phase)
    if source is None:
        return None, None
    node: Any = source
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None, None
        node = node[part]
    if isinstance(node, dict) and "value" in node:
        return node["value"], node.get("ci95")
    if not isinstance(node, (int, float)) or isinstance(node, bool):
        return None, None
    interval = (source.get("intervals") or {}).get(path) or {}
    return node, interval.get("ci95")


def evaluate_slos(slo_rules: Sequence[Any], metrics: dict[str, Any], phases: dict[str, Any],
                  fail_on_inconclusive: bool = True) -> tuple[list[SloRow], bool, Verdict]:
    """Judge every SLO. A metric whose 95 % interval (a ratio, a time-to-usable quantile or
    mean, support contacts) straddles the threshold is ``inconclusive``: it fails the gate
    unless ``fail_on_inconclusive`` is False. Counts, and quantiles too far in the tail
    for an interval, are judged on their value.

    Returns the SLO rows, whether the gate passed, and the overall verdict.
    """
    rows: list[SloRow] = []
    any_fail = any_inconclusive = False
    for rule in slo_rules:
        observed, ci = lookup_metric(metrics, phases, rule.key)
        verdict: Verdict
        if observed is None:
            verdict = "fail"
        elif ci is not None and rule.op not in ("==", "!="):
            # An interval can show a metric is below or above a threshold; equality to a
            # value is never provable from an interval, so `== 0` is judged on the value.
            low_ok, high_ok = rule.holds(ci[0]), rule.holds(ci[1])
            if low_ok and high_ok and rule.holds(observed):
                verdict = "pass"
            elif not low_ok and not high_ok and not rule.holds(observed):
                verdict = "fail"
            else:
                verdict = "inconclusive"
        else:
            verdict = "pass" if rule.holds(observed) else "fail"
        any_fail |= verdict == "fail"
        any_inconclusive |= verdict == "inconclusive"
        passed = verdict == "pass" or (verdict == "inconclusive" and not fail_on_inconclusive)
        row: SloRow = {"metric": rule.key, "rule": rule.rule, "observed": observed, "passed": passed, "verdict": verdict}
        if ci is not None:
            row["ci95"] = ci
        rows.append(row)
    overall: Verdict = "fail" if any_fail else ("inconclusive" if any_inconclusive else "pass")
    gate = not any_fail and (not any_inconclusive or not fail_on_inconclusive)
    return rows, gate, overall


def build_result(scenario: Any, source: str, seed: int, finalized: dict[str, Any], *,
                 replications: int, run: dict[str, Any] | None = None,
                 fail_on_inconclusive: bool = True, extra: dict[str, Any] | None = None) -> ResultRecord:
    """The whole result record from :func:`repaychaos.core.collector.finalize` output."""
    metrics, phases, series = finalized["metrics"], finalized["phases"], finalized["series"]
    slo_rows, passed, verdict = evaluate_slos(scenario.slo, metrics, phases, fail_on_inconclusive)
    windows = fault_windows(scenario)
    baseline_reads = sum(r for t, r in zip(series["t"], series["reads"]) if _outside(t, windows, scenario.warmup))
    baseline_stale = sum(s for t, s in zip(series["t"], series["stale_reads"]) if _outside(t, windows, scenario.warmup))
    baseline = baseline_stale / baseline_reads if baseline_reads else 0.0
    recovery = recovery_times(series, [(w["fault"], w["start"], math.inf if w["end"] is None else w["end"]) for w in windows], baseline)
    record: dict[str, Any] = {
        "schema": SCHEMA,
        "source": source,
        "scenario": scenario.normalised(),
        "scenario_as_written": getattr(scenario, "written", None),
        "seed": seed,
        "replications": replications,
        "metrics": metrics,
        "slo": slo_rows,
        "passed": passed,
        "verdict": verdict,
        "phases": phases,
        "windows": windows,
        "recovery": {"baseline_stale_share": round(baseline, 9), "windows": recovery},
        "series": series,
    }
    if "ci_method" in finalized:
        record["ci_method"] = finalized["ci_method"]
    if "batches" in finalized:
        record["batches"] = finalized["batches"]
    if extra:
        record.update(extra)
    record["run"] = run or {}
    return cast(ResultRecord, record)  # built key by key above; ``extra`` adds engine-specific keys


def _outside(t: float, windows: list[dict[str, Any]], warmup: float) -> bool:
    if t < warmup:
        return False
    for w in windows:
        end = math.inf if w["end"] is None else w["end"]
        if w["start"] <= t < end + 0.0:
            return False
    return True


def write_result(result: ResultRecord, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``result.json`` (stable key order, no NaN) into ``out_dir`` and return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "result.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_record(path: str | os.PathLike[str], schema: str, what: str,
                also: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a JSON record of ``schema`` (a result, a sweep), refusing anything else clearly."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidResult(f"{path}: cannot read ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise InvalidResult(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict) or data.get("schema") not in (schema, *also):
        raise InvalidResult(f"{path}: expected a repaychaos {what} with schema '{schema}'")
    return data


def read_result(path: str | os.PathLike[str]) -> ResultRecord:
    """Read a result.json, refusing anything that is not a repaychaos result."""
    data = read_record(path, SCHEMA, "result", also=LEGACY_SCHEMAS)
    for key in ("source", "scenario", "metrics", "slo", "passed"):
        if key not in data:
            raise InvalidResult(f"{path}: expected key '{key}' in a repaychaos result")
    return cast(ResultRecord, data)  # its schema and docs/reference/result-file.md's keys checked above
