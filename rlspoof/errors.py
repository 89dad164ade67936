"""Errors that users see.

Every error a user can cause with their data or configuration derives from ``RlspoofError`` so
that the CLI can print it as one clear line (no traceback) and exit non-zero. Each one names the
offending file, and the line where there is one, because "bad input" on a corpus of 100k files
is useless without a location.
"""

from __future__ import annotations

from pathlib import Path


class RlspoofError(Exception):
    """Base class for errors caused by user input (data, protocol files, configs)."""


class ConfigError(RlspoofError):
    """A recipe or override that cannot be turned into a config."""


class DataError(RlspoofError):
    """A manifest, protocol or metadata file is malformed; carries the file and line."""

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path = None if path is None else str(path)
        self.line = line
        self.reason = message
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(where + message)


class AudioError(RlspoofError):
    """An audio file cannot be used (missing, unreadable, truncated, empty, silent, NaN/Inf)."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class AugmentConfigError(RlspoofError, ValueError):
    """An augmentation spec names an unknown augmentation or parameter, or a bad value."""
