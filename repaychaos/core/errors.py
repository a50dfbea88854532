"""The whole error surface of repaychaos, in one place.

The CLI maps these to exit codes and one-line messages: load-time ``Invalid*`` errors
(bad input, exit 2) are kept apart from run-time ``RunFailed`` (exit 1 or other).
Foreign errors are translated at the boundary (``raise X(...) from None``) so callers
only ever see these classes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "RepaychaosError",
    "InvalidInput",
    "InvalidScenario",
    "ScenarioProblem",
    "InvalidResult",
    "InvalidOption",
    "RunFailed",
    "UnsafeTarget",
]


class RepaychaosError(Exception):
    """Root of every error repaychaos raises on purpose."""

    exit_code = 1


class InvalidInput(RepaychaosError):
    """Something the user handed us is wrong; nothing has run (exit 2)."""

    exit_code = 2


@dataclass(frozen=True)
class ScenarioProblem:
    """One problem in a scenario file: where it is, what was expected, what was found."""

    file: str
    line: int | None
    path: str
    expected: str
    found: str | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" {self.path}:" if self.path else ""
        text = f"{where}:{key} expected {self.expected}"
        if self.found is not None:
            text += f", found {self.found}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class InvalidScenario(InvalidInput):
    """A scenario file failed to load or validate; carries every problem found."""

    def __init__(self, problems: list[ScenarioProblem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class InvalidResult(InvalidInput):
    """A result.json file is missing, unreadable or not a repaychaos result."""


class InvalidOption(InvalidInput):
    """A command-line option has a bad value (e.g. an unknown --vary key)."""


class UnsafeTarget(InvalidInput):
    """Load was aimed at a non-loopback host without the explicit opt-in flag."""


class RunFailed(RepaychaosError):
    """A run started but could not finish (service died, worker crashed, ...)."""

    exit_code = 3
