"""Show a run's staleness live: add this file to Locust's ``-f`` list.

    locust -f loadtests/locustfile.py,loadtests/staleness.py

A "Staleness" tab in the web UI, a chart at ``/staleness``, and with
``REPAYCHAOS_METRICS_PORT=P`` Prometheus metrics at ``http://127.0.0.1:P/metrics``
(docs/how-to/locust-web-ui.md, docs/how-to/live-dashboards.md).
"""

from repaychaos.integrations.locust_plugin import on_init  # noqa: F401 - registers the init listener
