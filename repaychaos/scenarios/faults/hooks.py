"""What a fault type may do in each engine, and the narrow APIs the engines give it.

A fault module (one per type, in this package) holds its spec, label and colour, and
its behaviour in both engines:

- ``MODEL``: a :class:`ModelInjector` subclass — how the SimPy model applies the fault to
  a repayment at the places it declares (:data:`HOOKS`), and any moment of its own;
- ``LIVE``: a :class:`LiveRule` — how the live reference service applies it.

Both speak the same words: a component's ``gate``, a ``link`` crossed, a worker's
``sync_start``, the view ``write``, and the instants a fault was ``placed`` to act at.

Both talk to their engine only through the verbs here (:class:`ModelAPI`,
:class:`LiveAPI`) and the message protocols, never its queue or tasks, so neither
engine has code for a particular fault type: adding a fault type is adding one module.
The rules they apply (link draws, flips, retry times, until-repaired) are the functions
of :mod:`repaychaos.semantics`.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from typing import TYPE_CHECKING, Any, Awaitable, Callable, ClassVar, Iterable, NamedTuple, Protocol, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import random

    from repaychaos.core.records import Read
    from repaychaos.scenarios.faults.base import FaultBase

__all__ = ["COMPONENTS", "LINKS", "Hook", "HOOKS", "GATE", "LINK", "SYNC_START", "WRITE", "SETTLE",
           "U_HOLD", "U_LINK", "U_CUT_LOSS", "U_UNMAPPED", "N_UNIFORMS",
           "ModelMessage", "ModelAPI", "ModelInjector", "LiveMessage", "LiveFault", "LiveAPI", "LiveRule",
           "Gate"]

#: The components work waits at when a fault holds them, in path order.
COMPONENTS: tuple[str, ...] = ("ledger", "sync", "credit", "view")
#: The links between components, in path order.
LINKS: tuple[str, ...] = ("ledger->sync", "sync->credit", "credit->view")


class Hook(NamedTuple):
    """A place on a repayment's path where a model injector acts: the
    :class:`ModelInjector` method the engines call there, and the component or link they
    pass it (None: the method takes neither)."""

    method: str
    where: str | None = None


#: ``gate(component, msg, t)``: work reaching a component (:data:`COMPONENTS`).
GATE: dict[str, Hook] = {c: Hook("gate", c) for c in COMPONENTS}
#: ``link(link, msg, t)``: a message crossing a link (:data:`LINKS`).
LINK: dict[str, Hook] = {link: Hook("link", link) for link in LINKS}
#: ``sync_start(msg, t)``: a worker starting a message, once no gate holds it.
SYNC_START = Hook("sync_start")
#: ``write(msg, t)``: the view write.
WRITE = Hook("write")
#: ``settle(msg, t)``: the instant of the view write, after every ``write``.
SETTLE = Hook("settle")
#: Every hook, in path order: the ledger commits (the ack), the outbox publishes, a sync
#: worker takes the message (its gate, then its start), sync hands it to credit, credit
#: takes it, credit hands it to the view, the view writes it, and the write settles.
HOOKS: tuple[Hook, ...] = (GATE["ledger"], LINK["ledger->sync"], GATE["sync"], SYNC_START, LINK["sync->credit"],
                           GATE["credit"], LINK["credit->view"], GATE["view"], WRITE, SETTLE)

#: Positions of a repayment's decision uniforms in the model (drawn at arrival, in this
#: order, whatever the faults: common random numbers across scenarios).
U_HOLD = 0
U_LINK = {"ledger->sync": 1, "sync->credit": 2, "credit->view": 3}
U_CUT_LOSS = 4
U_UNMAPPED = 5
N_UNIFORMS = 6

#: A component's window in force: ``(start, end, mode, cause)``; mode ``pause`` or ``reject``.
Gate = tuple[float, float, str, str]


# ---------------------------------------------------------------------------------- the model

class ModelMessage(Protocol):
    """A repayment as a model injector sees it (scenario seconds)."""

    ack: float
    enq: float
    u: tuple[float, ...]
    extra: float
    bad: bool
    dropped: bool
    lost: bool
    #: a credit rule holds the account from its view write until the first reconcile sweep
    #: at or after this instant (None: no rule holds it)
    kept_until: float | None

    def touch(self, cause: str, at: float, added: float) -> None: ...

    def touch_until_repair(self, cause: str, at: float) -> None: ...


class ModelAPI(Protocol):
    """All a fault injector may do to the model: no SimPy, no queue object, no pool counters."""

    horizon: float
    rng: random.Random
    #: the scenario's ``credit.risk_hold_ratio``: a repayment is held when ``u[U_HOLD]`` is below it
    risk_hold_ratio: float
    #: the scenario's ``view.cache_ttl``
    cache_ttl: float

    def at(self, t: float, fn: Callable[[Any], None], arg: Any) -> None: ...

    def next_sweep(self, t: float) -> float:
        """The scenario's reconcile schedule: the first sweep at or after ``t`` (inf when off)."""

    def defer(self, msg: Any, retry_at: float) -> None: ...

    def waiting(self) -> tuple[Any, ...]: ...

    def lose_waiting(self, lost: Callable[[Any], bool], at: float) -> None: ...

    def on_leave_queue(self, hook: Callable[[Any, float], None]) -> None: ...

    def blame_backlog(self, cause: str) -> None:
        """The messages queued now wait behind a backlog this fault left (docs/explanation/semantics.md, rule 3a)."""

    def slows_pool(self, cause: str) -> None:
        """This fault slowed a worker: the queue behind it is blamed on it (docs/explanation/semantics.md, rule 3a)."""

    def claim_link_draw(self, link: str) -> bool:
        """True for the first claimant of the repayment's pre-drawn uniform named ``link`` (a
        link, or another decision such as ``"credit rule"``); every later claimant draws its own
        from :attr:`rng`."""

    def observe_holder(self, written_at: float, repaired_at: float, reads: Sequence[Read], cause: str) -> None:
        """An account with no repayment of its own, whose view this fault made unusable from
        ``written_at`` until ``repaired_at``, and its holder's looks; stale looks are blamed on
        ``cause`` (docs/reference/metrics.md)."""


