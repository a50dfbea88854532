"""The typed, immutable scenario: the only shape of a scenario anything downstream sees.

Every key of docs/reference/scenario-format.md is defined here, once. Times are seconds, rates are per second,
ratios are in [0, 1]. The loader (:mod:`repaychaos.scenarios.loader`) turns a YAML file into a
:class:`Scenario` or raises :class:`~repaychaos.core.errors.InvalidScenario`.
"""

from __future__ import annotations

import math
import operator
import re
from typing import Annotated, Any, Callable, Literal, cast

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_serializer,
    model_validator,
)

from repaychaos.scenarios.distributions import Constant, Distribution, Duration
from repaychaos.scenarios.units import parse_duration, parse_rate
from repaychaos.core.catalog import ACCOUNT_METRICS, HOLDER_METRICS, PHASE_AFTER, slo_metric_paths
from repaychaos.scenarios.faults import CAUSES, FAULT_TYPES, Fault
from repaychaos.scenarios.faults.base import FaultBase, Ratio, Window

__all__ = [
    "Scenario",
    "Workload",
    "Arrivals",
    "ProfileStep",
    "CheckPolicy",
    "PayAgain",
    "Pipeline",
    "Channel",
    "Sync",
    "Credit",
    "View",
    "Reconcile",
    "Fault",
    "FaultBase",
    "SloRule",
    "FAULT_TYPES",
    "CAUSES",
    "SLO_METRIC_PATHS",
    "COMPONENTS",
    "LINKS",
    "Window",
]

Rate = Annotated[float, BeforeValidator(parse_rate)]

COMPONENTS = ("sync", "credit", "ledger", "view")

#: Every metric path an SLO may name (without an ``@phase`` suffix).
SLO_METRIC_PATHS: tuple[str, ...] = slo_metric_paths(CAUSES)
LINKS = ("ledger->sync", "sync->credit", "credit->view")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


# --------------------------------------------------------------------------- workload


class ProfileStep(_Frozen):
    """From ``at`` on, repayments arrive at ``rate`` per second (until the next step)."""

    at: Duration
    rate: Rate


class Arrivals(_Frozen):
    """Poisson arrivals: a constant ``rate`` or a piecewise-constant ``profile``, times ``scale``.

    ``scale`` multiplies every rate (the whole profile), so one key varies the load of a
    profile-based scenario: ``--vary workload.arrivals.scale=0.5,1,1.5``.
    """

    rate: Rate | None = None
    profile: tuple[ProfileStep, ...] | None = None
    scale: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _one_of(self) -> "Arrivals":
        if (self.rate is None) == (self.profile is None):
            raise ValueError("exactly one of 'rate' or 'profile' (to vary the load of a profile, set 'scale')")
        if self.profile is not None:
            if not self.profile:
                raise ValueError("a non-empty profile")
            ats = [s.at for s in self.profile]
            if ats != sorted(ats) or len(set(ats)) != len(ats):
                raise ValueError("profile steps in increasing order of 'at'")
            if ats[0] != 0:
                raise ValueError("the first profile step at 0s")
        return self

    @property
    def steps(self) -> tuple[tuple[float, float], ...]:
        """``(at, rate)`` pairs, ``scale`` applied; a constant rate is one step at 0."""
        if self.profile is None:
            return ((0.0, float(self.rate or 0.0) * self.scale),)
        return tuple((s.at, s.rate * self.scale) for s in self.profile)

    def rate_at(self, t: float) -> float:
        current = 0.0
        for at, rate in self.steps:
            if at <= t:
                current = rate
        return current

    def expected_count(self, start: float, end: float) -> float:
        """Mean number of arrivals in ``[start, end)``."""
        steps = self.steps
        total = 0.0
        for i, (at, rate) in enumerate(steps):
            seg_end = steps[i + 1][0] if i + 1 < len(steps) else math.inf
            lo, hi = max(at, start), min(seg_end, end)
            if hi > lo:
                total += rate * (hi - lo)
        return total


class PayAgain(_Frozen):
    """Users who take "unusable" for a failed payment and repay: a second payment, new key.

    A user whose first ``after_stale_reads`` reads were all stale pays again, with
    ``probability``, at the instant of that read (docs/explanation/semantics.md, 10a).
    """

    after_stale_reads: int = Field(ge=1, le=1000)
    probability: Ratio


class CheckPolicy(_Frozen):
    """How a user looks at the status after the ack, when they give up, and (``pay_again``)
    whether they pay a second time."""

    first_after: Distribution = Constant(value=5.0)
    every: Duration = 30.0
    max_checks: int = Field(default=5, ge=1, le=1000)
    pay_again: PayAgain | None = None

    @model_validator(mode="after")
    def _pay_again_reachable(self) -> "CheckPolicy":
        if self.pay_again is not None and self.pay_again.after_stale_reads > self.max_checks:
            raise ValueError(f"pay_again.after_stale_reads at most max_checks ({self.max_checks}), "
                             f"found {self.pay_again.after_stale_reads}")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        data = handler(self)
        if data.get("pay_again") is None:
            data.pop("pay_again", None)  # a scenario without it reads back exactly as before
        return data


