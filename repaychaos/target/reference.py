"""The reference service's own description in the target file format (docs/reference/http-api.md).

The live mode (``repaychaos load SCENARIO``) drives the reference service with the same
Locust users as target mode; this is the description they get. Beyond what a black-box
target file says, it points at the service's own instants: the ack's ``acked_at``, a
ledger reject's ``retry_at``, a read's ``read_at`` and ``as_of``; every repayment carries
the instant it is made at (``as_of={repay_at}``), which the service commits it as of, and
every status read the instant it is meant for (``as_of={read_at}``), which the service
answers as of when it keeps the view's history (a service that does not ignores the
parameter).
"""

from __future__ import annotations

from repaychaos.target.spec import Target

__all__ = ["reference_target", "REFERENCE_MAX_REQUESTS"]

#: The live mode's request cap: far above any run the load runner accepts (its own
#: repayment limit times the checks), so it only stops a runaway client.
REFERENCE_MAX_REQUESTS = 10**9


def reference_target(base_url: str) -> Target:
    """How the load users talk to the reference service at ``base_url``."""
    return Target.model_validate({
        "name": "reference-service (built in)",
        "base_url": base_url,
        "repay": {"method": "POST", "path": "/repayments?as_of={repay_at}", "headers": {"Idempotency-Key": "{key}"},
                  "json": {"account": "{account}", "amount": "{amount}"}, "ok": [200, 201], "retry": [429, 503],
                  "id": "/id", "acked_at": "/acked_at", "retry_at": "/retry_at", "max_tries": 1000, "timeout": 30.0},
        "status": {"method": "GET", "path": "/accounts/{account}/status?as_of={read_at}&repayment={id}",
                   "usable": {"pointer": "/status", "equals": "usable"}, "read_at": "/read_at", "as_of": "/as_of",
                   "timeout": 30.0},
        "max_requests": REFERENCE_MAX_REQUESTS,
        "concurrency": 1024,
    })
