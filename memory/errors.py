"""Errors meant for a person: one line naming the file, key or line, and the reason.

Every layer raises these (or subclasses) for bad input; the CLI prints the message
without a traceback and exits non-zero. `Problem` is the other kind: something in a
file that could not be read, reported with its line while the rest is used.
"""

from dataclasses import dataclass


class UcbxError(Exception):
    """A problem a person can fix; the message is one line."""


class SpecError(UcbxError):
    """An exploration spec is invalid (file, key, reason)."""


class ConfigError(UcbxError):
    """A slot config was refused (key, reason)."""


class ParseError(UcbxError):
    """A file could not be read (file, line, reason)."""


class WriteError(UcbxError, OSError):
    """A file could not be written (file, reason): a full disk, a folder or read-only file in the way.

    Also an `OSError`, so code that handles failed writes as OS errors still does.
    """


@dataclass(frozen=True)
class Problem:
    """Something in a file that could not be read: reported with its line, never raised.

    ``str(problem)`` is ``file:line: message`` (``line N: message`` without a file).
    """

    line: int
    message: str
    path: str = ""

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.path else f"line {self.line}"
        return f"{where}: {self.message}"