#: Most accounts a scenario may spread its repayments over.
MAX_ACCOUNTS = 100_000_000
#: Largest power-law exponent of the accounts (at 5 the busiest account takes 97 % of them).
MAX_ACCOUNT_SKEW = 5.0


class Workload(_Frozen):
    #: repayments land on this many accounts, uniformly (None: each on an account of its own)
    accounts: int | None = Field(None, ge=1, le=MAX_ACCOUNTS)
    #: the accounts' power-law exponent s (None or 0: uniform; semantics 14)
    account_skew: float | None = Field(None, ge=0, le=MAX_ACCOUNT_SKEW)
    arrivals: Arrivals
    check: CheckPolicy = CheckPolicy()

    @model_validator(mode="after")
    def _accounts_alone(self) -> "Workload":
        if self.accounts is not None and self.check.pay_again is not None:
            raise ValueError("workload.accounts not to come with workload.check.pay_again (a second payment is "
                             "on an account of its own; docs/explanation/semantics.md, 14)")
        if self.account_skew is not None and self.accounts is None:
            raise ValueError("workload.account_skew to come with workload.accounts (it says how repayments "
                             "spread over them)")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        data = handler(self)
        if data.get("accounts") is None:
            data.pop("accounts", None)  # each repayment on an account of its own
        if data.get("account_skew") is None:
            data.pop("account_skew", None)  # uniform
        return data


# --------------------------------------------------------------------------- pipeline


class Channel(_Frozen):
    """Repay request -> ledger commit."""

    latency: Distribution = Constant(value=0.2)


def _workers(value: object) -> object:
    if value in ("unlimited", "inf", "infinite", None):
        return None
    return value


