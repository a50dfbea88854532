"""The users of a target run: open-loop arrivals, repay (retrying after Retry-After with the
same key), then status reads per the scenario's check policy — all timed at the client.

A plain thread pool with ``requests``: one timer heap in the calling thread hands each
request to a worker at its instant, so a slow target never slows the arrivals down and
at most ``concurrency`` requests are in flight. Times: the ack is when the successful
repay answer arrived; a read's instant is the midpoint of sending it and its answer
(the status the target showed was taken somewhere in between). Every request is
counted against the target file's ``max_requests``.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from repaychaos import semantics
from repaychaos.target.spec import Target
from repaychaos.target.render import MISSING, render, resolve_pointer

if TYPE_CHECKING:
    from repaychaos.scenarios import Scenario

__all__ = ["Clock", "Driver", "User", "arrival_times", "MAX_FAILURES"]

#: Failures (timeouts, 5xx not in ``retry``, connection errors) before a user gives up on repaying.
MAX_FAILURES = 5
#: Wall seconds waited before retrying a ``retry`` status that came without Retry-After.
DEFAULT_RETRY_AFTER = 1.0


@dataclass(frozen=True)
class Clock:
    """Scenario time ``s`` happens at wall ``t0 + s / k``."""

    t0: float
    k: float

    def wall(self, s: float) -> float:
        return self.t0 + s / self.k

    def scenario(self, wall: float) -> float:
        return (wall - self.t0) * self.k

    def now(self) -> float:
        return self.scenario(time.time())


def arrival_times(scenario: Scenario, rng: random.Random) -> Iterator[float]:
    """Poisson arrivals in ``[0, duration)`` at the scenario's rate or piecewise profile (the shared rule)."""
    return semantics.arrival_times(scenario.workload.arrivals.steps, scenario.duration, lambda: rng.expovariate(1.0))


@dataclass
class User:
    """One repayment and what its user saw (scenario seconds)."""

    seq: int
    key: str
    account: str
    arrived: float
    first_after: float
    ack: float | None = None
    rep_id: str | None = None
    reads: list[tuple[float, str]] = field(default_factory=list)
    tries: list[list[Any]] = field(default_factory=list)  # [scenario s, status or error, Retry-After wall s]
    failures: int = 0
    read_errors: int = 0
    checks: int = 0
    gave_up: str | None = None
    done: bool = False


