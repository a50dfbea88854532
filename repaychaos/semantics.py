"""What happens to a repayment, as executable rules shared by the model and the service.

docs/explanation/semantics.md states the pipeline in prose; this module is that prose as functions.
The SimPy model (:mod:`repaychaos.sim`) and the reference service
(:mod:`repaychaos.service`) both call these, so a rule cannot drift between the
engines: they differ only in *how they wait* (simulated time vs. the compressed clock),
never in what a fault does, when a retry goes through, what the view shows at ``t``,
what the app's cache serves, or how long a fault's damage lasts.

Two composition rules are worth stating here, since each engine once had its own:

- **Each fault acts on its own, with its own draw.** Every interface bug in force on a
  link draws its own uniform (:func:`judge_bug`), so two overlapping 10 % drops lose
  1 − 0.9² = 19 % of the messages.
- **A corrupting link flips the state the message carries** (:func:`flip`), so a
  message corrupted twice is right again: two 30 % corrupting links leave
  2 · 0.3 · 0.7 = 42 % wrong.

Everything is in scenario seconds.
"""

from __future__ import annotations

import math
from typing import Callable, Iterator, NamedTuple, Sequence

__all__ = [
    "arrival_times",
    "REJECT_RETRY",
    "DROP",
    "CORRUPT",
    "release_time",
    "retry_at",
    "next_retry",
    "judge_bug",
    "flip",
    "written_state",
    "view_history",
    "kept_release",
    "account_at_rest",
    "view_at",
    "repaired_at",
    "until_repair",
    "cache_serves",
    "pay_again_at",
    "pays_again",
    "phantom_writes",
    "holder_reads",
    "account_of",
    "account_shares",
    "AccountRepayment",
    "AccountView",
    "account_views",
]


def arrival_times(steps: Sequence[tuple[float, float]], duration: float, exp1: Callable[[], float], *,
                  start: float = 0.0, scale: float = 1.0) -> Iterator[float]:
    """Poisson arrival instants in ``[start, duration)`` for a piecewise-constant rate.

    ``steps`` are ``(from, rate)`` pairs (the scenario's rate or profile); ``scale`` thins
    them (one of N Locust shards draws ``scale = 1/N``). One unit-exponential draw per
    arrival, mapped through the integrated rate, so a change of rate moves arrivals
    without changing how many random numbers are used. The model, the Locust users and
    target mode all draw their arrivals here.
    """
    t = start
    n = len(steps)
    i = 0
    while i + 1 < n and steps[i + 1][0] <= t:
        i += 1
    while True:
        e = exp1()
        while True:
            rate = steps[i][1] * scale
            end = steps[i + 1][0] if i + 1 < n else duration
            if end > duration:
                end = duration
            if rate > 0:
                cand = t + e / rate
                if cand < end:
                    t = cand
                    break
                e -= (end - t) * rate
            if end >= duration:
                return
            t = end
            i += 1
        yield t

#: Scenario seconds between retries of a rejected request or message (SEMANTICS 1, 3).
REJECT_RETRY = 5.0

#: Outcomes of an interface bug judging one message (:func:`judge_bug`); None = untouched.
DROP = "drop"
CORRUPT = "corrupt"

_INF = math.inf


# ---------------------------------------------------------------------- maintenance windows

def release_time(arrive: float, end: float, mode: str) -> float:
    """When work that reached a component at ``arrive`` inside a window ending at ``end``
    goes through: at the end (``pause``), or at its first retry — every REJECT_RETRY from
    ``arrive`` — at or after the end (``reject``). An endless window never releases."""
    if end == _INF:
        return _INF
    if mode == "reject":
        k = math.ceil((end - arrive) / REJECT_RETRY - 1e-12)
        return retry_at(arrive, max(k, 0))
    return end


def retry_at(first: float, k: int) -> float:
    """The ``k``-th retry of work first tried at ``first``: the reject-retry grid, every
    REJECT_RETRY from the first attempt (``k = 0`` is that attempt)."""
    return first + k * REJECT_RETRY


def next_retry(first: float, t: float) -> float:
    """The first instant of ``first``'s retry grid strictly after ``t``."""
    return retry_at(first, math.floor((t - first) / REJECT_RETRY) + 1)


# ---------------------------------------------------------------------- links

def judge_bug(u: float, drop_ratio: float, corrupt_ratio: float) -> str | None:
    """One interface bug judging one message with its own uniform draw ``u`` in [0, 1).

    ``u < drop_ratio``: the message is lost (:data:`DROP`); the next ``corrupt_ratio``
    of the unit interval: it is corrupted (:data:`CORRUPT`, apply :func:`flip`); else
    it passes untouched. Several bugs in force on one link each call this with their own
    ``u``, in scenario order, stopping at the first drop.
    """
    if u < drop_ratio:
        return DROP
    if u < drop_ratio + corrupt_ratio:
        return CORRUPT
    return None


