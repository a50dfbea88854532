"""The model's random streams drawn in bulk with numpy, bit for bit what the samplers draw.

Each stream of :mod:`repaychaos.core.streams` is a :class:`random.Random` (Mersenne
Twister). numpy's ``MT19937`` takes the same state, and ``random()`` is the same 53-bit
construction from two 32-bit words, so :class:`BulkStream` yields exactly the doubles
the stream would, in blocks. The samplers of :mod:`repaychaos.scenarios.distributions`
map those doubles to values; :class:`BulkSampler` applies the same arithmetic to whole
arrays. numpy's own ``log``/``exp``/``power`` may differ from the C library's in the last
bit, so the transcendental steps go through :mod:`math` element by element (where only a
comparison depends on them, numpy decides and the close calls are redone with
:mod:`math`): the values are the ones the per-draw samplers give, not merely close.

A stream that serves several samplers per repayment (channel latency, sync and credit
service all come from ``service``) is walked in repayment order (:func:`draw_rows`); a
lognormal draw consumes a variable number of doubles (the Kinderman–Monahan rejection
loop of :func:`random.normalvariate`), so the walk follows the accepted pairs.
"""

from __future__ import annotations

import math
import random
from typing import Any, Sequence

import numpy as np

__all__ = ["BulkStream", "BulkSampler", "draw_rows", "exact_log", "exact_exp"]

_NV_MAGICCONST = 4 * math.exp(-0.5) / math.sqrt(2.0)  # random.NV_MAGICCONST
_LOG = math.log
_EXP = math.exp


def exact_log(x: np.ndarray) -> np.ndarray:
    """``math.log`` of each element (the C library's, as the per-draw samplers use)."""
    return np.fromiter(map(_LOG, x.tolist()), dtype=np.float64, count=len(x))


def exact_exp(x: np.ndarray) -> np.ndarray:
    """``math.exp`` of each element."""
    return np.fromiter(map(_EXP, x.tolist()), dtype=np.float64, count=len(x))


class BulkStream:
    """The doubles ``rng.random()`` would return, from ``rng``'s current state on (``rng``
    itself is not advanced)."""

    __slots__ = ("_bg", "_gen", "_buf", "_pos")

    def __init__(self, rng: random.Random):
        state = rng.getstate()[1]
        self._bg = np.random.MT19937()
        self._bg.state = {"bit_generator": "MT19937",
                          "state": {"key": np.array(state[:624], dtype=np.uint32), "pos": int(state[624])}}
        self._gen = np.random.Generator(self._bg)
        self._buf = np.empty(0)
        self._pos = 0

    def _fill(self, n: int) -> None:
        # numpy's double from MT19937 is (a >> 5) * 2**26 + (b >> 6), over 2**53: Python's construction
        fresh = self._gen.random(n)
        self._buf = np.concatenate((self._buf[self._pos:], fresh))
        self._pos = 0

    def peek(self, n: int) -> np.ndarray:
        """The next ``n`` doubles, not consumed."""
        if len(self._buf) - self._pos < n:
            self._fill(max(n, 4096))
        return self._buf[self._pos:self._pos + n]

    def take(self, n: int) -> np.ndarray:
        """The next ``n`` doubles, consumed."""
        out = self.peek(n)
        self._pos += n
        return out

    def skip(self, n: int) -> None:
        """Consume ``n`` doubles (after :meth:`peek`)."""
        self._pos += n


