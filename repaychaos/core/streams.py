"""Independent random streams, one per purpose, for common random numbers.

Each stream is seeded from ``(seed, replication index, stream name)`` through SHA-256,
so it is the same in every process and on every platform, and two scenarios that
differ only in, say, the worker count draw the same arrivals and the same users.
"""

from __future__ import annotations

import hashlib
import random

__all__ = ["STREAMS", "stream", "streams", "keyed_uniform"]

#: arrivals: inter-arrival gaps; users: check timing; service: stage service times;
#: decisions: per-repayment uniforms (risk hold, link faults, cutover); faults: fault-only draws.
STREAMS: tuple[str, ...] = ("arrivals", "users", "service", "decisions", "faults")


def stream(seed: int, index: int, name: str) -> random.Random:
    """The ``name`` stream of replication ``index`` of a run seeded ``seed``."""
    digest = hashlib.sha256(f"repaychaos:{seed}:{index}:{name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def streams(seed: int, index: int) -> dict[str, random.Random]:
    """Every stream of one replication, by name."""
    return {name: stream(seed, index, name) for name in STREAMS}


def keyed_uniform(seed: int, index: int, name: str) -> float:
    """One uniform in [0, 1) of its own for ``name`` (e.g. one repayment's account), from
    the same hash as :func:`stream`: cheap enough to draw once per repayment, and the same
    wherever it is drawn (the model, the load side) and in whatever order."""
    digest = hashlib.sha256(f"repaychaos:{seed}:{index}:{name}".encode()).digest()
    return (int.from_bytes(digest[:8], "big") >> 11) * (1.0 / (1 << 53))
