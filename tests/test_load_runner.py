"""The load runner's pure parts: target safety, the default time scale, joining records with the trace."""

from __future__ import annotations

import functools

import pytest

from repaychaos.scenarios import bundled_scenarios, load_scenario, load_scenario_data
from repaychaos.load.measure import collect
from repaychaos.load.runner import (MAX_TIME_SCALE, MAX_WALL_RATE, MAX_WALL_REQUESTS, ReadProfile, check_target,
                                   default_time_scale, run_load)
from repaychaos.core.errors import InvalidInput, UnsafeTarget
from repaychaos.core.collector import finalize

SMALL = {
    "version": 1, "name": "join", "duration": "100s", "warmup": "10s",
    "workload": {"arrivals": {"rate": 1}, "check": {"first_after": "1s", "every": "1s", "max_checks": 2}},
    "pipeline": {"reconcile": "off"},
}


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "http://localhost:9", "http://[::1]:80", "127.0.0.2"])
def test_loopback_targets_are_always_allowed(host):
    """Loopback hosts need no opt-in."""
    assert check_target(host, allow_remote=False).startswith("http://")


def test_remote_target_needs_allow_remote():
    """A non-loopback host raises UnsafeTarget unless allow_remote is set."""
    with pytest.raises(UnsafeTarget, match="allow-remote"):
        check_target("http://10.1.2.3:8000", allow_remote=False)
    assert check_target("http://10.1.2.3:8000", allow_remote=True) == "http://10.1.2.3:8000"


def test_run_load_refuses_a_remote_host_before_starting_anything():
    """run_load raises UnsafeTarget for a remote host without the opt-in."""
    with pytest.raises(UnsafeTarget):
        run_load(load_scenario_data(SMALL), host="http://192.0.2.1:8000")


def test_run_load_refuses_a_bad_time_scale():
    """A time scale <= 0 is bad input."""
    with pytest.raises(InvalidInput):
        run_load(load_scenario_data(SMALL), time_scale=0)


def test_default_time_scale_aims_at_a_minute_under_the_rate_cap():
    """K = duration / 60 s unless that exceeds MAX_TIME_SCALE or the wall arrival rate would
    exceed MAX_WALL_RATE."""
    # K to 3 significant digits (near-equal steps merge)
    assert default_time_scale(load_scenario_data(SMALL)).steps == ((0.0, pytest.approx(100 / 60, rel=5e-3)),)
    busy = load_scenario_data({**SMALL, "duration": "6h", "workload": {"arrivals": {"rate": "40/s"}}})
    assert default_time_scale(busy).steps == ((0.0, pytest.approx(MAX_WALL_RATE / 40)),)  # 360 would mean 14,400/s
    slow = load_scenario_data({**SMALL, "duration": "6h", "workload": {"arrivals": {"rate": "1/s"}}})
    assert default_time_scale(slow).steps == ((0.0, MAX_TIME_SCALE),)


def test_default_time_scale_steps_with_the_arrival_rate():
    """month-end-peak: 20, 45, 75 and 30 repayments/s by the hour; each hour at its own K."""
    peak = load_scenario(bundled_scenarios()["month-end-peak"])
    scale = default_time_scale(peak)
    close = functools.partial(pytest.approx, rel=5e-3)  # K to 3 significant digits
    assert scale.steps == ((0.0, MAX_TIME_SCALE), (3600.0, close(MAX_WALL_RATE / 45)),
                           (7200.0, close(MAX_WALL_RATE / 75)), (10800.0, close(MAX_WALL_RATE / 30)))
    # 3600 s at each K: 1,224 wall seconds, 57 % of the 2,160 one K for the peak would take
    assert scale.wall_span(14400.0) == close(3600 * (1 / 25 + 45 / 500 + 75 / 500 + 30 / 500))
    assert scale.wall_span(14400.0) < 0.6 * 14400 / (MAX_WALL_RATE / 75)