def _retry_after(value: str | None) -> float | None:
    """Retry-After in wall seconds (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class Driver:
    """Schedules and runs every user's requests; call :meth:`run` from one thread."""

    def __init__(self, scenario: Scenario, target: Target, base_url: str, clock: Clock, run_id: str,
                 deadline: float, on_tick: Callable[[], None] | None = None):
        import requests

        self.scenario, self.target, self.base_url, self.clock = scenario, target, base_url, clock
        self.run_id, self.deadline, self.on_tick = run_id, deadline, on_tick
        self.users: list[User] = []
        self.requests = 0
        self.cap_hit = False
        self.lateness: list[float] = []  # wall seconds each request started after its instant
        self.stopping = threading.Event()
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._cv = threading.Condition()
        self._busy = 0
        self._local = threading.local()
        self._requests = requests
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ scheduling

    def at(self, wall: float, fn: Callable[[], None]) -> None:
        """Run ``fn`` in a worker at wall instant ``wall``."""
        with self._cv:
            heapq.heappush(self._heap, (wall, next(self._order), fn))
            self._cv.notify()

    def _session(self) -> Any:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = self._requests.Session()
        return session

    def take_request(self) -> bool:
        """Count one request against max_requests; False once the cap is reached."""
        with self._lock:
            if self.requests >= self.target.max_requests:
                self.cap_hit = True
                return False
            self.requests += 1
            return True

    def run(self, timers: Sequence[tuple[float, Callable[[], None]]] = ()) -> bool:
        """Arrivals, users and ``timers`` (wall instant, callable run in this thread) until every
        user is done, :attr:`stopping` is set or the deadline passes. True if every user finished."""
        check = self.scenario.workload.check
        # a stream of its own: a service seeded from the same scenario must not share our draws
        rng = random.Random(f"{self.scenario.seed}:target-users")
        first_after = check.first_after.sampler(rng)
        for seq, t in enumerate(arrival_times(self.scenario, rng)):
            user = User(seq, f"{self.run_id}-{seq}", f"a-{self.run_id}-{seq}", t, first_after())
            self.users.append(user)
            self.at(self.clock.wall(t), functools.partial(self._repay, user))
        pending_timers = sorted(timers, key=lambda x: x[0])
        pool = ThreadPoolExecutor(self.target.concurrency, thread_name_prefix="repaychaos-target")
        try:
            while not self.stopping.is_set():
                now = time.time()
                while pending_timers and pending_timers[0][0] <= now:
                    pending_timers.pop(0)[1]()
                    if self.stopping.is_set():
                        break
                if self.on_tick is not None:
                    self.on_tick()
                if now >= self.deadline:
                    break
                with self._cv:
                    while self._heap and self._heap[0][0] <= now and self._busy < self.target.concurrency:
                        due, _, fn = heapq.heappop(self._heap)
                        self._busy += 1
                        pool.submit(self._work, fn, due)
                    if not self._heap and self._busy == 0:
                        break
                    nxt = self._heap[0][0] if self._heap and self._busy < self.target.concurrency else now + 0.1
                    if pending_timers:
                        nxt = min(nxt, pending_timers[0][0])
                    self._cv.wait(max(0.0, min(nxt - time.time(), 0.1)))
        finally:
            self.stopping.set()
            pool.shutdown(wait=True, cancel_futures=True)
        return all(u.done for u in self.users)

    def _work(self, fn: Callable[[], None], due: float) -> None:
        self.lateness.append(time.time() - due)
        try:
            if not self.stopping.is_set():
                fn()
        finally:
            with self._cv:
                self._busy -= 1
                self._cv.notify()

    # ------------------------------------------------------------------ one user

    def _values(self, user: User) -> dict[str, Any]:
        return {"key": user.key, "account": user.account, "amount": self.target.repay.amount, "id": user.rep_id or ""}

    def _send(self, spec: Any, user: User) -> tuple[Any, float, float]:
        values = self._values(user)
        url = self.base_url + render(spec.path, values)
        sent = time.time()
        resp = self._session().request(spec.method, url, headers=render(dict(spec.headers), values),
                                       json=render(spec.json_body, values), timeout=spec.timeout)
        return resp, sent, time.time()

    def _repay(self, user: User) -> None:
        spec = self.target.repay
        if not self.take_request():
            user.gave_up = "request cap"
            return
        try:
            resp, _sent, got = self._send(spec, user)
        except self._requests.RequestException as exc:
            user.tries.append([round(self.clock.now(), 4), type(exc).__name__, None])
            self._failed(user)
            return
        status = resp.status_code
        if status in spec.ok:
            user.tries.append([round(self.clock.scenario(got), 4), status, None])
            user.ack = self.clock.scenario(got)
            if spec.id:
                try:
                    found = resolve_pointer(resp.json(), spec.id)
                except ValueError:
                    found = MISSING
                user.rep_id = None if found is MISSING else str(found)
            self._next_read(user, user.ack + user.first_after)
            return
        if status in spec.retry:
            wait = _retry_after(resp.headers.get("Retry-After"))
            user.tries.append([round(self.clock.scenario(got), 4), status, wait])
            if len(user.tries) >= spec.max_tries:
                user.gave_up, user.done = f"{len(user.tries)} tries", True
                return
            self.at(got + (DEFAULT_RETRY_AFTER if wait is None else wait), lambda: self._repay(user))
            return
        user.tries.append([round(self.clock.scenario(got), 4), status, None])
        if status >= 500:
            self._failed(user)
        else:
            user.gave_up, user.done = f"HTTP {status}", True

    def _failed(self, user: User) -> None:
        user.failures += 1
        if user.failures >= MAX_FAILURES or len(user.tries) >= self.target.repay.max_tries:
            user.gave_up, user.done = f"{user.failures} failures", True
            return
        self.at(time.time() + min(2.0, 0.05 * 2 ** user.failures), lambda: self._repay(user))

    def _next_read(self, user: User, planned: float) -> None:
        if user.checks >= self.scenario.workload.check.max_checks:
            user.done = True
            return
        self.at(self.clock.wall(planned), lambda: self._read(user, planned))

    def _read(self, user: User, planned: float) -> None:
        spec = self.target.status
        if not self.take_request():
            user.gave_up = "request cap"
            return
        user.checks += 1
        every = self.scenario.workload.check.every
        try:
            resp, sent, got = self._send(spec, user)
            data = resp.json() if resp.status_code == 200 else None
        except (self._requests.RequestException, ValueError):
            data = None
        if data is None:
            user.read_errors += 1
            self._next_read(user, planned + every)
            return
        t = self.clock.scenario((sent + got) / 2)
        if resolve_pointer(data, spec.usable.pointer) == spec.usable.equals:
            user.reads.append((t, "u"))
            user.done = True
            return
        held = spec.hold is not None and resolve_pointer(data, spec.hold.pointer) == spec.hold.equals
        user.reads.append((t, "h" if held else "s"))
        self._next_read(user, planned + every)
