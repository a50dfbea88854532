"""Thin bridges to the tools people already run: a Prometheus exporter of a run's staleness
(:mod:`~repaychaos.integrations.live_metrics`), a tab in Locust's web UI
(:mod:`~repaychaos.integrations.locust_web`, installed by
:mod:`~repaychaos.integrations.locust_plugin`), and Chaos Toolkit activities
(:mod:`repaychaos.integrations.chaostoolkit`). The Grafana dashboard is
``dashboards/repaychaos-live.json``; docs/how-to/live-dashboards.md shows how to use them.
"""

__all__: list[str] = []
