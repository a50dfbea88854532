"""The example scripts in sim/ run, and print what their docstrings promise (short runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(script: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(ROOT / "sim" / script), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_quickstart_runs_a_bundled_scenario_and_prints_its_numbers():
    """quickstart.py prints the headline metrics, the staleness curve and one line per SLO."""
    out = _run("quickstart.py", "nightly-maintenance", "--duration", "30m", "--replications", "1")
    assert out.startswith("nightly-maintenance: ")
    assert "stale_read_ratio" in out and "staleness curve" in out
    assert out.count("  SLO ") == 5  # nightly-maintenance has five SLOs


def test_compare_workers_gives_identical_numbers_where_no_one_waits():
    """With common random numbers, two worker counts at which no message waits give the same
    ratio, and one where messages queue gives a higher one. quiet-baseline offers 1 Erlang
    (10/s of 100 ms): P(wait) is about 0.33 with 2 workers and below 1e-12 with 16 or 32
    (Erlang C), so over 18,000 repayments 16 and 32 workers see the same service times."""
    out = _run("compare_workers.py", "quiet-baseline", "--workers", "2", "16", "32", "--duration", "30m",
               "--replications", "1")
    rows = {int(line.split()[0]): line.split()[1] for line in out.splitlines()[2:]}
    assert set(rows) == {2, 16, 32}
    assert rows[16] == rows[32]
    assert float(rows[2].rstrip("%")) > float(rows[16].rstrip("%"))
