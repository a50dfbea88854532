"""repaychaos: how often, and for how long, users see a stale "unusable" account after repaying.

The shared contract lives here: the error tree (:mod:`repaychaos.core.errors`), the metric
definitions (:mod:`repaychaos.core.metrics`), SLO evaluation (:mod:`repaychaos.slo`) and the
result record (:mod:`repaychaos.core.result`). The CLI (:mod:`repaychaos.cli`) sits on top.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