def flip(corrupt: bool) -> bool:
    """A corrupting link flips the state the message carries: corrupt twice is right again."""
    return not corrupt


def written_state(truth: bool, corrupt: bool, unmapped: bool) -> bool:
    """The state a view write shows: the truth, flipped by an odd number of corruptions;
    a write mis-mapped by a cutover shows the opposite of the truth whatever it carried."""
    if unmapped:
        return not truth
    return (not truth) if corrupt else truth


# ---------------------------------------------------------------------- the view

def view_history(ack: float, held: bool, write: float | None, wrong: bool,
                 next_sweep: Callable[[float], float],
                 kept_until: float | None = None) -> tuple[float, list[tuple[float, bool]] | None, float]:
    """``(first usable instant, view changes or None, instant the view is finally right)``.

    The view is unusable before the ack. The repayment's own write at ``write`` (None:
    never written) shows the truth (usable unless held), the opposite when ``wrong``
    (:func:`written_state`); the reconcile sweep at ``z`` >= ack sets view := truth, and
    at equal instants the write comes first. ``changes`` is None when the view turns
    usable at most once and never back (the common, cheap case).

    ``kept_until`` (a rule lag): a credit rule holds the account from its write, which
    shows unusable whatever it carried; the sweeps leave it so until the first sweep at or
    after ``kept_until`` (its rollback), which sets view := truth (:func:`kept_release`).
    """
    s1 = next_sweep(ack)
    if kept_until is not None and write is not None and not held:
        release = kept_release(kept_until, next_sweep)
        if s1 < write:  # usable by a sweep before the rule met it, held by the rule's write
            changes = [(s1, True), (write, False)]
            if release != _INF:
                changes.append((release, True))
            return s1, changes, release
        return release, None, release
    if not held:
        if write is None:
            return s1, None, s1
        if not wrong:
            first = write if write < s1 else s1
            return first, None, first
        if s1 < write:  # usable by the sweep, flipped back by the wrong write, repaired later
            s2 = next_sweep(write)
            changes = [(s1, True), (write, False)]
            if s2 != _INF:
                changes.append((s2, True))
            return s1, changes, s2
        return s1, None, s1
    # held: the truth stays unusable; only a wrong write shows usable, until the next sweep
    if write is None or not wrong:
        return _INF, None, ack
    s = next_sweep(write)
    if s == write:
        return _INF, None, write
    changes = [(write, True)]
    if s != _INF:
        changes.append((s, False))
    return write, changes, s


def kept_release(kept_until: float, next_sweep: Callable[[float], float]) -> float:
    """When an account a credit rule held until ``kept_until`` (its rollback; inf: never)
    is released: the first reconcile sweep at or after it (inf when reconcile is off)."""
    return _INF if kept_until == _INF else next_sweep(kept_until)


def view_at(changes: Sequence[tuple[float, bool]], t: float) -> bool:
    """What the (uncached) view shows at ``t``, from its ``(instant, usable)`` changes."""
    state = False
    for at, usable in changes:
        if at > t:
            break
        state = usable
    return state


def repaired_at(truth: bool, changes: Sequence[tuple[float, bool]]) -> float:
    """The instant the view is finally right: its last change if that shows ``truth``
    (``-inf`` if it never changed and was right all along), ``inf`` if it ends wrong."""
    final = changes[-1][1] if changes else False
    if final != truth:
        return _INF
    return changes[-1][0] if changes else -_INF


def until_repair(at: float, repaired: float) -> float | None:
    """The delay a fault at ``at`` added when its damage lasts until the view is right at
    ``repaired`` (:func:`repaired_at`); None if the view was already right for good."""
    added = repaired - at
    return added if added > 0 else None


# ---------------------------------------------------------------------- the app's cache

def cache_serves(t: float, filled_at: float, cache_ttl: float) -> bool:
    """Does a read at ``t`` get the status cached at ``filled_at`` (else: read the view
    and refill)? The app fills the cache at the ack and on every miss (SEMANTICS 9)."""
    return t - filled_at < cache_ttl


# ---------------------------------------------------------------------- users who pay again

def pay_again_at(first_read: float, every: float, after_stale_reads: int) -> float:
    """The instant of the read after which a user may pay again: their
    ``after_stale_reads``-th read, ``every`` apart from the first at ``first_read``."""
    return first_read + (after_stale_reads - 1) * every


def pays_again(stale: Sequence[bool], after_stale_reads: int, u: float, probability: float) -> bool:
    """Does a user pay a second time? ``stale`` says, read by read in order, whether the
    read showed "unusable" with no hold (a held account's app says why it is unusable, so
    its user has no reason to think the payment failed). Only a user whose first
    ``after_stale_reads`` reads were all stale pays again, with ``probability``; ``u`` is
    the user's own uniform draw in [0, 1)."""
    if len(stale) < after_stale_reads or not all(stale[:after_stale_reads]):
        return False
    return u < probability


