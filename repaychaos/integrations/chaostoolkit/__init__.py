"""Chaos Toolkit activities: repaychaos as a probe of staleness and as a fault injector.

Following the conventions of Chaos Toolkit extensions, the activities are plain functions
with typed arguments in :mod:`.probes` and :mod:`.actions` (``"provider": {"type":
"python", "module": "repaychaos.integrations.chaostoolkit.probes", "func": ...}``), and
:func:`discover` lists them for ``chaos discover repaychaos --no-install`` (the
``repaychaos`` package re-exports it, where Chaos Toolkit looks). The reference service's
chaos token comes from the experiment's secrets (key ``token``). Needs the ``chaos`` extra
(``pip install 'repaychaos[chaos]'``); docs/how-to/chaos-toolkit.md has an example.
"""

from typing import Any

from repaychaos import __version__

__all__ = ["discover", "__version__"]


def discover(discover_system: bool = True) -> dict[str, Any]:
    """The extension's activities, as Chaos Toolkit's discovery reports them (no system to discover)."""
    from chaoslib.discovery.discover import discover_actions, discover_probes, initialize_discovery_result

    discovery: dict[str, Any] = initialize_discovery_result("repaychaos", __version__, "repaychaos")
    discovery["activities"].extend(discover_probes("repaychaos.integrations.chaostoolkit.probes"))
    discovery["activities"].extend(discover_actions("repaychaos.integrations.chaostoolkit.actions"))
    return discovery
