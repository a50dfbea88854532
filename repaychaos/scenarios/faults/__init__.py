"""The fault registry: one module per fault type, found by listing this package.

Each module ``<type>.py`` holds the type's scenario spec (``SPEC``, a pydantic model
whose ``type`` literal is the module name), its report ``LABEL`` and ``COLOUR``, its
place in report order (``ORDER``), its behaviour in the model (``MODEL``, an injector
class) and in the live service (``LIVE``, a rule), written against the narrow engine
APIs of :mod:`.hooks` with the shared rules of :mod:`repaychaos.semantics`. The scenario
schema (:data:`Fault`), the loader's did-you-mean, Prometheus labels, plot colours, both
engines' fault handling and the cause check all derive from :data:`REGISTRY`, so adding a
fault type is adding one module here (and its paragraph in docs/explanation/semantics.md).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field

__all__ = ["FaultType", "REGISTRY", "FAULT_TYPES", "Fault", "colour", "label"]


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


def _discover() -> dict[str, FaultType]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name in ("base", "hooks") or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        doc = (module.__doc__ or "").strip().splitlines()[0]
        found.append((module.ORDER, FaultType(info.name, module.SPEC, module.LABEL, module.COLOUR, doc,
                                            module.MODEL, module.LIVE, module.EXAMPLE, module.EXAMPLE_DESCRIPTION)))
    found.sort(key=lambda pair: (pair[0], pair[1].name))
    return {ft.name: ft for _, ft in found}


#: Every fault type, in report order (docs/reference/scenario-format.md).
REGISTRY: dict[str, FaultType] = _discover()
FAULT_TYPES: tuple[str, ...] = tuple(REGISTRY)

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