# ---------------------------------------------------------------------- phantom records

def phantom_writes(start: float, end: float, rate: float, until: float) -> Iterator[float]:
    """The instants an external interface writes a phantom record in its window
    ``[start, end)``, before ``until``: one in the middle of every ``1 / rate`` slot,
    ``start + (k + 1/2) / rate``. A steady rate: every engine knows them from the scenario
    alone, and a write falls on a round-numbered sweep only if the slots do."""
    if not rate > 0:
        return
    stop = min(end, until)
    k = 0
    while True:
        t = start + (k + 0.5) / rate
        if t >= stop:
            return
        yield t
        k += 1


def holder_reads(written_at: float, repaired_at: float, looks: Sequence[float],
                 cache_ttl: float) -> list[tuple[float, bool, float]]:
    """``(t, shown usable, as of)`` for each look of the holder of an account a phantom
    record was written on: at ``written_at + d`` for each delay ``d`` of ``looks``
    (ascending), stopping at the first look that shows usable. The view shows unusable
    from the write until ``repaired_at`` (the first reconcile sweep at or after it), usable
    from then on. The app's cache holds nothing before the first look (the holder made no
    repayment to fill it) and is filled on every miss (:func:`cache_serves`)."""
    out: list[tuple[float, bool, float]] = []
    filled_at: float | None = None
    cached = False
    for delay in looks:
        t = written_at + delay
        if filled_at is not None and cache_serves(t, filled_at, cache_ttl):
            shown, as_of = cached, filled_at
        else:
            shown = cached = t >= repaired_at
            filled_at = as_of = t
        out.append((t, shown, as_of))
        if shown:
            break
    return out


# ---------------------------------------------------------------------- accounts

def account_of(u: float, accounts: int, skew: float | None = None) -> int:
    """The account (0 .. ``accounts`` - 1) a repayment whose account uniform is ``u`` in
    [0, 1) lands on: uniform over the accounts; with ``skew`` s > 0, account k with the
    probability a power law of density proportional to x^-s on [1, N + 1) gives [k + 1, k + 2)
    (a continuous Zipf law: account 0 the busiest; s = 1 gives account k the share
    ln((k + 2)/(k + 1)) / ln(N + 1)), by inversion of the same uniform."""
    if not skew:
        return min(int(u * accounts), accounts - 1)
    top = accounts + 1.0
    if skew == 1.0:
        x = top ** u
    else:
        a = 1.0 - skew
        x = (1.0 + u * (top ** a - 1.0)) ** (1.0 / a)
    return min(max(int(x) - 1, 0), accounts - 1)


def account_shares(accounts: int, skew: float | None = None) -> list[float]:
    """Each account's probability under :func:`account_of` (for checks; O(accounts))."""
    if not skew:
        return [1.0 / accounts] * accounts
    top = accounts + 1.0
    if skew == 1.0:
        cdf = [math.log(x) / math.log(top) for x in range(1, accounts + 2)]
    else:
        a = 1.0 - skew
        cdf = [(x ** a - 1.0) / (top ** a - 1.0) for x in range(1, accounts + 2)]
    return [hi - lo for lo, hi in zip(cdf, cdf[1:])]


class AccountRepayment(NamedTuple):
    """One repayment on an account, as its account's view needs it (SEMANTICS 14)."""

    ack: float
    held: bool
    #: its view write (None: never written: dropped, lost, never reached)
    write: float | None
    #: the write shows the opposite of the truth (corrupted, mis-mapped)
    wrong: bool
    #: a rule lag caught the write; the account is kept until the first sweep at or after this
    kept_until: float | None
    #: the cause that removed the version guard at the write (None: the write is versioned)
    unguarded: str | None


class AccountView(NamedTuple):
    """What an account's view showed one of its repayments (``changes``: ``(instant,
    usable)`` in time order; an instant may repeat, the last entry at it holds), the
    regressions that moved it back (``(cause, instant)``), and how many repayments the
    repayment's own write moved back (a write over a newer one)."""

    changes: list[tuple[float, bool]]
    regressions: list[tuple[str, float]]
    regressed: int


_ACK, _WRITE, _SWEEP = 0, 1, 2


