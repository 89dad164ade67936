"""The manifest: one row per utterance, the currency every part of rlspoof trades in.

Corpus adapters produce manifests, datasets consume them, evaluation groups scores by their
columns (attack, source, split). A manifest is a CSV or JSONL file; relative audio paths are
resolved against the manifest's own folder so a corpus folder can be moved as a whole.
"""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TextIO

from rlspoof.data.text_files import csv_records, numbered_lines, open_text
from rlspoof.errors import DataError

BONAFIDE = "bonafide"
SPOOF = "spoof"
#: Action / class order of every policy head: index 0 is bonafide, index 1 is spoof.
LABELS: tuple[str, str] = (BONAFIDE, SPOOF)
LABEL2ID = {label: i for i, label in enumerate(LABELS)}

# Spellings seen in public corpora's metadata (In-the-Wild writes "bona-fide", Fake-or-Real
# uses "real"/"fake", ...). Anything else is an error rather than a guess.
_LABEL_SYNONYMS = {
    "bonafide": BONAFIDE,
    "bona-fide": BONAFIDE,
    "bona_fide": BONAFIDE,
    "bona fide": BONAFIDE,
    "genuine": BONAFIDE,
    "real": BONAFIDE,
    "spoof": SPOOF,
    "spoofed": SPOOF,
    "fake": SPOOF,
    "deepfake": SPOOF,
}

#: Value written where a field is unknown or does not apply (ASVspoof protocols use "-").
UNKNOWN = "-"


def normalize_label(raw: str, path: str | Path | None = None, line: int | None = None) -> str:
    """Map a corpus's label spelling onto ``bonafide`` / ``spoof``; raise naming file and line."""
    key = str(raw).strip().lower()
    if key in _LABEL_SYNONYMS:
        return _LABEL_SYNONYMS[key]
    valid = ", ".join(sorted(_LABEL_SYNONYMS))
    raise DataError(f"unknown label {_clip(raw)} (expected one of: {valid})", path, line)


def _clip(value: object, limit: int = 80) -> str:
    """``repr(value)``, cut short: a 100 kB garbage field should not fill the terminal."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


@dataclass
class ManifestRow:
    """One utterance. ``path`` is absolute or relative to the manifest's folder."""

    utt_id: str
    path: str
    label: str
    attack: str = UNKNOWN
    speaker: str = UNKNOWN
    source: str = UNKNOWN
    split: str = UNKNOWN
    language: str = UNKNOWN
    domain: str = UNKNOWN
    duration: float | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.label not in LABEL2ID:
            self.label = normalize_label(self.label)

    @property
    def label_id(self) -> int:
        return LABEL2ID[self.label]


CORE_COLUMNS = [f.name for f in fields(ManifestRow) if f.name != "extra"]
REQUIRED_COLUMNS = ("utt_id", "path", "label")


class Manifest(Sequence[ManifestRow]):
    """An ordered list of rows plus the folder that relative paths are resolved against."""

    def __init__(self, rows: Iterable[ManifestRow], root: str | Path | None = None,
                 origin: str | Path | None = None):
        self.rows = list(rows)
        self.root = Path(root) if root is not None else Path.cwd()
        self.origin = str(origin) if origin is not None else None
        self._check_unique_ids()

    def _check_unique_ids(self) -> None:
        seen: dict[str, int] = {}
        for i, row in enumerate(self.rows):
            if row.utt_id in seen:
                raise DataError(
                    f"duplicate utt_id {row.utt_id!r} (rows {seen[row.utt_id] + 1} and {i + 1})",
                    self.origin,
                )
            seen[row.utt_id] = i

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return Manifest(self.rows[index], self.root, self.origin)
        return self.rows[index]

    def audio_path(self, row: ManifestRow) -> Path:
        path = Path(row.path)
        return path if path.is_absolute() else self.root / path

    def filter(self, **conditions: str | Sequence[str]) -> Manifest:
        """Rows whose columns match, e.g. ``filter(split="train", label="spoof")``.

        A sequence value matches any of its members.
        """
        def matches(row: ManifestRow) -> bool:
            for key, wanted in conditions.items():
                value = getattr(row, key) if hasattr(row, key) else row.extra.get(key)
                allowed = {wanted} if isinstance(wanted, str) else set(wanted)
                if value not in allowed:
                    return False
            return True

        return Manifest([r for r in self.rows if matches(r)], self.root, self.origin)

    def counts(self, *by: str) -> Counter:
        """Row counts keyed by the tuple of the given columns."""
        return Counter(tuple(getattr(r, b) for b in by) for r in self.rows)


# --- reading and writing -------------------------------------------------------------------


