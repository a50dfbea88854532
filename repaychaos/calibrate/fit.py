"""Interval-censored maximum likelihood over several delay families, chosen by AIC, and the
Turnbull (nonparametric) estimate the fits are judged against.

The fits are scipy's own (``rv_continuous.fit`` on :class:`scipy.stats.CensoredData`);
nothing here optimises by hand. A shifted family (a floor every delay pays) is tried
only where a floor shows: when the Turnbull estimate puts (almost) no mass below some
delay that is a fair share of the median.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from repaychaos.core.stats import sample_quantile, sample_quantiles

__all__ = ["Fit", "fit_families", "fit_family", "censored_data", "turnbull", "FAMILIES", "goodness", "band_gap"]

#: name -> scipy distribution (location fixed at 0 unless shifted)
FAMILIES: dict[str, Any] = {
    "exponential": stats.expon,
    "lognormal": stats.lognorm,
    "gamma": stats.gamma,
    "weibull": stats.weibull_min,
}
#: Families also tried with a free floor (location) where one shows.
SHIFTABLE = ("lognormal", "gamma", "weibull")


@dataclass
class Fit:
    family: str
    shifted: bool
    params: tuple[float, ...]  # scipy's (shapes..., loc, scale)
    loglik: float
    k: int  # free parameters

    @property
    def aic(self) -> float:
        return 2 * self.k - 2 * self.loglik

    @property
    def name(self) -> str:
        return ("shifted " if self.shifted else "") + self.family

    def frozen(self) -> Any:
        return FAMILIES[self.family](*self.params)

    def survival(self, t: np.ndarray) -> np.ndarray:
        return self.frozen().sf(t)

    def describe(self) -> dict[str, Any]:
        dist = self.frozen()
        out = {"family": self.name, "aic": round(self.aic, 3), "loglik": round(self.loglik, 3),
               "median": round(float(dist.median()), 6), "mean": round(float(dist.mean()), 6),
               "p95": round(float(dist.ppf(0.95)), 6), "floor": round(float(self.params[-2]), 6),
               "scipy_params": [round(float(p), 9) for p in self.params]}
        return out


def censored_data(low: np.ndarray, high: np.ndarray) -> Any:
    left = high[(low <= 0) & np.isfinite(high)]
    right = low[np.isinf(high)]
    both = (low > 0) & np.isfinite(high)
    interval = np.column_stack([low[both], high[both]])
    return stats.CensoredData(left=left, right=right, interval=interval)


def _loglik(dist: Any, low: np.ndarray, high: np.ndarray) -> float:
    """log L of interval-censored data: P(low < T <= high) per user."""
    cdf_high = np.where(np.isfinite(high), dist.cdf(np.where(np.isfinite(high), high, 0.0)), 1.0)
    cdf_low = np.where(low > 0, dist.cdf(low), 0.0)
    p = np.clip(cdf_high - cdf_low, 1e-300, None)
    return float(np.log(p).sum())


def fit_family(name: str, shifted: bool, data: Any, low: np.ndarray, high: np.ndarray, floor: float) -> Fit | None:
    dist = FAMILIES[name]
    kwargs: dict[str, Any] = {} if shifted else {"floc": 0.0}
    guess: dict[str, Any] = {}
    if shifted:
        guess["loc"] = 0.5 * floor
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            params = dist.fit(data, **kwargs, **guess) if shifted else dist.fit(data, **kwargs)
    except Exception:  # noqa: BLE001 - a family scipy cannot fit to these data is simply not a candidate
        return None
    if shifted and not (0.0 <= params[-2] < floor):
        return None
    frozen = dist(*params)
    ll = _loglik(frozen, low, high)
    if not math.isfinite(ll):
        return None
    k = len(params) - (0 if shifted else 1)
    return Fit(name, shifted, tuple(float(p) for p in params), ll, k)


def turnbull(low: np.ndarray, high: np.ndarray, grid_points: int = 20, iterations: int = 3000,
             tol: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Nonparametric MLE of the survival function of interval-censored data (Turnbull's
    self-consistency algorithm); returns instants ``t`` and the survival ``S(t)`` there.

    Endpoints are snapped outward to a coarse grid of quantiles (each interval can only
    widen): the NPMLE of such data converges slowly (n^(1/3)) and is very noisy on a fine
    grid; coarse cells trade resolution for a stable curve.
    The NPMLE's mass lives only on Turnbull's innermost intervals (a left endpoint followed
    by a right one with no endpoint between); ``t`` holds their edges, so between two
    consecutive instants the estimate either is constant (a gap between innermost
    intervals: identified) or falls by that interval's mass somewhere inside (not
    identified where): see :func:`band_gap`."""
    finite = np.concatenate([low[low > 0], high[np.isfinite(high)]])
    edges = np.unique(np.concatenate([[0.0], sample_quantiles(finite, np.linspace(0, 1, grid_points))]))
    inf_index = len(edges)  # stands for +inf
    left = np.searchsorted(edges, low, side="right") - 1  # last edge <= low
    right = np.where(np.isfinite(high), np.minimum(np.searchsorted(edges, high, side="left"), len(edges) - 1),
                     inf_index)  # first edge >= high
    # innermost intervals: in endpoint order (a right endpoint before a left one at the same
    # edge, as intervals are (l, r]), a left endpoint immediately followed by a right one
    points = sorted({(int(a), 1) for a in left} | {(int(b), 0) for b in right})
    units = [(a, b) for (a, ka), (b, kb) in zip(points, points[1:]) if ka == 1 and kb == 0 and a < b]
    ua = np.array([a for a, _ in units])
    ub = np.array([b for _, b in units])
    mask = (left[:, None] <= ua[None, :]) & (ub[None, :] <= right[:, None])
    p = np.full(len(units), 1.0 / len(units))
    for _ in range(iterations):
        weights = mask * p
        total = weights.sum(axis=1, keepdims=True)
        total[total == 0] = 1.0
        new = (weights / total).mean(axis=0)
        done = np.abs(new - p).max() < tol
        p = new
        if done:
            break
    p = p / p.sum()
    finite_units = ub < inf_index
    stops = np.unique(np.concatenate([[0.0], edges[ua], edges[ub[finite_units]], [edges[-1]]]))
    survival = np.array([1.0 - p[finite_units & (edges[np.minimum(ub, len(edges) - 1)] <= x)].sum() for x in stops])
    return stops, np.clip(survival, 0.0, 1.0)


