"""Interval estimators that stay honest for correlated data (docs/reference/metrics.md).

The reads of one user are correlated, and repayments close in time share the state of
the queues, so nothing here treats reads or repayments as independent. Instead every
run is cut into non-overlapping **batches by ack time** (a repayment and all its reads
belong to the batch of its ack); batches far longer than the queue's memory are nearly
independent (batch means, Law & Kelton, *Simulation Modeling and Analysis*, ch. 9).
Batches of every replication are pooled, so ``R`` replications of ``B`` batches give
``R·B − 1`` degrees of freedom.

- A **ratio** Σy/Σx (stale reads / reads, affected / repayments, ...) gets the
  linearisation (delta-method) variance of a ratio of batch sums,
  ``n/(n−1) · Σ(y_b − r·x_b)² / (Σx)²``. A proportion turns it into a Korn–Graubard
  effective sample size ``n_eff = p(1−p)/var`` (never above the raw count) and reports
  the Wilson interval at ``n_eff`` with Student-t quantile on ``n−1`` d.o.f. — the
  batch-means t-interval in the middle, never below 0 or above 1 near the edges, and
  not zero-width when no event was seen (Korn & Graubard 1998, Survey Methodology 24).
- With **R ≥ 2 replications**, batch ``b`` of every replication covers the same stretch of
  ack time, so the batches are strata: the variance is taken *within* each batch position
  across replications, ``Σ_b R/(R−1) · Σ_r (e_rb − ē_b)²`` with ``e = y − r·x``, on
  ``B·(R−1)`` d.o.f. A fault window or a rate step then makes some positions differ from
  others without widening the interval (pooling all batches would count that
  heterogeneity as noise: honest but needlessly wide). One replication (every live run)
  has no such pairing and keeps the pooled batch means, on the safe side.
- A **mean** (time to usable) gets the same ratio variance and a Student-t interval.
- A **quantile** gets the delete-one-batch (grouped) jackknife variance over per-batch
  histograms, ``(n−1)/n · Σ(θ_(−b) − θ̄)²``, and a Student-t interval around the
  pooled estimate. Through the Bahadur representation a quantile behaves like a mean, so
  the grouped jackknife is consistent as batches grow (Shao & Wu 1989, Ann. Stat. 17).
- Two results of one scenario (model and measurement) share the batch positions, so a
  ratio is compared **paired by position** (:func:`paired_ratio_difference`): the
  measurement's counts against the model's per-position ratios, so a fault window that
  makes positions differ is not counted as noise of a single live run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Mapping, Sequence

import numpy as np

from repaychaos.core.histogram import dense_rows, quantiles_from_counts

__all__ = [
    "Estimate",
    "t975",
    "wilson",
    "proportion_estimate",
    "mean_estimate",
    "quantile_estimates",
    "sample_quantile",
    "sample_quantiles",
    "paired_ratio_difference",
    "MIN_PER_BATCH_BEYOND_QUANTILE",
]

Z95 = 1.959963984540054


def sample_quantiles(values: Sequence[float] | np.ndarray, qs: Sequence[float] | np.ndarray) -> np.ndarray:
    """The ``qs`` quantiles of a sample of raw values: linear interpolation between order
    statistics at rank ``q·(n−1)`` (Hyndman & Fan type 7, numpy's default).

    The one estimator for quantiles of raw values (calibration, black-box bounds); the
    metrics' quantiles come from histograms (:func:`quantile_estimates`,
    :meth:`~repaychaos.core.histogram.LogHistogram.quantile`).
    """
    out: np.ndarray = np.quantile(np.asarray(values, dtype=float), np.asarray(qs, dtype=float))
    return out


def sample_quantile(values: Sequence[float] | np.ndarray, q: float) -> float:
    """One quantile of a sample of raw values (:func:`sample_quantiles`)."""
    return float(sample_quantiles(values, [q])[0])

#: A quantile gets an interval only when, on average, this many values per batch lie
#: beyond it; with fewer the jackknife has nothing to work with (p999 of a short run).
MIN_PER_BATCH_BEYOND_QUANTILE = 5


@lru_cache(maxsize=256)
def t975(dof: int) -> float:
    """The 0.975 quantile of Student's t with ``dof`` degrees of freedom."""
    from scipy.stats import t as student_t

    return float(student_t.ppf(0.975, dof))


@dataclass(frozen=True)
class Estimate:
    """A value with its 95 % interval, standard error and the d.o.f. the interval used."""

    value: float
    low: float
    high: float
    se: float | None
    dof: int | None

    def scaled(self, k: float) -> "Estimate":
        se = None if self.se is None else self.se * k
        return Estimate(self.value * k, self.low * k, self.high * k, se, self.dof)


