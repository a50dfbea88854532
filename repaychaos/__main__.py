"""`python -m repaychaos` is the same as the `repaychaos` command."""

from repaychaos.cli import main

main()