def band_gap(t: np.ndarray, s_turnbull: np.ndarray, x: np.ndarray, values: np.ndarray) -> np.ndarray:
    """How far ``values`` (a curve at instants ``x``) lie outside the Turnbull estimate's band:
    between two consecutive instants of :func:`turnbull` the survival is only known to lie
    between its values at both ends (where an innermost interval's mass sits inside it is not
    identified), so a smooth curve is compared with that band, not with one side of a step."""
    j = np.clip(np.searchsorted(t, x, side="left"), 1, len(t) - 1)
    upper, lower = s_turnbull[j - 1], s_turnbull[j]
    return np.maximum(0.0, np.maximum(lower - values, values - upper))


def _max_gap(fit: Fit, low: np.ndarray, high: np.ndarray) -> float:
    t, s = turnbull(low, high)
    mids = (t[1:] + t[:-1]) / 2
    return float(band_gap(t, s, mids, fit.survival(mids)).max())


def goodness(fit: Fit, low: np.ndarray, high: np.ndarray, first: np.ndarray, every: float, max_checks: int,
             replicates: int = 40, seed: int = 0) -> dict[str, float]:
    """The largest gap between the fitted survival and the Turnbull band, and how unusual it is.

    Parametric bootstrap: delays drawn from the fit, seen through each user's own read
    schedule (first read, then every ``every``, at most ``max_checks``), give the gaps a
    correct fit shows by chance; ``p_value`` is the share at least as large as the observed
    one (the fit is not refitted per replicate, which makes the test a little lenient)."""
    observed = _max_gap(fit, low, high)
    rng = np.random.default_rng(seed)
    frozen = fit.frozen()
    larger = 0
    sims = []
    for _ in range(replicates):
        delay = frozen.rvs(size=len(first), random_state=rng)
        k = np.ceil(np.maximum(0.0, delay - first) / every) if every > 0 else np.zeros(len(first))
        seen = k < max_checks
        hi = np.where(seen, first + k * every, np.inf)
        lo = np.where(seen, np.where(k > 0, hi - every, 0.0), first + (max_checks - 1) * every)
        gap = _max_gap(fit, lo, hi)
        sims.append(gap)
        larger += gap >= observed
    return {"max_gap": round(observed, 6), "p_value": round((larger + 1) / (replicates + 1), 4),
            "max_gap_p95_by_chance": round(sample_quantile(sims, 0.95), 6)}


def fit_families(low: np.ndarray, high: np.ndarray) -> tuple[list[Fit], float | None]:
    """Every family's fit, best (lowest AIC) first, and the floor that showed (or None)."""
    data = censored_data(low, high)
    t, s = turnbull(low, high)
    median = float(np.interp(0.5, 1 - s, t))
    # a floor shows when at most 1 % of delays lie below a quarter of the median or more
    below = t[s >= 0.99]
    lowest = float(below.max()) if len(below) else 0.0
    floor = lowest if lowest >= 0.25 * median and lowest > 0 else None
    fits = []
    for name in FAMILIES:
        fit = fit_family(name, False, data, low, high, 0.0)
        if fit is not None:
            fits.append(fit)
        if floor is not None and name in SHIFTABLE:
            upper = float(high[np.isfinite(high)].min())
            fit = fit_family(name, True, data, low, high, upper)
            if fit is not None:
                fits.append(fit)
    fits.sort(key=lambda f: f.aic)
    return fits, floor
