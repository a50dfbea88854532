"""repaychaos: how often, and for how long, users see a stale "unusable" account after repaying.

The shared contract lives in :mod:`repaychaos.core`: the error tree (``errors``), the
metric names (``catalog``), the records both sources report (``records``), the collectors
(``collector``), the interval estimators (``stats``) and the result record with its SLO
verdicts (``result``). The CLI (:mod:`repaychaos.cli`) sits on top.
"""

__all__ = ["__version__"]
__version__ = "0.1.0"