def parse_duration(raw: object, path: str | Path | None = None, line: int | None = None,
                   *, negative_is_unknown: bool = False) -> float | None:
    """Seconds from a manifest or protocol cell; blank or ``-`` is unknown (None).

    Anything else must be a finite number >= 0: a NaN or negative duration would silently
    poison every total (hours, length-sorted batches), and NaN is not even valid JSON.
    ``negative_is_unknown`` is for formats whose convention writes -1 for "not measured".
    """
    if isinstance(raw, str):
        raw = raw.strip()
    if raw in (None, "", UNKNOWN):
        return None
    if isinstance(raw, bool):  # JSON true would pass as 1.0
        raise DataError(f"duration {raw!r} is not a number", path, line)
    try:
        value = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):  # JSON gives lists, dicts, huge ints
        raise DataError(f"duration {_clip(raw)} is not a number", path, line) from None
    if negative_is_unknown and value < 0:
        return None
    if not (math.isfinite(value) and value >= 0):
        raise DataError(f"duration {_clip(raw)} must be a finite number of seconds >= 0 "
                        "(leave the cell empty if unknown)", path, line)
    return value


def _row_from_record(record: dict[str, object], path: Path, line: int) -> ManifestRow:
    missing = [c for c in REQUIRED_COLUMNS if not str(record.get(c) or "").strip()]
    if missing:
        raise DataError(f"missing value for required column(s) {', '.join(missing)}", path, line)
    core: dict[str, object] = {}
    extra = {}
    for key, value in record.items():
        if key in CORE_COLUMNS:
            core[key] = value
        elif value not in (None, ""):
            extra[key] = str(value)
    core["label"] = normalize_label(core["label"], path, line)  # type: ignore[arg-type]
    duration = core.pop("duration", None)
    for key in list(core):
        text = "" if core[key] is None else str(core[key]).strip()
        if text:
            core[key] = text
        else:
            del core[key]  # blank: fall back to the dataclass default
    duration = parse_duration(duration, path, line)
    if duration is not None:
        core["duration"] = duration
    return ManifestRow(**core, extra=extra)  # type: ignore[arg-type]


MANIFEST_SUFFIXES = (".csv", ".tsv", ".jsonl")


