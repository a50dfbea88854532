"""Delay distributions: small immutable value objects shared by the model and the service.

A bare duration in a scenario means :class:`Constant`. Every distribution knows its
mean and survival function (for the theory tests and the report) and hands out a fast
sampler bound to one random stream, because sampling sits on the model's hot path.
"""

from __future__ import annotations

import math
import random
from typing import Annotated, Callable, Literal, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from repaychaos.scenarios.units import parse_duration

__all__ = [
    "Constant",
    "Exponential",
    "Uniform",
    "Lognormal",
    "Pareto",
    "Empirical",
    "Distribution",
    "Duration",
    "Sampler",
]

Sampler = Callable[[], float]

# 1.6448536... = the standard normal 95th percentile, so p95 = median * exp(1.645 sigma).
_Z95 = 1.6448536269514722


def _as_duration(value: object) -> float:
    return parse_duration(value)


Duration = Annotated[float, BeforeValidator(_as_duration)]
"""Seconds, written in a scenario as ``250ms``, ``1h30m`` or a bare number."""


class _Dist(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @property
    def mean(self) -> float:  # pragma: no cover - every subclass overrides
        raise NotImplementedError

    def sampler(self, rng: random.Random) -> Sampler:  # pragma: no cover
        raise NotImplementedError

    def survival(self, t: float) -> float:  # pragma: no cover
        """P(X > t)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.model_dump(exclude={"dist"}).items())
        return f"{type(self).__name__}({fields})"

    __str__ = __repr__


class Constant(_Dist):
    """Always the same delay."""

    dist: Literal["constant"] = "constant"
    value: Duration

    @property
    def mean(self) -> float:
        return self.value

    def sampler(self, rng: random.Random) -> Sampler:
        value = self.value
        return lambda: value

    def survival(self, t: float) -> float:
        return 1.0 if t < self.value else 0.0


class Exponential(_Dist):
    """Memoryless delay: the textbook case the theory tests check against."""

    dist: Literal["exponential"]
    mean_: Duration = Field(alias="mean", gt=0)

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @property
    def mean(self) -> float:
        return self.mean_

    def sampler(self, rng: random.Random) -> Sampler:
        rate = 1.0 / self.mean_
        expovariate = rng.expovariate
        return lambda: expovariate(rate)

    def survival(self, t: float) -> float:
        return math.exp(-t / self.mean_) if t >= 0 else 1.0

    def __repr__(self) -> str:
        return f"Exponential(mean={self.mean_!r})"

    __str__ = __repr__


class Uniform(_Dist):
    """Any delay between low and high, equally likely."""

    dist: Literal["uniform"]
    low: Duration
    high: Duration

    @model_validator(mode="after")
    def _ordered(self) -> "Uniform":
        if self.high < self.low:
            raise ValueError("high >= low")
        return self

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2

    def sampler(self, rng: random.Random) -> Sampler:
        low, span, draw = self.low, self.high - self.low, rng.random
        return lambda: low + span * draw()

    def survival(self, t: float) -> float:
        if t < self.low:
            return 1.0
        if t >= self.high:
            return 0.0
        return (self.high - t) / (self.high - self.low)


class Lognormal(_Dist):
    """Right-skewed delay given the way people quote it: a median and a p95."""

    dist: Literal["lognormal"]
    median: Duration = Field(gt=0)
    p95: Duration = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> "Lognormal":
        if self.p95 < self.median:
            raise ValueError("p95 >= median")
        return self

    @property
    def mu(self) -> float:
        return math.log(self.median)

    @property
    def sigma(self) -> float:
        return math.log(self.p95 / self.median) / _Z95

    @property
    def mean(self) -> float:
        return math.exp(self.mu + self.sigma**2 / 2)

    def sampler(self, rng: random.Random) -> Sampler:
        mu, sigma, draw = self.mu, self.sigma, rng.lognormvariate
        if sigma == 0:
            value = self.median
            return lambda: value
        return lambda: draw(mu, sigma)

    def survival(self, t: float) -> float:
        if t <= 0:
            return 1.0
        if self.sigma == 0:
            return 1.0 if t < self.median else 0.0
        z = (math.log(t) - self.mu) / self.sigma
        return 0.5 * math.erfc(z / math.sqrt(2))


class Pareto(_Dist):
    """Heavy-tailed delay (slow consumers, GC pauses): P(X > t) = (scale / t) ** shape."""

    dist: Literal["pareto"]
    scale: Duration = Field(gt=0)
    shape: float = Field(gt=1)

    @property
    def mean(self) -> float:
        return self.shape * self.scale / (self.shape - 1)

    def sampler(self, rng: random.Random) -> Sampler:
        scale, inv_shape, draw = self.scale, 1.0 / self.shape, rng.random
        # Inverse transform: 1 - U is in (0, 1], so the power is finite.
        return lambda: scale * (1.0 - draw()) ** -inv_shape

    def survival(self, t: float) -> float:
        return 1.0 if t < self.scale else (self.scale / t) ** self.shape


class Empirical(_Dist):
    """Delays measured in production, resampled uniformly."""

    dist: Literal["empirical"]
    samples: tuple[Duration, ...] = Field(min_length=1)

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples)

    def sampler(self, rng: random.Random) -> Sampler:
        samples, n, draw = self.samples, len(self.samples), rng.random
        return lambda: samples[int(draw() * n)]

    def survival(self, t: float) -> float:
        return sum(1 for s in self.samples if s > t) / len(self.samples)


def _bare_is_constant(value: object) -> object:
    """A bare duration (``200ms``, ``0.2``) means a constant delay."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return {"dist": "constant", "value": value}
    return value


Distribution = Annotated[
    Annotated[
        Union[Constant, Exponential, Uniform, Lognormal, Pareto, Empirical],
        Field(discriminator="dist"),
    ],
    BeforeValidator(_bare_is_constant),
]
"""A delay: a bare duration, or ``{dist: NAME, ...}`` with the keys of that distribution."""

DIST_NAMES = ("constant", "exponential", "uniform", "lognormal", "pareto", "empirical")
