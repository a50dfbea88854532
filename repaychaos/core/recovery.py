"""How long after each fault window the stale share of reads is back to its baseline."""

from __future__ import annotations

import math
from typing import Any, Sequence

__all__ = ["recovery_times"]


def _r(x: float) -> float:
    return float(f"{x:.9g}")


def recovery_times(series: dict[str, Any], windows: Sequence[tuple[str, float, float]], baseline: float,
                   tolerance: float = 0.5) -> list[dict[str, Any]]:
    """For each fault window, seconds from its end until the stale share of reads per bin is
    back within ``(1 + tolerance) × baseline`` (plus one read in a bin of noise), or None."""
    out = []
    width = series["bin_width"]
    reads, stale = series["reads"], series["stale_reads"]
    for label, start, end in windows:
        recovered = None
        first_bin = int(math.ceil(end / width)) if end != math.inf else len(reads)
        for i in range(first_bin, len(reads)):
            if reads[i] == 0:
                continue
            if stale[i] <= baseline * (1 + tolerance) * reads[i] + 1:
                recovered = _r(max(0.0, i * width - end))
                break
        out.append({"fault": label, "start": _r(start), "end": _r(end) if end != math.inf else None,
                    "recovered_after": recovered})
    return out
