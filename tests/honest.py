"""What a live test may assert about a run that could not resolve its reads in time.

On a busy machine a live run's reads can land late enough that the staleness they read
is biased; the run then says so (``run.time_resolution.ok`` false, ``run.validity``
not ok, verdict ``inconclusive``, exit 3) instead of reporting a number. A test about
something else (plumbing, progress lines, calibration) must not fail by chance on such
a run: it asserts the run marked itself honestly and skips only the checks of the
number. A run invalid for any *other* reason still fails the test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["resolved", "resolved_exit"]


def resolved(result: dict[str, Any]) -> bool:
    """True if the run resolved its reads in time; False if it did not and said so properly."""
    run = result["run"]
    if run["time_resolution"]["ok"]:
        return True
    why = run["validity"]["why"]
    assert why and all(w.startswith("time resolution") for w in why), why
    assert result["verdict"] == "inconclusive" and result["passed"] is False
    return False


def resolved_exit(proc: Any, out_dir: Path, codes: tuple[int, ...] = (0,)) -> bool:
    """A CLI load run exited with one of ``codes`` (True), or with 3 because, and only because,
    its time resolution was not ok, saying so on stderr (False)."""
    if proc.returncode in codes:
        return True
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "time resolution not ok" in proc.stderr, proc.stderr
    return resolved(json.loads((Path(out_dir) / "result.json").read_text()))
