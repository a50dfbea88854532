"""An ordinary locustfile: the repaying users of every repaychaos load run.

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000

Against the reference service by default (its built-in description); any other service
through its description in the target file format, as JSON in ``REPAYCHAOS_API``. The
users and their settings live in :mod:`repaychaos.load.locustfile` (installed with the
package, so ``repaychaos load``, ``repaychaos load --target`` and this file drive the same
code); its docstring lists the ``REPAYCHAOS_*`` environment variables.
"""

from repaychaos.load.locustfile import Repayer

__all__ = ["Repayer"]
