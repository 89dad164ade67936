"""The corpus registry (``register_corpus``) and ``prepare_corpus``: a corpus folder, read by its
adapter, checked and written as a manifest; every dropped row is reported."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from rlspoof.data.audio import audio_info
from rlspoof.data.manifest import (
    UNKNOWN,
    Manifest,
    ManifestRow,
)
from rlspoof.errors import AudioError, DataError, RlspoofError

CHECK_AUDIO = ("none", "exists", "read")


@dataclass
class Entry:
    """A row plus where it came from (protocol file and 1-based line), for error messages."""

    row: ManifestRow
    origin: Path | None = None
    line: int | None = None


@dataclass
class CorpusScan:
    """What an adapter found, before the audio checks; row paths are relative to ``root``."""

    root: Path
    entries: list[Entry]
    skipped: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class PrepareResult:
    manifest: Manifest
    #: (audio path or utt_id, reason) for every row or file left out.
    skipped: list[tuple[str, str]] = field(default_factory=list)


Adapter = Callable[..., CorpusScan]


CORPORA: dict[str, Adapter] = {}


def register_corpus(name: str) -> Callable[[Adapter], Adapter]:
    """Decorator adding an adapter ``fn(root: Path, **options) -> CorpusScan`` to ``CORPORA``."""

    def decorate(fn: Adapter) -> Adapter:
        if name in CORPORA:
            raise ValueError(f"corpus {name!r} is already registered")
        CORPORA[name] = fn
        return fn

    return decorate


def list_corpora() -> list[str]:
    return sorted(CORPORA)


def get_adapter(name: str) -> Adapter:
    """The adapter for ``name`` (case and ``-``/``_`` insensitive); errors suggest the closest."""
    return CORPORA[_corpus_key(name)]


def _corpus_key(name: str) -> str:
    key = name.strip().lower().replace("-", "_")
    if key in CORPORA:
        return key
    close = difflib.get_close_matches(key, CORPORA, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise DataError(f"unknown corpus {name!r}{hint} (valid: {', '.join(list_corpora())})")


def prepare_corpus(
    name: str,
    root: str | Path,
    *,
    check_audio: str = "exists",
    skip_bad: bool = False,
    **options: object,
) -> PrepareResult:
    """Read corpus ``name`` at ``root`` into a manifest sorted by utt_id, checking its audio.

    ``check_audio``: ``none``, ``exists`` (file is there) or ``read`` (header readable, not empty).
    Bad audio raises ``DataError`` naming the file (and protocol line) unless ``skip_bad``, which
    drops those rows and lists them in ``skipped``. Malformed protocol lines always raise.
    """
    source = _corpus_key(name)
    adapter = CORPORA[source]
    if check_audio not in CHECK_AUDIO:
        raise RlspoofError(
            f"check_audio must be one of {', '.join(CHECK_AUDIO)}, got {check_audio!r}"
        )
    accepted = [p for p in inspect.signature(adapter).parameters if p != "root"]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise RlspoofError(
            f"corpus {name!r} does not take option(s) {', '.join(unknown)}; "
            f"it takes: {', '.join(accepted) or 'no options'}"
        )
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError("corpus root does not exist", root)
    scan = adapter(root, **options)
    if not scan.entries:
        note = f"; skipped {len(scan.skipped)}, e.g. {scan.skipped[0]}" if scan.skipped else ""
        raise DataError(f"no utterances found for corpus {source!r}{note}", root)
    seen: dict[str, Entry] = {}
    for entry in scan.entries:
        first = seen.setdefault(entry.row.utt_id, entry)
        if first is not entry:
            raise DataError(
                f"duplicate utt_id {entry.row.utt_id!r} (first at {_where(first)})",
                entry.origin, entry.line,
            )
        if entry.row.source == UNKNOWN:
            entry.row.source = source
    skipped = list(scan.skipped)
    bad = _bad_audio(scan, check_audio)
    if bad and not skip_bad:
        entry, audio, reason = bad[0]
        more = f"; {len(bad) - 1} more row(s) with bad audio" if len(bad) > 1 else ""
        hint = f"{more} (prepare with skip_bad=True to drop and list them)"
        if entry.origin is None:
            raise DataError(f"{reason}{hint}", audio)
        raise DataError(
            f"audio {audio} for {entry.row.utt_id!r}: {reason}{hint}", entry.origin, entry.line
        )
    dropped = {id(entry) for entry, _, _ in bad}
    skipped += [(str(audio), f"{reason} (utt_id {e.row.utt_id}, from {_where(e)})")
                for e, audio, reason in bad]
    rows = sorted((e.row for e in scan.entries if id(e) not in dropped), key=lambda r: r.utt_id)
    if not rows:
        raise DataError(f"no usable rows: all {len(bad)} have bad audio, e.g. {bad[0][1]}: "
                        f"{bad[0][2]}", root)
    return PrepareResult(Manifest(rows, root=scan.root, origin=root), skipped)


def _where(entry: Entry) -> str:
    if entry.origin is None:
        return entry.row.path
    return f"{entry.origin}:{entry.line}" if entry.line is not None else str(entry.origin)


def _audio_problem(path: Path, mode: str) -> str | None:
    """Why ``path`` is unusable, or None; ``read`` opens the header only, which is cheap."""
    if mode == "exists":
        if path.is_file():
            return None
        return "not a regular file" if path.exists() else "file does not exist"
    try:
        info = audio_info(path)
    except AudioError as exc:
        return exc.reason
    return "empty audio (0 samples)" if info.frames == 0 else None


def _bad_audio(scan: CorpusScan, mode: str) -> list[tuple[Entry, Path, str]]:
    if mode == "none":
        return []
    paths = [Path(e.row.path) if Path(e.row.path).is_absolute() else scan.root / e.row.path
             for e in scan.entries]
    # Threads: on network storage a stat per file dominates, and it releases the GIL.
    with ThreadPoolExecutor(max_workers=16) as pool:
        problems = list(pool.map(lambda p: _audio_problem(p, mode), paths))
    return [(e, p, why) for e, p, why in zip(scan.entries, paths, problems, strict=True)
            if why is not None]