class BulkSampler:
    """One distribution's sampler, on arrays of the stream's doubles.

    ``width`` is how many doubles a draw consumes (0 or 1), or ``None`` for a lognormal,
    which consumes accepted pairs (:meth:`accepted` marks where a pair is accepted).
    """

    def __init__(self, dist: Any):
        kind = type(dist).__name__
        self.kind = kind
        self.width: int | None = 1
        if kind == "Constant" or (kind == "Lognormal" and dist.sigma == 0):
            self.width = 0
            self.value = float(dist.value if kind == "Constant" else dist.median)
        elif kind == "Exponential":
            self.rate = 1.0 / dist.mean_
        elif kind == "Uniform":
            self.low, self.span = dist.low, dist.high - dist.low
        elif kind == "Lognormal":
            self.width = None
            self.mu, self.sigma = dist.mu, dist.sigma
        elif kind == "Pareto":
            self.scale, self.power = dist.scale, -(1.0 / dist.shape)
        elif kind == "Empirical":
            self.samples = np.asarray(dist.samples, dtype=np.float64)
        else:  # pragma: no cover - the scenario format admits only the kinds above
            raise NotImplementedError(f"no bulk sampler for {kind}")

    def values(self, u: np.ndarray, n: int) -> np.ndarray:
        """``n`` draws; ``u`` holds the doubles each draw starts at (ignored for width 0)."""
        kind = self.kind
        if self.width == 0:
            return np.full(n, self.value)
        if kind == "Exponential":
            return -exact_log(1.0 - u) / self.rate
        if kind == "Uniform":
            return self.low + self.span * u
        if kind == "Pareto":
            scale, power = self.scale, self.power
            return np.fromiter((scale * x ** power for x in (1.0 - u).tolist()), dtype=np.float64, count=len(u))
        if kind == "Empirical":
            return self.samples[(u * len(self.samples)).astype(np.int64)]
        raise AssertionError(kind)  # lognormal: see lognormal_values

    @staticmethod
    def accepted(buf: np.ndarray) -> np.ndarray:
        """For every start index ``p``: does the pair ``(buf[p], buf[p+1])`` pass the
        rejection test of :func:`random.normalvariate`? (the last index: False)."""
        u1 = buf[:-1]
        u2 = 1.0 - buf[1:]
        z = _NV_MAGICCONST * (u1 - 0.5) / u2
        zz = z * z / 4.0
        with np.errstate(divide="ignore"):
            lg = -np.log(u2)
        ok = zz <= lg
        close = np.flatnonzero(np.abs(zz - lg) <= 1e-12 * np.maximum(np.abs(lg), 1e-300))
        for p in close.tolist():  # numpy's log may differ in the last bit: decide these with math.log
            ok[p] = zz[p] <= -_LOG(u2[p])
        return np.concatenate((ok, [False]))

    def lognormal_values(self, buf: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """The lognormal draws whose accepted pairs start at ``starts`` in ``buf``."""
        z = _NV_MAGICCONST * (buf[starts] - 0.5) / (1.0 - buf[starts + 1])
        return exact_exp(self.mu + z * self.sigma)


def _next_accepted(acc: np.ndarray) -> np.ndarray:
    """For every index p, the first index q >= p with q = p (mod 2) and ``acc[q]`` (else len)."""
    n = len(acc)
    out = np.full(n, n, dtype=np.int64)
    for parity in (0, 1):
        idx = np.arange(parity, n, 2)
        hits = idx[acc[parity::2]]
        where = np.searchsorted(hits, idx)
        found = where < len(hits)
        out[idx[found]] = hits[where[found]]
    return out


def draw_rows(stream: BulkStream, samplers: Sequence[BulkSampler], n: int) -> list[np.ndarray]:
    """``n`` repayments' draws from one stream, each repayment drawing ``samplers`` in order."""
    widths = [s.width for s in samplers]
    if all(w is not None for w in widths):
        per = sum(w for w in widths if w is not None)
        buf = stream.take(per * n)
        out, off = [], 0
        for s, w in zip(samplers, widths):
            out.append(s.values(buf[off::per] if w else buf[:0], n) if per else s.values(buf, n))
            off += w or 0
        return out
    if len(samplers) == 1:  # one lognormal: consecutive pairs, vectorised
        s = samplers[0]
        out_starts: list[np.ndarray] = []
        got, base = 0, 0
        need = n
        while True:
            buf = stream.peek(base + 2 * int(need * 1.5) + 64)
            pairs = buf[base:]
            pairs = pairs[:len(pairs) // 2 * 2]
            acc = BulkSampler.accepted(pairs)[0::2]
            found = np.flatnonzero(acc)[:need] * 2 + base
            out_starts.append(found)
            got += len(found)
            if got == n:
                end = int(found[-1]) + 2 if len(found) else base
                buf = stream.peek(end)
                all_starts = np.concatenate(out_starts)
                values = s.lognormal_values(buf, all_starts)
                stream.skip(end)
                return [values]
            base += len(pairs)
            need = n - got
    mean_width = sum(2.75 if w is None else w for w in widths)
    size = int(n * mean_width * 1.2) + 64
    if widths.count(None) == 1:  # one lognormal among fixed widths: a tight walk over its pairs
        L = widths.index(None)
        before = sum(w or 0 for w in widths[:L])
        after = sum(w or 0 for w in widths[L + 1:])
        while True:
            buf = stream.peek(size)
            nxt = _next_accepted(BulkSampler.accepted(buf)).tolist()
            nxt.extend([len(buf)] * (before + after + 3))
            ps: list[int] = []
            append = ps.append
            q = before
            for _ in range(n):
                p = nxt[q]
                append(p)
                q = p + 2 + after + before
            if q - before <= len(buf) - 2 or n == 0:
                break
            size *= 2
        lp = np.asarray(ps, dtype=np.int64)
        q0 = np.concatenate(([0], lp[:-1] + 2 + after))  # where each repayment's draws start
        out = []
        for k, (s, w) in enumerate(zip(samplers, widths)):
            if w is None:
                out.append(s.lognormal_values(buf, lp))
                continue
            if w == 0:
                out.append(s.values(buf[:0], n))
                continue
            if k < L:
                start = q0 + sum(x or 0 for x in widths[:k])
            else:
                start = lp + 2 + sum(x or 0 for x in widths[L + 1:k])
            out.append(s.values(buf[start], n))
        stream.skip(int(q - before) if n else 0)
        return out
    # several lognormals: walk the repayments in order
    while True:
        buf = stream.peek(size)
        nxt = _next_accepted(BulkSampler.accepted(buf)).tolist()
        limit = len(buf) - 2
        starts: list[list[int]] = [[] for _ in samplers]
        pos = 0
        ok = True
        for _ in range(n):
            for k, w in enumerate(widths):
                if w is None:
                    p = nxt[pos]
                    if p >= limit:
                        ok = False
                        break
                    starts[k].append(p)
                    pos = p + 2
                else:
                    starts[k].append(pos)
                    pos += w
            if not ok or pos > limit:
                ok = False
                break
        if ok:
            break
        size *= 2
    out = []
    for s, w, st in zip(samplers, widths, starts):
        idx = np.asarray(st, dtype=np.int64)
        if w is None:
            out.append(s.lognormal_values(buf, idx))
        else:
            out.append(s.values(buf[idx], n))
    stream.skip(pos)
    return out
