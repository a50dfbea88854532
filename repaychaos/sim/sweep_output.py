"""sweep.json and sweep.csv (docs/reference/cli.md): one row per grid point, written the same way every time.

sweep.json keeps each point's full metrics, phases and SLO verdicts; sweep.csv flattens
the headline numbers for a spreadsheet. Key order and number formatting are stable so
the same sweep gives the same bytes (wall-clock facts live only under ``run``).

sweep.json (schema ``repaychaos.sweep/1``)::

    schema, source ("sim"), scenario (the base, normalised), seed, replications,
    keys      [varied keys..., searched key]
    vary      [{key, values}]            as given on the command line, typed
    search    {key, low, high, integer, tolerance} | null
    headline  "stale_read_ratio"
    frontier  {key, goal ("max" | "min" | null), over [other keys], method ("grid" | "bisection"),
               points: [{values, settings, value, setting, status ("found" | "all_pass" | "none_pass")}]} | null
    passed    every row met every SLO
    rows      [{point, values, settings, seed, replications, passed, verdict, slo, metrics, phases}]
    run       {backend, workers, points, tasks, wall_seconds, points_per_minute}

``values`` are as the user wrote them (``"10/s"``); ``settings`` the same in the
scenario's base units (10.0 per second), for plotting and sorting.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["SWEEP_SCHEMA", "CSV_METRICS", "write_sweep_json", "write_sweep_csv", "read_sweep"]

SWEEP_SCHEMA = "repaychaos.sweep/1"

#: (column, metric path) of the headline metrics in sweep.csv.
CSV_METRICS: tuple[tuple[str, str], ...] = (
    ("repayments", "repayments"),
    ("reads", "reads"),
    ("stale_reads", "stale_reads"),
    ("stale_read_ratio", "stale_read_ratio.value"),
    ("stale_read_ratio_ci95_low", "stale_read_ratio.ci95.0"),
    ("stale_read_ratio_ci95_high", "stale_read_ratio.ci95.1"),
    ("affected_ratio", "affected_ratio.value"),
    ("time_to_usable_mean", "time_to_usable.mean"),
    ("time_to_usable_p50", "time_to_usable.p50"),
    ("time_to_usable_p95", "time_to_usable.p95"),
    ("time_to_usable_p99", "time_to_usable.p99"),
    ("time_to_usable_max", "time_to_usable.max"),
    ("never_usable", "never_usable"),
    ("support_contacts_per_10k", "support_contacts_per_10k"),
    ("lost_repayments", "lost_repayments"),
    ("duplicate_repayments", "duplicate_repayments"),
    ("wrong_usable_reads", "wrong_usable_reads"),
)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_sweep_json(record: dict[str, Any], out_dir: str | os.PathLike[str]) -> Path:
    """Write ``sweep.json`` (no NaN, stable order) and return its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "sweep.json"
    _atomic_write(path, json.dumps(record, indent=2, allow_nan=False) + "\n")
    return path


def _lookup(metrics: dict[str, Any], path: str) -> Any:
    node: Any = metrics
    for part in path.split("."):
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return value


def write_sweep_csv(record: dict[str, Any], out_dir: str | os.PathLike[str]) -> Path:
    """Write ``sweep.csv``: point, the varied keys, headline metrics, verdict, passed."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "sweep.csv"
    keys = list(record["keys"])
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["point", *keys, *(c for c, _ in CSV_METRICS), "verdict", "passed"])
        for row in record["rows"]:
            writer.writerow([
                row["point"],
                *(_cell(row["values"].get(k)) for k in keys),
                *(_cell(_lookup(row["metrics"], p)) for _, p in CSV_METRICS),
                row["verdict"],
                "true" if row["passed"] else "false",
            ])
    os.replace(tmp, path)
    return path


def read_sweep(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a sweep.json back (for plots and reports), refusing anything else."""
    from repaychaos.core.result import read_record

    return read_record(path, SWEEP_SCHEMA, "sweep")
