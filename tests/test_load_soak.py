"""The long live run: a bundled scenario end to end (kept out of the default suite)."""

from __future__ import annotations

import pytest

from chaos_scenarios import resolve_scenario
from loadtests.runner import run_load

pytestmark = [pytest.mark.soak, pytest.mark.live]


def test_nightly_maintenance_live_run_loses_nothing_and_blames_the_pause():
    """The bundled nightly-maintenance scenario at the default time scale: no loss, no duplicate,
    stale reads attributed to maintenance, every user done."""
    scenario = resolve_scenario("nightly-maintenance")
    result = run_load(scenario, progress=False)
    m = result["metrics"]
    assert result["source"] == "load"
    assert m["lost_repayments"] == 0 and m["duplicate_repayments"] == 0
    assert m["repayments"] > 0 and m["reads"] >= m["repayments"]
    assert m["stale_reads_by_cause"]["maintenance"] > 0
    assert result["run"]["complete"]