def check_manifest_path(path: str | Path, *, output: bool = False) -> Path:
    """``path`` as a manifest to read (or, with ``output``, to write), else a ``DataError``.

    Writers check too, so that nothing writes a manifest that ``read_manifest`` then refuses,
    and a command can check its ``--out`` before hours of work rather than after.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError("is a folder, not a manifest file", path)
    if path.suffix.lower() not in MANIFEST_SUFFIXES:
        raise DataError(f"a manifest must end in {', '.join(MANIFEST_SUFFIXES)}", path)
    if output:
        return check_output_file(path)
    if not path.is_file():
        raise DataError("manifest file does not exist" if not path.exists()
                        else "not a regular file", path)
    return path


def check_output_file(path: str | Path) -> Path:
    """``path`` as a file to write: not a folder, and below folders (a file in the way of
    ``mkdir`` is a one-line error here, not a FileExistsError after the work is done)."""
    path = Path(path)
    if path.is_dir():
        raise DataError("is a folder, not a file", path)
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise DataError(f"cannot write here: {parent} is not a folder", path)
            break
    return path


def read_manifest(path: str | Path) -> Manifest:
    """Read a manifest from ``.csv``, ``.tsv`` or ``.jsonl``; errors name the file and line.

    A manifest without rows is an error too: every consumer (training, scoring, summaries)
    would otherwise fail later and further from the cause, or report on nothing.
    """
    path = check_manifest_path(path)
    suffix = path.suffix.lower()
    rows: list[ManifestRow] = []
    first_line: dict[str, int] = {}
    with open_text(path) as handle:
        records = (_jsonl_records(handle, path) if suffix == ".jsonl"
                   else _header_records(handle, path, "\t" if suffix == ".tsv" else ","))
        for line_no, record in records:
            row = _row_from_record(record, path, line_no)
            first = first_line.setdefault(row.utt_id, line_no)
            if first != line_no:
                raise DataError(f"duplicate utt_id {_clip(row.utt_id)} (first at line {first})",
                                path, line_no)
            rows.append(row)
    if not rows:
        raise DataError("manifest has no rows", path)
    return Manifest(rows, root=path.parent, origin=path)


def _jsonl_records(handle: TextIO, path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    """``(line, object)`` for each non-blank line of a JSONL manifest."""
    for line_no, text in numbered_lines(handle, path):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"invalid JSON: {exc.msg}", path, line_no) from None
        except RecursionError:
            raise DataError("invalid JSON: nested too deeply", path, line_no) from None
        except ValueError as exc:  # e.g. an integer beyond Python's 4300-digit limit
            reason = str(exc).split(":")[0]
            raise DataError(f"invalid JSON: {reason}", path, line_no) from None
        if not isinstance(record, dict):
            raise DataError("each JSONL line must be an object", path, line_no)
        yield line_no, record


def _header_records(handle: TextIO, path: Path,
                    delimiter: str) -> Iterator[tuple[int, dict[str, object]]]:
    """``(line, column -> cell)`` for each record of a CSV/TSV manifest, after checking the
    header: present, with the required columns, none named twice."""
    records = csv_records(handle, path, delimiter)
    header_line, header = next(records, (1, []))
    if not header:
        raise DataError(f"file is empty; expected a header line naming "
                        f"{', '.join(REQUIRED_COLUMNS)}", path, header_line)
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise DataError(
            f"header lacks required column(s) {', '.join(missing)}; "
            f"found {_clip(header, 200)}",
            path, header_line,
        )
    twice = sorted({name for name in header if name and header.count(name) > 1})
    if twice:  # a dict would keep only the last of them: a silently lost column
        raise DataError(f"header names column(s) {', '.join(twice)} more than once",
                        path, header_line)
    for line_no, cells in records:
        if len(cells) != len(header):
            more = "more" if len(cells) > len(header) else "fewer"
            raise DataError(f"row has {more} cells ({len(cells)}) than the header has "
                            f"columns ({len(header)})", path, line_no)
        record = {}
        for name, value in zip(header, cells, strict=True):
            if name:
                record[name] = value
            elif value.strip():
                raise DataError("a cell has a value but its column has no name in the "
                                "header", path, line_no)
        yield line_no, record


def _record(row: ManifestRow) -> dict[str, object]:
    record = asdict(row)
    extra = record.pop("extra")
    if record["duration"] is not None:
        record["duration"] = round(record["duration"], 4)
    record.update(extra)
    return record


def write_manifest(manifest: Manifest | Iterable[ManifestRow], path: str | Path) -> Path:
    """Write CSV, TSV or JSONL (by extension). Paths are written as stored in the rows."""
    path = check_manifest_path(path, output=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    records = [_record(r) for r in manifest]
    extra_cols = sorted({k for r in records for k in r} - set(CORE_COLUMNS))
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        if path.suffix.lower() == ".jsonl":
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            writer = csv.DictWriter(handle, fieldnames=CORE_COLUMNS + extra_cols,
                                    delimiter="\t" if path.suffix.lower() == ".tsv" else ",")
            writer.writeheader()
            for record in records:
                writer.writerow({k: ("" if v is None else v) for k, v in record.items()})
    tmp.replace(path)  # atomic: a reader never sees half a manifest
    return path


def relocate(manifest: Manifest, new_root: str | Path) -> Manifest:
    """Rewrite row paths relative to ``new_root`` (used before writing a manifest elsewhere)."""
    new_root = Path(new_root).resolve()
    rows = []
    for row in manifest:
        absolute = manifest.audio_path(row).resolve()
        try:
            rel = absolute.relative_to(new_root)
            new_path = rel.as_posix()
        except ValueError:
            new_path = str(absolute)
        rows.append(ManifestRow(**{**asdict(row), "path": new_path}))
    return Manifest(rows, new_root, manifest.origin)


def concat_manifests(manifests: Sequence[Manifest]) -> Manifest:
    """One manifest from several (paths made absolute); a utt_id in two of them is an error."""
    if len(manifests) == 1:
        return manifests[0]
    rows = [ManifestRow(**{**asdict(row), "path": str(m.audio_path(row).resolve())})
            for m in manifests for row in m]
    return Manifest(rows, None, " + ".join(str(m.origin) for m in manifests))


def summarize(manifest: Manifest) -> list[dict[str, object]]:
    """Counts per (split, attack): the table `rlspoof data` commands print and JSON consumers read.

    Bonafide rows form their own line per split (attack ``-``); hours are ``None`` when the
    manifest does not record durations.
    """
    groups: dict[tuple[str, str], list[ManifestRow]] = {}
    for row in manifest:
        groups.setdefault((row.split, row.attack if row.label == SPOOF else UNKNOWN), []).append(row)
    table = []
    split_order = {split: i for i, split in enumerate(dict.fromkeys(r.split for r in manifest))}
    ordered = sorted(groups.items(), key=lambda kv: (split_order[kv[0][0]], kv[0][1] != UNKNOWN, kv[0][1]))
    for (split, attack), rows in ordered:
        durations = [r.duration for r in rows]
        table.append({
            "split": split,
            "attack": attack,
            "bonafide": sum(r.label == BONAFIDE for r in rows),
            "spoof": sum(r.label == SPOOF for r in rows),
            "speakers": len({r.speaker for r in rows} - {UNKNOWN}),
            "hours": None if None in durations else round(sum(durations) / 3600, 3),
        })
    return table
