"""Distributions: parameters, readable reprs, and samples that match their closed forms."""

from __future__ import annotations

import math
import random
import statistics

import pytest
from pydantic import TypeAdapter, ValidationError

from repaychaos.scenarios.distributions import Distribution, Exponential, Lognormal

ADAPTER = TypeAdapter(Distribution)
N = 40_000


def sample_mean(dist, n=N, seed=3):
    draw = dist.sampler(random.Random(seed))
    return statistics.fmean(draw() for _ in range(n))


def test_bare_duration_means_constant():
    """A bare '200ms' is Constant(value=0.2), and samples are exactly 0.2."""
    dist = ADAPTER.validate_python("200ms")
    assert repr(dist) == "Constant(value=0.2)"
    assert dist.sampler(random.Random(0))() == 0.2


@pytest.mark.parametrize(
    "spec",
    [
        {"dist": "exponential", "mean": "2s"},
        {"dist": "uniform", "low": "1s", "high": "3s"},
        {"dist": "lognormal", "median": "1s", "p95": "10s"},
        {"dist": "pareto", "scale": "1s", "shape": 3},
        {"dist": "empirical", "samples": ["1s", "2s", "6s"]},
    ],
)
def test_sample_mean_matches_closed_form(spec):
    """The sample mean is within 5 standard errors of the closed-form mean.

    The standard error is estimated from the same samples, so 5 SE is a tolerance that a
    correct sampler fails with probability < 1e-6.
    """
    dist = ADAPTER.validate_python(spec)
    draw = dist.sampler(random.Random(11))
    xs = [draw() for _ in range(N)]
    se = statistics.stdev(xs) / math.sqrt(N)
    assert abs(statistics.fmean(xs) - dist.mean) < 5 * se + 1e-12


def test_lognormal_p95_is_the_95th_percentile():
    """The survival function at the stated p95 is 5 %."""
    dist = Lognormal(dist="lognormal", median=5, p95=120)
    assert dist.survival(120) == pytest.approx(0.05, abs=1e-9)
    assert dist.survival(5) == pytest.approx(0.5, abs=1e-12)


def test_exponential_survival_is_exp():
    """P(X > t) = exp(-t/mean)."""
    dist = Exponential(dist="exponential", mean=2.0)
    assert dist.survival(3.0) == pytest.approx(math.exp(-1.5))


@pytest.mark.parametrize(
    "spec, fragment",
    [
        ({"dist": "pareto", "scale": "1s", "shape": 1.0}, "greater than 1"),
        ({"dist": "uniform", "low": "3s", "high": "1s"}, "high >= low"),
        ({"dist": "exponential", "mean": 0}, "greater than 0"),
        ({"dist": "empirical", "samples": []}, "at least 1"),
        ({"dist": "exponential", "mean": "1s", "sd": 2}, "Extra inputs"),
    ],
)
def test_invalid_parameters_are_refused(spec, fragment):
    """Each distribution checks its own parameters."""
    with pytest.raises(ValidationError, match=fragment):
        ADAPTER.validate_python(spec)
