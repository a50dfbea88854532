"""The long versions of the service's property-based and memory tests (``make soak``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.soak, pytest.mark.live]


def test_schemathesis_long_run_is_clean():
    """400 examples per operation instead of 25 (the default suite's run)."""
    here = Path(__file__).parent
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(here / "test_service_schema.py")],
                          env=dict(os.environ, REPAYCHAOS_SCHEMA_EXAMPLES="400"), capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:]