class Sync(_Frozen):
    """The worker pool that carries outbox events to the credit stage."""

    workers: Annotated[int | None, BeforeValidator(_workers)] = Field(default=8, ge=1)
    service: Distribution = Constant(value=0.1)

    @property
    def unlimited(self) -> bool:
        return self.workers is None

    @model_serializer(mode="wrap")
    def _dump(self, handler: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        data = handler(self)
        if data.get("workers") is None:
            data["workers"] = "unlimited"
        return data


class Credit(_Frozen):
    """Limit restore plus risk rules; held accounts stay unusable legitimately."""

    service: Distribution = Constant(value=0.02)
    risk_hold_ratio: Ratio = 0.0


class View(_Frozen):
    """What the app shows; with ``cache_ttl`` > 0 it may serve a status up to that old."""

    cache_ttl: Duration = 0.0


def _off(value: object) -> object:
    # YAML 1.1 reads a bare `off` as False.
    if value in (False, "off", None):
        return None
    return value


class Reconcile(_Frozen):
    """A periodic sweep that sets view := truth for every account."""

    every: float | None = 900.0

    @field_validator("every", mode="before")
    @classmethod
    def _parse(cls, value: object) -> object:
        value = _off(value)
        return None if value is None else parse_duration(value)

    @field_validator("every")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and value <= 0:
            raise ValueError("a period > 0 or 'off'")
        return value

    @model_serializer(mode="wrap")
    def _dump(self, handler: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        data = handler(self)
        if data.get("every") is None:
            data["every"] = "off"
        return data

    def next_sweep(self, t: float) -> float:
        """The first sweep at or after ``t`` (sweeps at every, 2·every, ...); inf when off."""
        if self.every is None:
            return math.inf
        k = max(1, math.ceil(t / self.every))
        sweep = k * self.every
        return sweep if sweep >= t else sweep + self.every


def _reconcile_off(value: object) -> object:
    if value in (False, "off", None):
        return {"every": None}
    return value


class Pipeline(_Frozen):
    channel: Channel = Channel()
    sync: Sync = Sync()
    credit: Credit = Credit()
    view: View = View()
    reconcile: Annotated[Reconcile, BeforeValidator(_reconcile_off)] = Reconcile()


# --------------------------------------------------------------------------- faults


# Fault specs live one module per type in repaychaos.scenarios.faults (the fault registry).


# --------------------------------------------------------------------------- SLOs

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
}
#: An SLO rule's comparison; ``_RULE`` matches exactly these.
RuleOp = Literal["<", "<=", ">", ">=", "==", "!="]
_RULE = re.compile(r"^\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")


class SloRule(_Frozen):
    """One gate: ``metric[@phase] OP threshold``, e.g. ``time_to_usable.p99 < 2m``."""

    metric: str
    phase: str | None = None
    op: RuleOp
    threshold: float
    rule: str

    @property
    def key(self) -> str:
        return self.metric if self.phase is None else f"{self.metric}@{self.phase}"

    def holds(self, observed: float) -> bool:
        return _OPS[self.op](observed, self.threshold)

    @classmethod
    def parse(cls, key: str, rule: object) -> "SloRule":
        """Parse one ``slo:`` entry; ``ValueError`` names what was expected."""
        metric, _, phase = str(key).partition("@")
        if metric not in SLO_METRIC_PATHS:
            raise ValueError(f"a known metric path ({', '.join(SLO_METRIC_PATHS)}), found '{metric}'")
        if not isinstance(rule, (str, int, float)) or isinstance(rule, bool):
            raise ValueError("a rule such as '< 0.5%', '<= 2m' or '== 0'")
        text = str(rule) if isinstance(rule, str) else f"== {rule}"
        match = _RULE.match(text)
        if not match:
            raise ValueError("a rule such as '< 0.5%', '<= 2m' or '== 0'")
        op, raw = match.groups()
        threshold = _threshold(raw)
        return cls(metric=metric, phase=phase or None, op=cast(RuleOp, op), threshold=threshold, rule=text.strip())


def _threshold(raw: str) -> float:
    if raw.endswith("%"):
        return float(raw[:-1]) / 100.0
    try:
        return float(raw)
    except ValueError:
        return parse_duration(raw)


# --------------------------------------------------------------------------- scenario


class Scenario(_Frozen):
    """A validated scenario: workload, pipeline, faults and SLOs, all in seconds."""

    version: Literal[1] = 1
    name: str = Field(pattern=r"^[a-z0-9-]+$")
    description: str = ""
    duration: Duration = Field(gt=0)
    warmup: Duration = 0.0
    seed: int = 0
    replications: int = Field(1, ge=1, le=10_000)
    workload: Workload
    pipeline: Pipeline = Pipeline()
    faults: tuple[Fault, ...] = ()
    slo: tuple[SloRule, ...] = ()

    _source: str | None = PrivateAttr(None)
    _warnings: tuple[str, ...] = PrivateAttr(())
    _text: str | None = PrivateAttr(None)

    @property
    def source(self) -> str:
        """Where this scenario was loaded from (for messages)."""
        return self._source or f"<{self.name}>"

    @property
    def written(self) -> str | None:
        """The scenario file's text as its author wrote it (None when built from data)."""
        return self._text

    @property
    def warnings(self) -> tuple[str, ...]:
        """``file:line: key: ...`` notes about keys accepted but not modelled (the loader fills them)."""
        return self._warnings

    @property
    def causes(self) -> tuple[str, ...]:
        """Every cause a stale read can be attributed to, in report order: ``queueing``, every
        registered fault type (whether or not this scenario has one), ``cache``."""
        return CAUSES

    @field_validator("slo", mode="before")
    @classmethod
    def _slo_map(cls, value: object) -> object:
        if value is None:
            return ()
        if not isinstance(value, dict):
            return value if isinstance(value, (list, tuple)) else _not_a_mapping()
        return tuple(v if isinstance(v, SloRule) else SloRule.parse(k, v) for k, v in value.items())

    @model_validator(mode="after")
    def _consistent(self) -> "Scenario":
        if self.warmup >= self.duration:
            raise ValueError("warmup shorter than duration")
        names = [f.name for f in self.faults if f.name]
        if len(names) != len(set(names)):
            raise ValueError("fault names to be unique")
        for rule in self.slo:
            if rule.metric.startswith("double_repayments") and self.workload.check.pay_again is None:
                raise ValueError(f"slo '{rule.key}' to come with workload.check.pay_again (no user pays "
                                 "twice without it)")
            if rule.metric in HOLDER_METRICS and not any(f.type == "phantom_record" for f in self.faults):
                raise ValueError(f"slo '{rule.key}' to come with a phantom_record fault (no phantom record is "
                                 "written without one)")
            if rule.metric in ACCOUNT_METRICS and self.workload.accounts is None:
                raise ValueError(f"slo '{rule.key}' to come with workload.accounts (no view moves back while "
                                 "every repayment has an account of its own)")
            if rule.phase and rule.phase != PHASE_AFTER and rule.phase not in self.phase_names():
                raise ValueError(
                    f"slo phase '@{rule.phase}' to name a fault type or name in this scenario, or '@after'"
                )
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: Callable[[Any], dict[str, Any]]) -> dict[str, Any]:
        data = handler(self)
        data["slo"] = {r.key: r.rule for r in self.slo}
        return data

    # ---- helpers everything downstream uses

    def fault_label(self, index: int) -> str:
        """A stable label for fault ``index``: its name, or ``type#index``."""
        fault = self.faults[index]
        return fault.name or f"{fault.type}#{index}"

    def phase_names(self) -> set[str]:
        """Names an SLO ``@phase`` may use: fault types, fault names and labels."""
        names = {f.type for f in self.faults} | {f.name for f in self.faults if f.name}
        names |= {self.fault_label(i) for i in range(len(self.faults))}
        return names

    def normalised(self) -> dict[str, Any]:
        """The scenario as plain JSON data (seconds, per-second rates); it validates again."""
        return self.model_dump(mode="json", by_alias=True)


def _not_a_mapping() -> object:
    raise ValueError("a mapping of metric path to rule, e.g. {stale_read_ratio: '< 0.5%'}")
