"""What a live test may assert about a run that a busy machine kept from being a measurement.

On a busy machine a live run's reads can land late enough that the staleness they read
is biased, or Locust can start after scenario time 0; the run then says so
(``run.validity`` not ok, verdict ``inconclusive``, exit 3) instead of reporting a number. A test about
something else (plumbing, progress lines, calibration) must not fail by chance on such
a run: it asserts the run marked itself honestly and skips only the checks of the
number. A run invalid for any *other* reason still fails the test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["resolved", "resolved_exit"]


#: Reasons a run on a busy machine may give for not being a measurement: its reads landed too
#: late, or Locust started after scenario time 0 (the arrivals before it were never sent).
BUSY_MACHINE = ("time resolution", "the arrivals began")


def resolved(result: dict[str, Any]) -> bool:
    """True if the run is a measurement; False if a busy machine kept it from being one and it
    said so properly (any other reason fails the test)."""
    run = result["run"]
    if run["validity"]["ok"]:
        return True
    why = run["validity"]["why"]
    assert why and all(w.startswith(BUSY_MACHINE) for w in why), why
    assert result["verdict"] == "inconclusive" and result["passed"] is False
    return False


def resolved_exit(proc: Any, out_dir: Path, codes: tuple[int, ...] = (0,)) -> bool:
    """A CLI load run exited with one of ``codes`` (True), or with 3 because, and only because,
    its time resolution was not ok, saying so on stderr (False)."""
    if proc.returncode in codes:
        return True
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "not a measurement" in proc.stderr, proc.stderr
    return resolved(json.loads((Path(out_dir) / "result.json").read_text()))
