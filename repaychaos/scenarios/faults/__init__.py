"""The fault registry: one module per fault type, found by listing this package.

Each module ``<type>.py`` holds the type's scenario spec (``SPEC``, a pydantic model
whose ``type`` literal is the module name), its report ``LABEL`` and ``COLOUR``, its
place in report order (``ORDER``), the meaning of each of its own keys for the scenario
reference (``MEANINGS``, optional), a runnable example (``EXAMPLE``,
``EXAMPLE_DESCRIPTION``), its behaviour in the model (``MODEL``, an injector class) and in
the live service (``LIVE``, a rule), written against the narrow engine APIs of
:mod:`.hooks` with the shared rules of :mod:`repaychaos.semantics`. The scenario schema
(:data:`Fault`) and its reference text, the causes of stale reads (:data:`CAUSES`) and the
SLO metric paths built on them, the loader's did-you-mean, Prometheus labels, plot colours,
both engines' fault handling and the cause check all derive from :data:`REGISTRY`, so
adding a fault type is adding one module here (and its paragraph in
docs/explanation/semantics.md); ``tests/test_fault_registry.py`` adds a toy one to show it.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Iterable, Mapping, Union

from pydantic import Field

from repaychaos.core.catalog import causes

__all__ = ["FaultType", "REGISTRY", "FAULT_TYPES", "CAUSES", "Fault", "colour", "label", "target_refusal"]


@dataclass(frozen=True)
class FaultType:
    """One registered fault type."""

    name: str
    spec: Any
    label: str
    colour: str
    doc: str
    #: the model's injector class (:class:`.hooks.ModelInjector`)
    model: Any
    #: the live service's rule (:class:`.hooks.LiveRule`)
    live: Any
    #: a runnable example's ``faults`` and ``slo`` (YAML) and what it shows
    example: str
    example_description: str
    #: what each of the type's own keys means (``extra`` -> text), for the scenario reference
    meanings: Mapping[str, str] = field(default_factory=dict)


def _discover() -> dict[str, FaultType]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name in ("base", "hooks") or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        doc = (module.__doc__ or "").strip().splitlines()[0]
        found.append((module.ORDER, FaultType(info.name, module.SPEC, module.LABEL, module.COLOUR, doc,
                                            module.MODEL, module.LIVE, module.EXAMPLE, module.EXAMPLE_DESCRIPTION,
                                            dict(getattr(module, "MEANINGS", {})))))
    found.sort(key=lambda pair: (pair[0], pair[1].name))
    return {ft.name: ft for _, ft in found}


#: Every fault type, in report order (docs/reference/scenario-format.md).
REGISTRY: dict[str, FaultType] = _discover()
FAULT_TYPES: tuple[str, ...] = tuple(REGISTRY)
#: Every cause a stale read can be attributed to, in report order (docs/reference/metrics.md):
#: ``queueing``, each fault type, ``cache``.
CAUSES: tuple[str, ...] = causes(FAULT_TYPES)

#: A scenario's fault: one of the registered specs, told apart by ``type``.
if TYPE_CHECKING:  # the union is built at import time, which a type checker cannot follow
    Fault = Any
else:
    Fault = Annotated[Union[tuple(ft.spec for ft in REGISTRY.values())], Field(discriminator="type")]


def label(fault_type: str) -> str:
    """The human label of ``fault_type`` (its name if unknown)."""
    ft = REGISTRY.get(fault_type)
    return ft.label if ft else fault_type


def colour(fault_type: str, default: str = "#999999") -> str:
    """The plot colour of ``fault_type``."""
    ft = REGISTRY.get(fault_type)
    return ft.colour if ft else default


def target_refusal(faults: Iterable[Any]) -> str | None:
    """Why target mode cannot run ``faults`` (a scenario's): the first fault whose type's live
    rule refuses it there; None when it can."""
    for fault in faults:
        why = REGISTRY[fault.type].live.target_refuses
        if why is not None:
            return f"fault type {fault.type!r}: {why}"
    return None
