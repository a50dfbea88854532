"""Importing this module (from a locustfile, or as one more ``-f`` file) shows a run's staleness live.

    locust -f loadtests/locustfile.py,loadtests/staleness.py

On ``init`` it attaches :func:`repaychaos.integrations.live_metrics.enable` to the
environment and, when the web UI runs, :func:`repaychaos.integrations.locust_web.install`.
Settings (environment variables, like the locustfile's):

- ``REPAYCHAOS_METRICS_PORT``: serve Prometheus ``/metrics`` on ``127.0.0.1`` at this port
  (0: a free one; the URL is logged). Unset: no endpoint (the web UI tab still shows).
- ``REPAYCHAOS_METRICS_SOURCE``: the ``source`` label, ``load`` (default) or ``target``.
- ``REPAYCHAOS_SCENARIO`` (a bundled name, a path, or the scenario as JSON),
  ``REPAYCHAOS_T0``, ``REPAYCHAOS_TIME_SCALE``: as the locustfile reads them
  (:class:`repaychaos.load.settings.LocustSettings`): the scenario whose fault windows the
  exporter reports, on the run's scenario clock.

A port that cannot be bound is logged as an error and the run goes on without the endpoint.
"""

from __future__ import annotations

import logging
from typing import Any

from locust import events

from repaychaos.core.errors import RepaychaosError

__all__ = ["on_init"]

log = logging.getLogger("repaychaos.integrations")


@events.init.add_listener
def on_init(environment: Any, **_kwargs: Any) -> None:
    """Attach the exporter (and the web UI tab) to this Locust process."""
    from repaychaos.integrations.live_metrics import enable, settings_from_env

    try:
        found = settings_from_env()
    except (RepaychaosError, ValueError) as exc:
        raise SystemExit(f"repaychaos: {exc}") from None
    try:
        live, url = enable(environment, found["scenario"], found["source"], found["port"], found["clock"])
    except OSError as exc:  # the port is taken: the run's measurement matters more than the live view
        log.error("repaychaos live metrics: cannot listen on 127.0.0.1:%s (%s); the run goes on without them",
                  found["port"], exc)
        live, url = enable(environment, found["scenario"], found["source"], None, found["clock"])
    if url is not None:
        log.warning("repaychaos live metrics: %s", url)
    if getattr(environment, "web_ui", None) is not None:
        from repaychaos.integrations.locust_web import install

        install(environment.web_ui, live)
