"""Users who pay again, in the model (docs/explanation/semantics.md, 10a): who does, and
the second payment's draws.

Both engines call these, so they decide alike whatever order they decide in: a user's
choice and their second payment's draws come from a stream of that user's own, keyed by
the first repayment's id (its place in the arrival order), not from a shared stream that
the order of decisions would thread differently. No other draw of the run changes.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from repaychaos.core.streams import stream
from repaychaos.scenarios.faults.hooks import N_UNIFORMS, U_HOLD
from repaychaos.semantics import pay_again_at, pays_again, view_at, view_history
from repaychaos.sim.message import Msg
from repaychaos.sim.users import reads_general

__all__ = ["SecondPayment", "stale_reads_before", "second_payment", "second_msg"]


class SecondPayment(NamedTuple):
    """A second payment's draws: arrival (the decision read's instant), channel latency,
    sync and credit service, and its decision uniforms."""

    arrival: float
    latency: float
    svc: float
    csvc: float
    u: tuple[float, ...]


def stale_reads_before(ack: float, held: bool, write: float | None, wrong: bool, first: float, every: float,
                       after: int, cache_ttl: float, next_sweep: Callable[[float], float]) -> list[bool]:
    """Whether each of a user's first ``after`` reads was stale, from the repayment's view
    history (``write`` None: not written, or not yet by the decision read)."""
    usable_at, changes, _ = view_history(ack, held, write, wrong, next_sweep)
    if changes is None:
        def view(t: float) -> bool:
            return t >= usable_at
    else:
        def view(t: float) -> bool:
            return view_at(changes, t)
    reads = reads_general(ack, view, first, every, after, cache_ttl)
    return [not r.shown_usable and not held for r in reads]


def second_payment(scenario: Any, seed: int, index: int, first_id: int, ack: float, first: float,
                   stale: list[bool]) -> SecondPayment | None:
    """The user of repayment ``first_id`` (acked at ``ack``, first read ``first`` after it)
    whose first reads were ``stale``: their second payment, or None if they do not pay again."""
    check = scenario.workload.check
    pay = check.pay_again
    if len(stale) < pay.after_stale_reads or not all(stale[:pay.after_stale_reads]):
        return None  # no draw: the choice is only made by users it is open to
    rng = stream(seed, index, f"pay-again/{first_id}")
    if not pays_again(stale, pay.after_stale_reads, rng.random(), pay.probability):
        return None
    pipe = scenario.pipeline
    latency = pipe.channel.latency.sampler(rng)()
    svc = pipe.sync.service.sampler(rng)()
    csvc = pipe.credit.service.sampler(rng)()
    u = tuple(rng.random() for _ in range(N_UNIFORMS))
    return SecondPayment(pay_again_at(ack + first, check.every, pay.after_stale_reads), latency, svc, csvc, u)


def second_msg(first_id: int, draws: SecondPayment, hold_ratio: float) -> Msg:
    """The second payment as a pipeline message (id ``-1 - first_id``; its ack is set by the
    caller once the ledger has taken it)."""
    msg = Msg(-1 - first_id, draws.svc, draws.csvc, 0.0, draws.u, draws.u[U_HOLD] < hold_ratio)
    msg.second = True
    return msg
