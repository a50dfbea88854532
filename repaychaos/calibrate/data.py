"""From a live or target result and its read log to interval-censored delays.

Each user's delay from ack to usable is known only to lie in ``(L, R]``: ``L`` the last
stale read before the first usable one (0 if the first read was usable), ``R`` the first
usable read; ``R = inf`` for a user who never saw usable (right-censored). Users under a
legitimate hold are left out (their account is not stale). Only repayments acked in
``[warmup, duration)`` count, as for the metrics.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from repaychaos.core.errors import InvalidResult
from repaychaos.core.readlog import BASELINE, read_log_beside, read_read_log
from repaychaos.core.result import read_result
from repaychaos.core.types import ResultRecord

__all__ = ["Observations", "load_observations", "MIN_USERS"]

#: Fewer users than this who saw usable in the baseline phase: nothing worth fitting.
MIN_USERS = 30


@dataclass
class Observations:
    """Censored delays (scenario seconds) of the baseline phase, plus every user's ack time and phase."""

    result: ResultRecord
    source_path: str
    low: np.ndarray
    high: np.ndarray  # inf = right-censored
    acks: np.ndarray  # ack times of the same users
    first: np.ndarray  # each user's first read, seconds after the ack
    every: float = 0.0  # the check policy's re-check interval and number of checks
    max_checks: int = 1
    all_acks: list[float] = field(default_factory=list)
    phases: dict[str, int] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.low)

    @property
    def right_censored(self) -> int:
        return int(np.isinf(self.high).sum())


def load_observations(path: str | os.PathLike[str]) -> Observations:
    """Read ``RESULT.json`` and its read log; InvalidResult (exit 2) with what is missing."""
    result = read_result(path)
    if result.get("source") not in ("load", "target"):
        raise InvalidResult(f"{path}: a '{result.get('source')}' result has no measured reads; calibrate the "
                            "result of `repaychaos load` or `repaychaos load --target`")
    log = read_log_beside(path, result)
    if log is None:
        raise InvalidResult(f"{path}: no per-user read log beside it (run.read_log, e.g. reads.jsonl.gz); "
                            "re-run the measurement with this version of repaychaos")
    header, lines = read_read_log(log)
    warmup, duration = float(header.get("warmup", 0.0)), float(header["duration"])
    low, high, acks, first, all_acks = [], [], [], [], []
    phases: dict[str, int] = {}
    for user in lines:
        ack = float(user["ack"])
        if not warmup <= ack < duration:
            continue
        all_acks.append(ack)
        phase = user.get("phase", BASELINE)
        phases[phase] = phases.get(phase, 0) + 1
        reads = user.get("reads") or []
        if phase != BASELINE or not reads or any(o == "h" for _, o in reads):
            continue
        last_stale, first_usable = 0.0, math.inf
        for t, outcome in reads:
            if outcome == "u":
                first_usable = max(0.0, float(t) - ack)
                break
            last_stale = max(0.0, float(t) - ack)
        low.append(last_stale)
        high.append(first_usable)
        acks.append(ack)
        first.append(max(0.0, float(reads[0][0]) - ack))
    check = header.get("check") or {}
    obs = Observations(result, str(path), np.asarray(low), np.asarray(high), np.asarray(acks), np.asarray(first),
                       float(check.get("every") or 0.0), int(check.get("max_checks") or 1), all_acks, phases)
    seen = int(np.isfinite(obs.high).sum())
    if seen < MIN_USERS:
        raise InvalidResult(f"{path}: only {seen} users of the baseline phase saw their account usable "
                            f"(at least {MIN_USERS} needed to fit a delay)")
    return obs


def result_dir(path: str | os.PathLike[str]) -> Path:
    return Path(path).parent
