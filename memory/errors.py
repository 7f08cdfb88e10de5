"""Errors meant for a person: one line naming the file, key or line, and the reason.

Every layer raises these (or subclasses) for bad input; the CLI prints the message
without a traceback and exits non-zero.
"""


class UcbxError(Exception):
    """A problem a person can fix; the message is one line."""


class SpecError(UcbxError):
    """An exploration spec is invalid (file, key, reason)."""


class ConfigError(UcbxError):
    """A slot config was refused (key, reason)."""


class ParseError(UcbxError):
    """A file could not be read (file, line, reason)."""
