"""The per-user read log written beside a live or target ``result.json`` (``reads.jsonl.gz``).

A result holds aggregates; re-analysing a run (``repaychaos calibrate``, a new metric)
needs what each user saw. One gzip'd JSON line per acked repayment, after a header line:

    {"format": "repaychaos.reads/1", "source": "target", "scenario": "...", "time_scale": 60, ...}
    {"ack": 12.31, "phase": "baseline", "reads": [[17.3, "s"], [47.3, "u"]]}

Times are scenario seconds since scenario time 0. A read's outcome is ``u`` (showed
usable), ``s`` (stale: neither usable nor a hold) or ``h`` (unusable under a legitimate
hold). ``phase`` is the fault (label) whose window held the ack, else ``baseline``.
Lines may carry more keys (``arrived``, ``tries``); readers ignore what they do not know.
Both engines write it through :func:`write_read_log`; nothing here imports an engine.
"""

from __future__ import annotations

import gzip
import json
import math
import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from repaychaos.core.errors import InvalidResult
from repaychaos.core.types import ResultRecord

__all__ = ["READ_LOG_FORMAT", "READ_LOG_NAME", "BASELINE", "phase_of", "write_read_log", "read_read_log",
           "read_log_beside"]

READ_LOG_FORMAT = "repaychaos.reads/1"
READ_LOG_NAME = "reads.jsonl.gz"
#: Phase of a repayment acked outside every fault window.
BASELINE = "baseline"


def phase_of(windows: Sequence[dict[str, Any]], t: float) -> str:
    """The label of the first fault window (``core.result.fault_windows`` rows) holding ``t``."""
    for w in windows:
        end = math.inf if w.get("end") is None else w["end"]
        if w["start"] <= t < end:
            return str(w["fault"])
    return BASELINE


def _r(x: float | None) -> float | None:
    return None if x is None else round(float(x), 4)


def write_read_log(path: str | os.PathLike[str], header: dict[str, Any], users: Iterable[dict[str, Any]]) -> Path:
    """Write the header and one line per user (``ack``, ``phase``, ``reads`` as ``[t, outcome]``)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    # mtime=0: the same run gives the same bytes
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
        fh.write((json.dumps({"format": READ_LOG_FORMAT, **header}, separators=(",", ":")) + "\n").encode())
        for user in users:
            line = dict(user)
            line["ack"] = _r(line["ack"])
            line["reads"] = [[_r(t), o] for t, o in line.get("reads", ())]
            fh.write((json.dumps(line, separators=(",", ":")) + "\n").encode())
    os.replace(tmp, out)
    return out


def read_read_log(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Iterator[dict[str, Any]]]:
    """The header and an iterator over the user lines; InvalidResult (exit 2) if it is not a read log."""
    try:
        fh = gzip.open(path, "rt", encoding="utf-8")
        first = fh.readline()
    except (OSError, EOFError) as exc:
        raise InvalidResult(f"{path}: cannot read the read log ({exc})") from None
    try:
        header = json.loads(first)
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != READ_LOG_FORMAT:
        fh.close()
        raise InvalidResult(f"{path}: expected a read log with format '{READ_LOG_FORMAT}' on its first line")

    def lines() -> Iterator[dict[str, Any]]:
        with fh:
            for number, text in enumerate(fh, start=2):
                try:
                    yield json.loads(text)
                except ValueError:
                    raise InvalidResult(f"{path}:{number}: not a JSON line") from None

    return header, lines()


def read_log_beside(result_path: str | os.PathLike[str], result: ResultRecord) -> Path | None:
    """The read log a result names (``run.read_log``), beside its result.json, if it exists."""
    name = (result.get("run") or {}).get("read_log")
    if not name:
        return None
    path = Path(result_path).parent / name
    return path if path.exists() else None