def account_views(reps: Sequence[AccountRepayment], next_sweep: Callable[[float], float],
                  since: float = -_INF, offset: int = 0) -> list[AccountView]:
    """The view of one account's repayments (SEMANTICS 14), ``reps`` in ledger order (by
    ack, then arrival): the ``k``-th has sequence ``k`` (1-based).

    The view keeps the sequence of the last write it applied (``version``) and the sequence
    it shows repaid (``shown``). A write of sequence ``k`` is applied when ``k >= version``
    — or always, when a fault removed the guard — and sets ``version = k`` and
    ``shown = k`` (``k - 1`` when the write shows unusable: wrong, or caught by a rule lag,
    which also keeps the account from the sweeps until its release). A sweep at ``z`` sets
    both to the ledger's sequence at ``z`` (the acks at or before it). A held repayment's
    write applies nothing (its hold is its own, rule 2). Repayment ``k`` is shown usable
    while ``shown >= k``. At one instant: acks, then writes, then sweeps.

    Only the first sweep after each ack, write and release can change the view (the
    others find it equal to the ledger), so those are the sweeps computed.

    ``since``, a sweep instant at which no rule lag keeps the account: the view from then
    on, which that sweep sets to the ledger whatever came before (so it is the same view
    after ``since``, at less cost); a repayment already shown then starts with a change to
    usable at ``since``. ``offset``: ``reps`` start at sequence ``offset + 1``, the first
    ``offset`` repayments being acked and written (or lost) at or before ``since``.
    """
    events: list[tuple[float, int, int]] = []
    releases: list[float] = [_INF] * len(reps)
    out = [AccountView([], [], 0) for _ in reps]
    ledger = offset
    version = shown = 0
    for i, rep in enumerate(reps):
        if rep.ack <= since:
            ledger += 1
        else:
            events.append((rep.ack, _ACK, i))
            s = next_sweep(rep.ack)
            if s != _INF:
                events.append((s, _SWEEP, i))
        if rep.write is not None and rep.write != _INF and not rep.held and rep.write > since:
            events.append((rep.write, _WRITE, i))
            s = next_sweep(rep.write)
            if s != _INF:
                events.append((s, _SWEEP, i))
            if rep.kept_until is not None:
                release = kept_release(rep.kept_until, next_sweep)
                releases[i] = release
                if release != _INF:
                    events.append((release, _SWEEP, i))
    if ledger:
        version = shown = ledger
        for k in range(offset + 1, ledger + 1):
            if not reps[k - 1 - offset].held:
                out[k - 1 - offset].changes.append((since, True))
    events.sort()
    kept = -_INF  # the account is kept from the sweeps before this instant (a rule lag's release)

    def show(new: int, t: float, cause: str | None) -> None:
        nonlocal shown
        old = shown
        shown = new
        if new > old:
            for k in range(max(old, offset) + 1, new + 1):
                if not reps[k - 1 - offset].held:
                    out[k - 1 - offset].changes.append((t, True))
        elif new < old:
            for k in range(max(new, offset) + 1, old + 1):
                if not reps[k - 1 - offset].held:
                    out[k - 1 - offset].changes.append((t, False))
                    if cause is not None:
                        out[k - 1 - offset].regressions.append((cause, t))

    for t, kind, i in events:
        if kind == _ACK:
            ledger += 1
        elif kind == _SWEEP:
            if t >= kept:
                version = ledger
                show(ledger, t, None)
        else:
            rep = reps[i]
            k = offset + i + 1
            if rep.unguarded is None and k < version:
                continue  # versioned: an older write never lands over a newer one
            older = k < version
            version = k
            if rep.kept_until is not None:
                kept = max(kept, releases[i])
            new = k - 1 if (rep.wrong or rep.kept_until is not None) else k
            if older and new < shown:
                out[i] = out[i]._replace(regressed=out[i].regressed + 1)
                show(new, t, rep.unguarded)
            else:
                show(new, t, None)
    return out


def account_at_rest(reps: Sequence[AccountRepayment], views: Sequence[AccountView], at: float,
                    next_sweep: Callable[[float], float]) -> float | None:
    """None when ``reps`` — every repayment of one account acked at or before ``at``, in
    ledger order, with their :func:`account_views` — are **at rest** at ``at`` (SEMANTICS
    14): their view writes are at or before ``at`` (an older write landing later may put
    back a repayment acked after ``at``, 14a), no rule lag that caught one of them keeps the
    account from the sweeps after ``at``, and their view alone shows each of them that is
    not held usable for good from an instant at or before ``at``. Then nothing acked later
    changes what they show, and the later repayments' view is that of an account whose
    ledger starts with them. Otherwise: the instant before which they cannot be at rest
    (inf: not before a later repayment of the account is written)."""
    after = -_INF
    for rep, view in zip(reps, views):
        if rep.held:
            continue
        if rep.write is not None and rep.write != _INF:
            after = max(after, rep.write)
            if rep.kept_until is not None:
                # a rule lag keeps the account from the sweeps, the later repayments' too, until then
                after = max(after, kept_release(rep.kept_until, next_sweep))
        changes = view.changes
        if not changes or not changes[-1][1]:
            return _INF  # not shown usable for good by these repayments alone
        after = max(after, changes[-1][0])
    return None if after <= at else after
