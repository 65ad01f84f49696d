"""The errors devnix reports to people: one line, a hint, and an exit code.

Everything a user can cause (bad input, an unreachable registry, a Docker engine that says no) is
raised as a :class:`DevnixError` subclass; the CLI turns it into one line on stderr and its exit code.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class DevnixError(Exception):
    """A failure with a message for people, an optional hint, and an exit code."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(DevnixError):
    """The command line asks for something that cannot be (unknown platform, bad reference)."""

    exit_code = 2


class WouldOverwriteError(DevnixError):
    """A file devnix would write already exists and --force was not given."""

    exit_code = 3


class RegistryError(DevnixError):
    """A registry could not be reached or refused a request."""

    exit_code = 4


class EngineError(DevnixError):
    """The Docker engine could not be reached or refused a request."""

    exit_code = 5


class EngineUnreachableError(EngineError):
    """No answer from the engine at all (refused, reset, or timed out); ``timed_out`` says which."""

    def __init__(self, message: str, hint: str | None = None, *, timed_out: bool = False) -> None:
        super().__init__(message, hint)
        self.timed_out = timed_out


class FileSystemError(DevnixError):
    """A file could not be read or written."""

    exit_code = 6
