"""The fault registry: one module per fault type, found by listing this package.

Each module ``<type>.py`` holds the type's scenario spec (``SPEC``, a pydantic model
whose ``type`` literal is the module name), its report ``LABEL`` and ``COLOUR``, its
place in report order (``ORDER``) and the shared rules of :mod:`repaychaos.semantics`
it applies. The scenario schema (:data:`Fault`), the loader's did-you-mean, Prometheus
labels, plot colours and the cause catalogue all derive from :data:`REGISTRY`, so
adding a fault type is adding one module here (plus its behaviour in each engine's
injector table and docs/SEMANTICS.md).
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


def _discover() -> dict[str, FaultType]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        if info.name == "base" or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        doc = (module.__doc__ or "").strip().splitlines()[0]
        found.append((module.ORDER, FaultType(info.name, module.SPEC, module.LABEL, module.COLOUR, doc)))
    found.sort(key=lambda pair: (pair[0], pair[1].name))
    return {ft.name: ft for _, ft in found}


#: Every fault type, in report order (SPEC §3).
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
