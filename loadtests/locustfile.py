"""An ordinary locustfile for the reference service (or any service with its API).

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000

The users and their settings live in :mod:`repaychaos.load.locustfile` (installed
with the package, so ``repaychaos load`` and this file drive the same code); its
docstring lists the ``REPAYCHAOS_*`` environment variables.
"""

from repaychaos.load.locustfile import Repayer

__all__ = ["Repayer"]