def test_default_time_scale_slows_where_the_model_expects_many_reads():
    """At 20/s with 80 expected reads/s from 600 s to 900 s: K = 1200 / 100 = 12 there, else
    min(25, 500 / 20, 1200 / 40) = 25; the series' replications are averaged."""
    busy = load_scenario_data({**SMALL, "duration": "30m", "workload": {"arrivals": {"rate": "20/s"}}})
    series = {"bin_width": 300.0, "replications": 2, "reads": [2 * 20 * 300, 2 * 20 * 300, 2 * 80 * 300, 2 * 20 * 300]}
    scale = default_time_scale(busy, ReadProfile.from_series(series))
    assert scale.steps == ((0.0, MAX_TIME_SCALE), (600.0, MAX_WALL_REQUESTS / 100), (900.0, MAX_TIME_SCALE))
    assert default_time_scale(busy).steps == ((0.0, MAX_TIME_SCALE),)  # without the model: the rate cap alone


def _trace(reps, duplicates=0):
    return {"t0": 1000.0, "time_scale": 2.0, "repayments": reps, "duplicates": duplicates, "backlog": [[20.0, 3]]}


def _rep(rep_id, acked_at, changes, held=False, touches=()):
    return {"id": rep_id, "key": rep_id, "account": "a", "acked_at": acked_at, "held": held, "changes": changes,
            "touches": list(touches)}


def _user(rep_id, acked_epoch, reads):
    return {"key": rep_id, "id": rep_id, "acked_at": acked_epoch, "attempts": 1, "reads": reads}


def test_join_counts_stale_reads_in_scenario_time():
    """Reads are converted to scenario time ((epoch - t0) * K) and judged against the view changes."""
    sc = load_scenario_data(SMALL)
    trace = _trace([_rep("r1", 20.0, [[23.0, True]])])
    # reads at scenario 22 (stale) and 24 (usable): epochs 1011 and 1012
    user = _user("r1", 1010.0, [[1011.0, False, 1011.0], [1012.0, True, 1012.0]])
    col, counts = collect(sc, trace, [user])
    m = finalize([col.state])["metrics"]
    assert (m["repayments"], m["reads"], m["stale_reads"]) == (1, 2, 1)
    assert m["time_to_usable"]["max"] == pytest.approx(3.0)
    assert counts["acked"] == 1


def test_join_counts_an_acked_id_missing_from_the_ledger_as_lost():
    """An id the user was acked for but the ledger lacks is a lost repayment, in or out of the window."""
    sc = load_scenario_data(SMALL)
    users = [_user("gone", 1010.0, []), _user("early", 1001.0, [])]  # scenario 20 (window) and 2 (warmup)
    col, counts = collect(sc, _trace([]), users)
    m = finalize([col.state])["metrics"]
    assert m["lost_repayments"] == 2
    assert counts["lost"] == 2


def test_join_reports_duplicates_and_unacked_users():
    """Duplicate ledger rows come from the ledger; users who gave up are counted, not dropped."""
    sc = load_scenario_data(SMALL)
    users = [{"key": "x", "attempts": 8, "gave_up": True, "reads": []}]
    col, counts = collect(sc, _trace([], duplicates=0), users, ledger_ids=set(), duplicates=3)
    m = finalize([col.state])["metrics"]
    assert m["duplicate_repayments"] == 3
    assert m["unacked_repayments"] == 1 and counts["unacked"] == 1


def test_join_attributes_by_the_service_touches():
    """A stale read after a maintenance touch is attributed to maintenance."""
    sc = load_scenario_data(SMALL)
    trace = _trace([_rep("r1", 20.0, [[40.0, True]], touches=[["maintenance", 20.5, 19.5]])])
    col, _ = collect(sc, trace, [_user("r1", 1010.0, [[1011.0, False, 1011.0]])])
    m = finalize([col.state])["metrics"]
    assert m["stale_reads_by_cause"]["maintenance"] == 1


def test_standalone_locustfile_refuses_a_non_loopback_host():
    """`locust -f loadtests/locustfile.py --host <remote>` stops before sending anything.

    The host name is in the reserved .invalid domain, so even a broken guard could not
    reach anything.
    """
    import subprocess
    import sys
    from pathlib import Path

    locustfile = Path(__file__).resolve().parent.parent / "loadtests" / "locustfile.py"
    proc = subprocess.run([sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", "1", "-r", "1",
                           "-t", "3s", "--host", "http://example.invalid:9"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "not a loopback address" in proc.stderr
