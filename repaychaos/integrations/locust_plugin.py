"""Importing this module (from a locustfile, or as one more ``-f`` file) shows a run's staleness live.

    locust -f loadtests/locustfile.py,loadtests/staleness.py

On ``init`` it attaches :func:`repaychaos.integrations.live_metrics.enable` to the
environment and, when the web UI runs, :func:`repaychaos.integrations.locust_web.install`.
Settings (environment variables, like the locustfile's):

- ``REPAYCHAOS_METRICS_PORT``: serve Prometheus ``/metrics`` on ``127.0.0.1`` at this port
  (0: a free one; the URL is logged). Unset: no endpoint (the web UI tab still shows).
- ``REPAYCHAOS_METRICS_SOURCE``: the ``source`` label, ``load`` (default) or ``target``.
- ``REPAYCHAOS_SCENARIO``, ``REPAYCHAOS_T0``, ``REPAYCHAOS_TIME_SCALE``: as the locustfile
  reads them (:class:`repaychaos.load.settings.LocustSettings`): the scenario whose fault
  windows the exporter reports, on the run's scenario clock.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable

from locust import events

from repaychaos.core.errors import InvalidInput, RepaychaosError

__all__ = ["settings_from_env", "on_init"]

log = logging.getLogger("repaychaos.integrations")


def settings_from_env(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Port, source, scenario and clock from the environment (InvalidInput on a malformed value)."""
    from repaychaos.load.settings import LocustSettings
    from repaychaos.scenarios import resolve_scenario

    env = dict(os.environ if environ is None else environ)
    raw_port = env.get("REPAYCHAOS_METRICS_PORT", "")
    port: int | None = None
    if raw_port != "":
        try:
            port = int(raw_port)
        except ValueError:
            raise InvalidInput(f"REPAYCHAOS_METRICS_PORT: expected a port number, found {raw_port!r}") from None
        if not 0 <= port <= 65535:
            raise InvalidInput(f"REPAYCHAOS_METRICS_PORT: expected 0..65535, found {port}")
    source = env.get("REPAYCHAOS_METRICS_SOURCE", "") or "load"
    if source not in ("load", "target"):
        raise InvalidInput(f"REPAYCHAOS_METRICS_SOURCE: expected 'load' or 'target', found {source!r}")
    settings = LocustSettings.from_env(env)
    scenario = resolve_scenario(settings.scenario)
    clock: Callable[[], float] | None = None
    if settings.t0 is not None and settings.time_scale is not None:
        t0, k = settings.t0, settings.time_scale
        clock = lambda: max(0.0, (time.time() - t0) * k)  # noqa: E731
    return {"port": port, "source": source, "scenario": scenario, "clock": clock}


@events.init.add_listener
def on_init(environment: Any, **_kwargs: Any) -> None:
    """Attach the exporter (and the web UI tab) to this Locust process."""
    from repaychaos.integrations.live_metrics import enable

    try:
        found = settings_from_env()
    except RepaychaosError as exc:
        raise SystemExit(f"repaychaos: {exc}") from None
    live, url = enable(environment, found["scenario"], found["source"], found["port"], found["clock"])
    if url is not None:
        log.warning("repaychaos live metrics: %s", url)
    if getattr(environment, "web_ui", None) is not None:
        from repaychaos.integrations.locust_web import install

        install(environment.web_ui, live)