class ModelInjector:
    """One scenario fault in the model: its windows and what it does to a passing message.

    :meth:`hooks` declares where and when it acts; the engines call the named method of
    each hook for a message passing there while the window is open, and no other (the
    defaults do nothing). A hook method touches the message for the time or the damage it
    adds, and marks it dropped, corrupted (``bad``), lost or kept as the fault decides.
    Instants of its own the injector schedules in :meth:`placed`.
    """

    def __init__(self, fault: FaultBase, label: str, model: ModelAPI):
        self.fault: Any = fault
        self.label = label
        self.model = model
        self.windows = fault.windows(model.horizon)
        self._starts = [s for s, _ in self.windows]

    def hooks(self) -> list[tuple[Hook, float, float]]:
        """``(hook, start, end)`` for every window in which this injector acts at ``hook``
        (one of :data:`HOOKS`)."""
        raise NotImplementedError

    def gate(self, component: str, msg: Any, t: float) -> float | None:
        """``msg`` reaches ``component`` at ``t`` inside a window: the instant it goes
        through, or None when it was deferred (only at ``sync``: re-submitted with
        :meth:`ModelAPI.defer`, its worker free). A later instant is judged again by every
        gate in force then; the ledger's gate delays the commit, hence the ack."""
        return t

    def sync_start(self, msg: Any, t: float) -> float:
        """A worker starts ``msg`` at ``t`` inside a window, no gate holding it: extra
        service time."""
        return 0.0

    def link(self, link: str, msg: Any, t: float) -> None:
        """``msg`` crosses ``link`` at ``t`` inside a window: it may be dropped there
        (``dropped``) or carry the wrong state on (``bad`` flipped)."""

    def write(self, msg: Any, t: float) -> None:
        """The view write of ``msg`` at ``t`` inside a window: it may show the wrong state
        (``bad``) or be kept unusable until a sweep (``kept_until``)."""

    def settle(self, msg: Any, t: float) -> None:
        """``msg``'s view write is due at ``t`` (inside a window), after every :meth:`write`:
        a fault that took it in flight before ``t`` marks it ``lost`` (it is never written)."""

    def placed(self) -> None:
        """Schedule any instants of its own (called once before the run)."""

    @classmethod
    def fast_engine_refuses(cls, faults: Sequence[Any]) -> str | None:
        """Why the fast engine cannot compute ``faults`` (a scenario's faults of this type)
        exactly; None when it can. The fast engine computes a type of its own accord only if
        it acts at the hooks after sync (``link("sync->credit")`` to :meth:`settle`),
        decides with the repayment's pre-drawn uniforms and schedules nothing in
        :meth:`placed` (observing a population of its own there, as ``phantom_record`` does,
        schedules nothing); such a type overrides this. By default: it cannot."""
        return f"fault type {faults[0].type!r}" if faults else None

    def window_at(self, t: float) -> tuple[float, float]:
        """The window holding ``t`` (the schedule only calls an injector inside one)."""
        return self.windows[bisect_right(self._starts, t) - 1]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.label})"


