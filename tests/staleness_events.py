"""A seeded script of the repaying users' events (no Locust here), shared by a test locustfile and the tests."""

from __future__ import annotations

import random
from typing import Any

SCENARIO = "nightly-maintenance"


def script(users: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """``(event name, keyword arguments)`` in firing order for ``users`` users: 5 % held accounts,
    the rest usable after 0, 1, 2 or (support contact) 5 stale looks."""
    rng = random.Random(seed)
    out: list[tuple[str, dict[str, Any]]] = []
    for _ in range(users):
        out.append(("repayment_acked", {"scenario": SCENARIO, "ack_at": rng.uniform(0, 100)}))
        hold = rng.random() < 0.05
        stale_looks = 0 if hold else rng.choice([0, 0, 0, 1, 2, 5])
        first_usable = None
        for index in range(5):
            usable = not hold and index >= stale_looks
            out.append(("read_seen", {"scenario": SCENARIO, "usable": usable, "hold": hold,
                                      "since_ack_s": 5.0 + 30 * index, "index": index}))
            if usable:
                first_usable = 5.0 + 30 * index
                break
        out.append(("user_done", {"scenario": SCENARIO, "support_contact": first_usable is None and not hold,
                                  "first_usable_s": first_usable}))
    return out
