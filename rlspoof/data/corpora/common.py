"""What the corpus adapters share: protocol files read line by line (a malformed line is an error
naming file and line), audio files found in folders, ids and relative paths."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from rlspoof.data.audio import AUDIO_EXTENSIONS
from rlspoof.data.manifest import BONAFIDE, LABELS, UNKNOWN
from rlspoof.data.text_files import numbered_lines, open_text
from rlspoof.errors import DataError

# Audio formats that AUDIO_EXTENSIONS does not cover: reported in `skipped`, never dropped silently.
OTHER_AUDIO = (".m4a", ".aac", ".wma", ".webm", ".mp4")


def read_protocol(
    path: Path, ncols: int, at_least: bool = False
) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(line_no, columns)`` of a whitespace protocol file, skipping blank lines.

    A wrong column count raises instead of skipping the line: it usually means the wrong file
    was given, and skipping would quietly shrink the evaluation set. Invalid UTF-8 is an error
    naming its line; a byte-order mark is dropped (see ``open_text``).
    """
    with open_text(path) as handle:
        for line_no, text in numbered_lines(handle, path):
            cols = text.split()
            if not cols:
                continue
            if len(cols) < ncols or (len(cols) > ncols and not at_least):
                expected = f"at least {ncols}" if at_least else str(ncols)
                raise DataError(
                    f"expected {expected} whitespace-separated columns, found {len(cols)}: "
                    f"{text.strip()[:100]!r}", path, line_no,
                )
            yield line_no, cols


def protocol_key(raw: str, path: Path, line: int) -> str:
    """An ASVspoof key column: strictly bonafide/spoof (anything else means misaligned columns)."""
    if raw.lower() in LABELS:
        return raw.lower()
    raise DataError(f"label {raw!r} is neither bonafide nor spoof", path, line)


def attack_of(raw: str, label: str) -> str:
    return UNKNOWN if label == BONAFIDE and raw.lower() in (UNKNOWN, BONAFIDE) else raw


def first_file(root: Path, candidates: list[Path], what: str) -> Path:
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise DataError(f"no {what} found; looked for: {tried}", root)


def audio_files(folder: Path, skipped: list[tuple[str, str]]) -> list[Path]:
    """Audio files under ``folder``, recursive and sorted; hidden files are ignored.

    Anything else that is not a regular file (a FIFO, socket, device, broken link) is listed
    in ``skipped``: opening a FIFO blocks forever, and a silent drop shrinks the corpus.
    """
    found = []
    for path in sorted(folder.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
        if hidden or path.is_dir():
            continue
        if not path.is_file():
            skipped.append((str(path), "not a regular file (FIFO, socket, device or broken link)"))
            continue
        suffix = path.suffix.lower()
        if suffix in AUDIO_EXTENSIONS:
            found.append(path)
        elif suffix in OTHER_AUDIO:
            skipped.append((str(path), f"unsupported audio format {suffix} "
                                       f"(supported: {', '.join(AUDIO_EXTENSIONS)})"))
    return found


def path_id(rel: Path) -> str:
    """utt_id from a relative path: unique where bare file names repeat across folders."""
    return rel.with_suffix("").as_posix().replace("/", "__")


def relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` where it lies below it, else absolute."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return os.path.abspath(path)
