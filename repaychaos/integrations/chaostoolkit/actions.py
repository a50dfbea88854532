"""Chaos Toolkit actions: put a fault into the reference service, end it, or run a target file's fault action.

The reference service's chaos API (docs/reference/http-api.md) takes one fault in scenario
syntax (docs/reference/scenario-format.md), ``at`` relative to now; the token comes from
the activity's secrets (key ``token``).
"""

from typing import Any

from repaychaos.integrations.chaostoolkit._http import base, fail, request, token_of

__all__ = ["start_fault", "end_fault", "run_target_fault_action"]


def start_fault(base_url: str, fault: dict[str, Any], allow_remote: bool = False, timeout: float = 10.0,
                secrets: Any = None) -> dict[str, Any]:
    """``POST /chaos/faults``: put ``fault`` (scenario syntax, e.g. ``{"type": "maintenance",
    "component": "sync", "mode": "pause", "for": "1h", "name": "pause-sync"}``) on the
    service's timeline. Returns the placed fault (its ``id``, ``label``, windows)."""
    answer = request("POST", base(base_url, allow_remote) + "/chaos/faults", token=token_of(secrets), json=fault,
                     timeout=timeout, ok=(201,))
    if not isinstance(answer, dict):
        fail(f"POST {base_url}/chaos/faults: expected a JSON object, found {str(answer)[:200]}")
    return answer


def end_fault(base_url: str, fault_id: str = "", name: str = "", allow_remote: bool = False,
              timeout: float = 10.0, secrets: Any = None) -> list[str]:
    """``DELETE /chaos/faults/{id}``: end a fault now, by ``fault_id``, or every fault added
    through the chaos API whose label is ``name`` (a rollback that need not know the id).
    Returns the ids ended (none is not an error: the fault may be over already)."""
    if bool(fault_id) == bool(name):
        fail("end_fault: give either fault_id or name")
    url, token = base(base_url, allow_remote), token_of(secrets)
    if fault_id:
        ids = [fault_id]
    else:
        listing = request("GET", url + "/chaos/faults", token=token, timeout=timeout)
        ids = [f["id"] for f in listing.get("faults", []) if f.get("label") == name and f.get("source") == "live"]
    for fid in ids:
        request("DELETE", f"{url}/chaos/faults/{fid}", token=token, timeout=timeout, ok=(200, 404))
    return ids


def run_target_fault_action(target_file: str, fault: str, phase: str = "start", fault_for: str = "1h",
                            values: dict[str, Any] | None = None, start_answer: dict[str, Any] | None = None,
                            base_url: str = "", allow_remote: bool = False) -> dict[str, Any]:
    """Run the ``start`` or ``stop`` action a target file gives for ``fault``
    (docs/reference/target-file.md), as ``repaychaos load --target`` would.

    ``{fault.for}`` renders as ``fault_for``; ``values`` add or override placeholders;
    ``start_answer`` is what ``{start./pointer}`` reads in a stop action (the ``answer`` this
    action returned for the start). ``base_url`` replaces the file's; either must be
    loopback unless ``allow_remote``. Returns the action's record (status, ok, output
    excerpt) with the JSON ``answer`` of an HTTP action; fails when the action fails.
    """
    import time

    import requests

    from repaychaos.core.errors import RepaychaosError
    from repaychaos.target import load_target
    from repaychaos.target.actions import ActionRunner

    if phase not in ("start", "stop"):
        fail(f"phase: expected 'start' or 'stop', found {phase!r}")
    try:
        target = load_target(target_file)
    except RepaychaosError as exc:
        fail(str(exc))
    found = next((fa for fa in target.faults if fa.fault == fault), None)
    if found is None:
        names = ", ".join(fa.fault for fa in target.faults) or "none"
        fail(f"{target_file}: no fault actions for {fault!r} (found: {names})")
    action = getattr(found, phase)
    if action is None:
        fail(f"{target_file}: fault {fault!r} has no {phase} action")
    filled = {"fault.name": fault, "fault.type": "", "fault.at": "0s", "fault.for": fault_for, "run": "chaostoolkit",
              **(values or {})}
    started = time.time()
    with requests.Session() as session:
        runner = ActionRunner(base(base_url or target.base_url, allow_remote), session, lambda: time.time() - started)
        outcome = runner.run(action, fault=fault, phase=phase, reason="chaostoolkit", values=filled,
                             start_answer=start_answer)
    record: dict[str, Any] = {**runner.log[-1], "answer": outcome.answer}
    if not outcome.ok:
        fail(f"{phase} action of fault {fault!r} failed: {outcome.error}")
    return record
