"""Reading text files (manifests, protocols, lists) so that every failure is a ``DataError``
naming the file and the line: invalid UTF-8, an unterminated quote, a malformed record."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from rlspoof.errors import DataError

__all__ = ["csv_records", "numbered_lines", "open_text"]


_UNDECODABLE = re.compile("[\udc80-\udcff]")


def open_text(path: Path, encoding: str = "utf-8-sig") -> TextIO:
    """Open a text file so that invalid UTF-8 can be reported with its line, not as a
    UnicodeDecodeError from somewhere in a buffer: read it through ``numbered_lines`` or
    ``csv_records``, which turn the undecodable bytes (kept as lone surrogates) into errors.

    ``utf-8-sig`` drops a byte-order mark (Excel and Windows editors write one), which would
    otherwise stick to the first header name or the first protocol line's speaker."""
    return path.open(newline="", encoding=encoding, errors="surrogateescape")


class _Lines:
    """Physical lines of a file from ``open_text``, counted and checked as they are read."""

    def __init__(self, handle: TextIO, path: Path):
        self._handle = handle
        self._path = path
        self.count = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        text = next(self._handle)
        self.count += 1
        bad = _UNDECODABLE.search(text)
        if bad:
            byte = ord(bad.group()) - 0xDC00
            raise DataError(f"not valid UTF-8 (byte 0x{byte:02x} at column {bad.start() + 1})",
                            self._path, self.count)
        return text


def numbered_lines(handle: TextIO, path: Path) -> Iterator[tuple[int, str]]:
    """``(1-based line number, text)`` for each line of a file opened with ``open_text``."""
    lines = _Lines(handle, path)
    for text in lines:
        yield lines.count, text


def csv_records(
    handle: TextIO, path: Path, delimiter: str = ",", single_line: bool = False
) -> Iterator[tuple[int, list[str]]]:
    """``(line where the record starts, cells)`` for each non-blank record of a CSV file.

    Quoting is strict, so an unterminated quote is an error at its own line rather than a
    field that swallows the rows after it. ``single_line`` also rejects a record that spans
    lines, for files whose fields never hold a newline (corpus metadata).
    """
    lines = _Lines(handle, path)
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    while True:
        start = lines.count + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            runs_on = f"; the record runs on to line {lines.count}" if lines.count > start else ""
            raise DataError(f"malformed CSV ({exc}{runs_on}; unterminated quote?)",
                            path, start) from None
        if single_line and lines.count > start:
            raise DataError(f"quoted field runs on to line {lines.count} (unterminated quote?)",
                            path, start)
        if cells:
            yield start, cells
