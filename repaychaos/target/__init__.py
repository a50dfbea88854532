"""The target file format (docs/reference/target-file.md): a description of a repayment API.

What the load users need to drive a service they see only through its HTTP API: the
file's spec and loader, its placeholders, the reference service's own built-in
description, and the runner of its fault actions. The run itself (``repaychaos load
--target``) is :func:`repaychaos.load.blackbox.run_target`, on the one load engine.
"""

from repaychaos.target.loader import is_target_file, load_target, target_schema
from repaychaos.target.spec import Target

__all__ = ["Target", "load_target", "is_target_file", "target_schema"]
