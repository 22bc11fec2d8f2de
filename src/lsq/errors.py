"""The LSQ exception tree.

One root, `LsqError`; branches by where the fault lies: the manifest the user
wrote (`ManifestError`), the command line (`UsageError`), a service at run time
(`ServiceError`), the running runtime (`RuntimeNotRunning`, `ControlError`).
The CLI maps each branch to an exit code in one place (`lsq.cli._main`).

Messages follow one shape: where, what was expected, what was found, the fix.
"""

from __future__ import annotations

from dataclasses import dataclass


class LsqError(Exception):
    """Root of every error LSQ raises on purpose."""

    exit_code: int = 1


class UsageError(LsqError):
    """The command line asked for something that cannot be done as asked."""

    exit_code = 2


@dataclass(frozen=True)
class Mark:
    """A place in a file: 1-based line and column."""

    file: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


class ManifestError(LsqError):
    """`lsq.yaml`, an override file or an `.env` file is wrong.

    Always carries the place; `str()` gives the one-line message the user sees.
    """

    exit_code = 2

    def __init__(self, message: str, *, mark: Mark | None = None, fix: str = "") -> None:
        self.message = message
        self.mark = mark
        self.fix = fix
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.mark}: " if self.mark else ""
        fix = f"; {self.fix}" if self.fix else ""
        return f"{where}{self.message}{fix}"


class ServiceError(LsqError):
    """A service could not be started, stopped or reached."""


class GatewayError(ServiceError):
    """The gateway could not bind a port, or a worker failed to answer."""


class StartupFailed(ServiceError):
    """`lsq up` gave up: a service failed or a start-up deadline passed."""


class RuntimeNotRunning(LsqError):
    """No runtime is running for this app (or only a stale lock was found)."""

    exit_code = 1


class RuntimeAlreadyRunning(LsqError):
    """A live runtime already owns this app folder."""

    exit_code = 1


class ControlError(LsqError):
    """The control API refused a request or answered with an error."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        self.status = status
        super().__init__(message)


class BadRequest(ControlError, UsageError):
    """The control API refused a request as invalid (an unknown service, a bad
    value): the user's input is at fault, so the exit code is 2."""