def wilson_p(p: float, n: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for proportion ``p`` seen over ``n`` (possibly effective) trials."""
    if n <= 0:
        return (0.0, 1.0)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(max(0.0, p * (1 - p)) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion of *independent* trials (95 % by default)."""
    if n <= 0:
        return (0.0, 1.0)
    return wilson_p(successes / n, n, z)


def _ratio_variance(num: np.ndarray, den: np.ndarray, strata: int = 1) -> tuple[float, float, int | None]:
    """Ratio of sums, its linearisation variance, and d.o.f.

    ``strata`` > 1: the batches are ``strata`` replications of the same batch positions
    (replication-major), and the variance is taken within positions (module docstring).
    Otherwise: pooled over the batches that have a denominator.
    """
    total = float(den.sum())
    value = float(num.sum()) / total
    if strata > 1 and len(num) % strata == 0 and len(num) >= 2 * strata:
        resid = (num - value * den).reshape(strata, -1)
        spread = resid - resid.mean(axis=0)
        var = strata / (strata - 1) * float(np.sum(spread * spread)) / (total * total)
        return value, var, resid.shape[1] * (strata - 1)
    used = den > 0
    n = int(used.sum())
    if n < 2:
        return value, math.nan, None
    resid = num[used] - value * den[used]
    var = n / (n - 1) * float(np.dot(resid, resid)) / (total * total)
    return value, var, n - 1


def proportion_estimate(num: Sequence[float], den: Sequence[float], strata: int = 1) -> Estimate:
    """A proportion Σnum/Σden from per-batch counts (see the module docstring)."""
    y, x = np.asarray(num, dtype=float), np.asarray(den, dtype=float)
    total = float(x.sum())
    if total <= 0:
        return Estimate(0.0, 0.0, 1.0, None, None)
    p, var, dof = _ratio_variance(y, x, strata)
    if dof is None:  # one batch: nothing to estimate the correlation from; say so with a wide interval
        low, high = wilson_p(p, 1.0)
        return Estimate(p, low, high, None, None)
    binomial = p * (1 - p) / total
    n_eff = total if var <= binomial or binomial == 0 else p * (1 - p) / var
    low, high = wilson_p(p, n_eff, t975(dof))
    se = math.sqrt(p * (1 - p) / n_eff)
    return Estimate(p, min(low, p), max(high, p), se, dof)


def mean_estimate(sums: Sequence[float], counts: Sequence[float], strata: int = 1) -> Estimate | None:
    """A mean Σsums/Σcounts from per-batch sums, with a Student-t batch-means interval."""
    y, x = np.asarray(sums, dtype=float), np.asarray(counts, dtype=float)
    if float(x.sum()) <= 0:
        return None
    value, var, dof = _ratio_variance(y, x, strata)
    if dof is None:
        return None
    se = math.sqrt(var)
    half = t975(dof) * se
    return Estimate(value, max(0.0, value - half), value + half, se, dof)


def quantile_estimates(batches: Sequence[Mapping[int, int]], qs: Sequence[float],
                       cap: float) -> list[Estimate | None]:
    """Quantiles ``qs`` of the pooled per-batch histograms with grouped-jackknife intervals.

    ``batches`` are sparse bin counts (:func:`repaychaos.core.histogram.bin_of`), one per
    batch; ``cap`` (the exact maximum) bounds every estimate.
    """
    kept = [h for h in batches if h]
    out: list[Estimate | None] = []
    if not kept:
        return [None for _ in qs]
    rows, first = dense_rows(kept)
    pooled = rows.sum(axis=0)
    n_total = float(pooled.sum())
    leave_out = pooled[None, :] - rows
    nb = len(kept)
    for q in qs:
        value = min(float(quantiles_from_counts(pooled, q, first)[0]), cap)
        if nb < 2 or n_total * min(q, 1 - q) < MIN_PER_BATCH_BEYOND_QUANTILE * nb:
            out.append(None)
            continue
        reps = np.minimum(quantiles_from_counts(leave_out, q, first), cap)
        var = (nb - 1) / nb * float(np.sum((reps - reps.mean()) ** 2))
        se = math.sqrt(var)
        half = t975(nb - 1) * se
        out.append(Estimate(value, max(0.0, value - half), value + half, se, nb - 1))
    return out


def as_json(est: Estimate, rnd: Any) -> dict[str, Any]:
    """``{"ci95": [low, high], "se": .., "dof": ..}`` rounded by ``rnd``."""
    return {"ci95": [rnd(est.low), rnd(est.high)], "se": rnd(est.se), "dof": est.dof}


def paired_ratio_difference(y_a: Sequence[float], x_a: Sequence[float], y_b: Sequence[float],
                            x_b: Sequence[float]) -> tuple[float, float, float] | None:
    """Ratio A against ratio B paired by batch position: ``(difference, se, dof)`` or None.

    A's and B's per-position counts (summed over each side's replications) cover the same
    stretches of ack time. With ``m_b = y_b^B / x_b^B`` and residuals
    ``e_b = y_b^A − x_b^A·m_b``, the difference ``Σe_b / Σx^A`` is A's ratio minus B's
    per-position ratios weighted as A's batches are; under "same process" every e_b has
    mean 0, so ``Σe_b² / (Σx^A)²`` estimates its variance with both sides' noise in it (a
    heteroscedasticity-consistent sum over independent batches). Its d.o.f. are
    Satterthwaite's ``(Σv_b)² / Σv_b²`` for the per-position variances ``v_b``, with ``v_b``
    estimated by ``e_b²`` and ``v_b²`` by ``e_b⁴/3`` (a normal e_b has ``E e⁴ = 3v²``):
    ``3(Σe_b²)² / Σe_b⁴``, at most positions − 1 — a few fault-window positions with most of
    the variance leave few d.o.f. None when a position has data on one side only (nothing
    to pair) or fewer than two positions.
    """
    ya, xa, yb, xb = (np.asarray(v, dtype=float) for v in (y_a, x_a, y_b, x_b))
    if not (len(ya) == len(xa) == len(yb) == len(xb)):
        return None
    used = (xa > 0) | (xb > 0)
    if int(used.sum()) < 2 or bool(np.any(used & ((xa > 0) != (xb > 0)))):
        return None
    ya, xa, yb, xb = ya[used], xa[used], yb[used], xb[used]
    total = float(xa.sum())
    e = ya - xa * (yb / xb)
    ss = float(np.sum(e * e))
    diff = float(e.sum()) / total
    if ss == 0.0:
        return diff, 0.0, float(len(e) - 1)
    dof = min(float(len(e) - 1), max(1.0, 3 * ss * ss / float(np.sum(e ** 4))))
    return diff, math.sqrt(ss) / total, dof