# ---------------------------------------------------------------------------------- the service

class LiveTrace(Protocol):
    acked_at: float
    #: a rule lag keeps the account until the first sweep at or after this (None: none does)
    kept_until: float | None
    #: the fault that removed the view write's version check (None: versioned)
    unguarded: str | None

    def touch(self, cause: str, at: float, added: float) -> None: ...


class LiveMessage(Protocol):
    """An outbox message as a live rule sees it (scenario seconds); the words are the model's
    (:class:`ModelMessage`)."""

    account: str
    held: bool
    bad: bool
    lost: bool
    enqueued: float

    @property
    def trace(self) -> LiveTrace: ...

    def touch(self, cause: str, at: float, added: float) -> None: ...

    def touch_until_repair(self, cause: str, at: float) -> None: ...


class LiveFault(Protocol):
    """A fault placed on the service's timeline (windows shifted, possibly ended live)."""

    fault: Any
    #: its name, or ``type#index`` (``type#id`` for one posted to the chaos API)
    label: str

    @property
    def type(self) -> str: ...

    @property
    def windows(self) -> list[tuple[float, float]]: ...

    def window_at(self, t: float) -> tuple[float, float] | None: ...

    def iter_windows(self, since: float = -math.inf, until: float = math.inf) -> Iterable[tuple[float, float]]: ...


class LiveAPI(Protocol):
    """All a live rule may do to the service's pipeline."""

    #: per-repayment decisions (interface bugs, cutover loss and mapping)
    rng: random.Random
    #: fault-only draws (a sync delay's extra time)
    faults_rng: random.Random
    #: True when the sync pool has a fixed number of workers (a backlog can form)
    pooled: bool

    def now(self) -> float: ...

    def sleep_until(self, t: float) -> Awaitable[None]: ...

    def spawn(self, coro: Any) -> None: ...

    def at(self, t: float, fn: Callable[[float], None]) -> None: ...

    def inflight(self) -> list[Any]: ...

    def blame_backlog(self, cause: str) -> None: ...

    def slows_pool(self, cause: str) -> None: ...

    def write_phantom(self, account: str, t: float) -> None:
        """An external interface writes a debt on ``account`` at ``t``, with no repayment: its
        truth is usable, its view shows unusable until a reconcile sweep at or after ``t``."""


class LiveRule:
    """How a fault type acts in the live service. Stateless: one instance per type, every
    method is told which placed fault it answers for. The defaults do nothing."""

    #: Why target mode cannot run this fault type (None: it can); a target run refuses a
    #: scenario with such a fault, with this reason.
    target_refuses: ClassVar[str | None] = None

    def gate(self, active: LiveFault, component: str, t: float) -> Gate | None:
        """The window in which ``component`` is held at ``t`` by this fault, or None."""
        return None

    def waited(self, api: LiveAPI, active: LiveFault, component: str, msg: LiveMessage,
               since: float, went: float) -> None:
        """``msg`` reached ``component`` at ``since`` and went through at ``went``: touch it
        for the time this fault held it."""

    def sync_start(self, api: LiveAPI, active: LiveFault, msg: LiveMessage, t: float) -> float:
        """A worker starts ``msg`` at ``t`` inside a window: extra service time."""
        return 0.0

    def link(self, api: LiveAPI, active: LiveFault, msg: LiveMessage, link: str, t: float) -> bool:
        """``msg`` crosses ``link`` at ``t`` inside a window: True if it is dropped there."""
        return False

    def write(self, api: LiveAPI, active: LiveFault, msg: LiveMessage, t: float) -> bool:
        """The view write of ``msg`` at ``t`` inside a window: True if it is mis-mapped."""
        return False

    def placed(self, api: LiveAPI, active: LiveFault) -> None:
        """The fault was placed on a running pipeline: schedule instants of its own."""

    def keeps(self, active: LiveFault, account: str, t: float) -> bool:
        """A reconcile sweep at ``t`` leaves ``account``'s view as it is: this fault holds it."""
        return False

    def holders(self, fault: Any, label: str, until: float) -> Iterable[tuple[str, float, tuple[float, ...]]]:
        """``(account, written at, looks)`` of every holder whose account the scenario fault
        ``fault`` (labelled ``label``) writes on before ``until``, in write order: the load side
        looks at each account at ``written at + look``. None by default: the service and the
        load side then share nothing but the repayments."""
        return ()
