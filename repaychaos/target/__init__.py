"""Target mode (docs/reference/target-file.md): measure user-visible staleness on someone else's service, black-box.

An engine beside ``sim`` and ``loadtests`` (it imports neither): the target file model and
loader, the users' HTTP driver, the fault action runner and the run that ties them to
the shared collectors.
"""

from repaychaos.target.loader import is_target_file, load_target, target_schema
from repaychaos.target.spec import Target
from repaychaos.target.blackbox import ActionFailed, run_target

__all__ = ["Target", "load_target", "is_target_file", "target_schema", "run_target", "ActionFailed"]
