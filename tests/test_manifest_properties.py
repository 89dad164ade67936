"""Property-based hardening of manifest and protocol parsing (hypothesis).

The project rule: bad input is a ``DataError`` that names the file (and the line, for text
formats), never a bare traceback (UnicodeDecodeError, csv.Error, TypeError, RecursionError...)
and never a silently dropped row. Every example writes its files into a fresh temporary folder.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import astuple, replace
from pathlib import Path

import numpy as np
import soundfile as sf
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from rlspoof.data.corpora import prepare_corpus
from rlspoof.data.manifest import (
    CORE_COLUMNS,
    UNKNOWN,
    Manifest,
    ManifestRow,
    normalize_label,
    read_manifest,
    write_manifest,
)
from rlspoof.errors import DataError

SETTINGS = settings(max_examples=80, deadline=None)
FEW = settings(max_examples=25, deadline=None)

# csv's default field size limit is 128 KiB; a longer field must be a DataError, not csv.Error.
HUGE = "x" * 140_000


@contextmanager
def _tmp() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def _assert_names(err: DataError, path: Path, line: int | None = None) -> None:
    """The error names the file, and the given 1-based line, in its attributes and message."""
    assert err.path == str(path), (err.path, str(path), str(err))
    assert str(path) in str(err)
    if line is not None:
        assert err.line == line, f"expected line {line}: {err}"
        assert f"{path}:{line}: " in str(err)


def _key(row: ManifestRow) -> tuple:
    """Row as a tuple, extras sorted."""
    return astuple(replace(row, extra={})) + (tuple(sorted(row.extra.items())),)


def _same_rows(got, expected) -> None:
    assert [_key(r) for r in got] == [_key(r) for r in expected]


def _line_breaks(text: str) -> int:
    """Physical line breaks as Python's text reader counts them (newline=''): \\r\\n, \\r, \\n."""
    return len(re.findall(r"\r\n|\r|\n", text))


class _Invalid(Exception):
    """The reference says this record must be rejected."""


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _expected_row(record: dict[str, object]) -> ManifestRow:
    """The documented reading of one record (CSV cells or a JSON object), or ``_Invalid``.

    Required columns must be non-blank; core text columns are stripped and a blank one takes
    the default; ``duration`` is blank/``-`` (unknown) or a number; other non-empty columns go
    to ``extra`` unchanged; the label must be a known spelling.
    """
    # A falsy JSON value (0, false, [], {}) counts as missing, like an empty string.
    if any(not str(record.get(c) or "").strip() for c in ("utt_id", "path", "label")):
        raise _Invalid("missing required value")
    try:
        label = normalize_label(_text(record["label"]))
    except DataError:
        raise _Invalid("label") from None
    core: dict[str, object] = {}
    for col in CORE_COLUMNS:
        if col in ("label", "duration") or col not in record:
            continue
        value = _text(record[col]).strip()
        if value:
            core[col] = value
    raw = record.get("duration")
    if isinstance(raw, str):
        raw = raw.strip()
    duration = None
    if raw not in (None, "", UNKNOWN):
        try:
            duration = float(raw)  # type: ignore[arg-type]
        except (TypeError, ValueError, OverflowError):
            raise _Invalid("duration") from None
        if isinstance(raw, bool) or not math.isfinite(duration) or duration < 0:
            raise _Invalid("duration")  # NaN would print as invalid JSON, < 0 poisons totals
    extra = {k: str(v) for k, v in record.items()
             if k not in CORE_COLUMNS and v is not None and v != ""}
    return ManifestRow(**core, label=label, duration=duration, extra=extra)  # type: ignore[arg-type]


# --- strategies ------------------------------------------------------------------------------

# Lone surrogates cannot be written as UTF-8 at all, so they are no valid manifest content.
CHARS = st.characters(blacklist_categories=("Cs",))
TRICKY = st.sampled_from([
    "a,b", '"quoted"', 'say "hi", then', "ünïcödé/路径.wav", "tab\there", "semi;colon",
    "new\nline", "cr\rlf\r\nend", "nul\x00byte", "🎙️ emoji", "-", "=1+2", "\\back\\slash",
])


def _stripped() -> st.SearchStrategy[str]:
    """Non-empty text without surrounding whitespace (core columns are stripped on reading)."""
    return st.one_of(st.text(CHARS, min_size=1, max_size=16), TRICKY).map(str.strip).filter(bool)


@st.composite
def manifest_rows(draw, max_rows: int = 5) -> list[ManifestRow]:
    ids = draw(st.lists(_stripped(), min_size=1, max_size=max_rows, unique=True))
    rows = []
    for utt in ids:
        optional = {col: draw(st.none() | _stripped())
                    for col in ("attack", "speaker", "source", "split", "language", "domain")}
        rows.append(ManifestRow(
            utt_id=utt,
            path=draw(_stripped()),
            label=draw(st.sampled_from(["bonafide", "spoof", "bona-fide", "fake", "REAL"])),
            **{k: v for k, v in optional.items() if v is not None},
            duration=draw(st.none() | st.floats(0, 1e6, allow_nan=False)),
            extra=draw(st.dictionaries(_stripped().filter(lambda k: k not in CORE_COLUMNS),
                                       st.text(CHARS, min_size=1, max_size=12), max_size=3)),
        ))
    return rows


# --- round trip ------------------------------------------------------------------------------


@SETTINGS
@given(rows=manifest_rows(), suffix=st.sampled_from([".csv", ".tsv", ".jsonl"]))
@example(rows=[ManifestRow("id,1", 'a "b".wav', "spoof", speaker="Obama, Barack",
                           extra={"note": "x\r\ny", "k": " padded "})], suffix=".csv")
@example(rows=[ManifestRow("0", "p\u2028q.wav", "bonafide", extra={"n": "\x85"})],
         suffix=".jsonl")
@example(rows=[ManifestRow("u1", "a\tb.wav", "spoof")], suffix=".tsv")  # TSV was written as CSV
def test_write_read_round_trip(rows: list[ManifestRow], suffix: str):
    with _tmp() as tmp:
        path = write_manifest(Manifest(rows), tmp / f"m{suffix}")
        back = read_manifest(path)
    expected = [replace(r, duration=None if r.duration is None else round(r.duration, 4))
                for r in rows]
    _same_rows(back, expected)
    assert back.root == path.parent and back.origin == str(path)


# --- arbitrary bytes -------------------------------------------------------------------------


def _valid_bytes(suffix: str) -> bytes:
    rows = [ManifestRow("u1", "a.wav", "bonafide", duration=1.5, extra={"note": "a, b"}),
            ManifestRow("u2", "b.wav", "spoof", attack="A07")]
    with _tmp() as tmp:
        return write_manifest(rows, tmp / f"m{suffix}").read_bytes()


@st.composite
def mutated(draw, valid: bytes) -> bytes:
    """A valid file with a few bytes inserted, deleted or overwritten (reaches the parser)."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "overwrite"]))
        junk = draw(st.binary(min_size=1, max_size=8))
        if op == "insert":
            data[pos:pos] = junk
        elif op == "delete":
            del data[pos:pos + len(junk)]
        else:
            data[pos:pos + len(junk)] = junk
    return bytes(data)


@SETTINGS
@given(data=st.data(), suffix=st.sampled_from([".csv", ".tsv", ".jsonl"]))
@example(data=b"\xff\xfe\x00\x01", suffix=".csv")  # was UnicodeDecodeError
@example(data=b"utt_id,path,label\nu1,a.wav,spoof\nu2,b\xe9.wav,spoof\n", suffix=".csv")
@example(data=b"utt_id,path,label\nu1,a.wav,\"" + HUGE.encode() + b"\n", suffix=".csv")  # csv.Error
@example(data=b"[" * 100_000, suffix=".jsonl")  # was RecursionError
@example(data=b'{"utt_id":"u","path":"p","label":"spoof","duration":' + b"1" * 5000 + b"}",
         suffix=".jsonl")  # was ValueError (int digit limit)
@example(data=b'{"utt_id":"u","path":"p","label":"spoof","duration":[1]}', suffix=".jsonl")
@example(data=b'{"utt_id":"u","path":"p","label":"spoof","duration":1' + b"0" * 400 + b"}",
         suffix=".jsonl")  # was OverflowError (int too large for float)
def test_read_manifest_arbitrary_bytes(data, suffix: str):
    if not isinstance(data, bytes):  # st.data(): draw random or mutated-valid bytes
        data = data.draw(st.one_of(st.binary(max_size=400), mutated(_valid_bytes(suffix))))
    with _tmp() as tmp:
        path = tmp / f"m{suffix}"
        path.write_bytes(data)
        try:
            manifest = read_manifest(path)
        except DataError as err:
            _assert_names(err, path)
        else:
            assert all(isinstance(r, ManifestRow) for r in manifest)
            assert len({r.utt_id for r in manifest}) == len(manifest)


# --- structured CSV fuzz ---------------------------------------------------------------------

HEADER = ["utt_id", "path", "label", "attack", "speaker", "split", "duration", "note"]
SIMPLE = st.text("abcXYZ019_-./ ;", min_size=1, max_size=8)  # no quotes, commas or newlines
FIELD_VALUES = st.one_of(
    st.text(CHARS, max_size=20), TRICKY, st.just(""), st.just("   "), st.just(HUGE),
    st.sampled_from(["fake", " Bona-Fide ", "maybe", "1e3", "nan", " - ", "-1", "1_0", "x\x00y"]),
)


@st.composite
def base_csv_rows(draw) -> list[list[str]]:
    n = draw(st.integers(2, 5))
    rows = []
    for i in range(n):
        rows.append([
            f"u{i}", f"audio/u{i}.wav", draw(st.sampled_from(["bonafide", "spoof", "fake"])),
            draw(st.sampled_from(["-", "A07", ""])), draw(SIMPLE), "train",
            draw(st.sampled_from(["", "1.25", "-", "3"])), draw(st.sampled_from(["", "a; b"])),
        ])
    return rows


def _csv_line(cells: list[str]) -> str:
    out = io.StringIO()
    csv.writer(out).writerow(cells)  # default \r\n terminator: \r and \n in cells get quoted
    return out.getvalue()


def _reference_cells(text: str) -> list[list[str]]:
    """Python's csv (strict) on one record's text: the records it holds, or ``_Invalid``."""
    try:
        return list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error:
        raise _Invalid("csv") from None


@st.composite
def csv_case(draw):
    rows = draw(base_csv_rows())
    k = draw(st.integers(0, len(rows) - 1))
    kind = draw(st.sampled_from(["field", "extra_cell", "missing_cell", "bad_utf8", "truncate",
                                 "garbage", "blank"]))
    cells = list(rows[k])
    if kind == "field":
        cells[draw(st.integers(0, len(cells) - 1))] = draw(FIELD_VALUES)
        line = _csv_line(cells).encode("utf-8")
    elif kind == "extra_cell":
        line = _csv_line(cells + draw(st.lists(FIELD_VALUES, min_size=1, max_size=3))).encode()
    elif kind == "missing_cell":
        del cells[draw(st.integers(0, len(cells) - 1))]
        line = _csv_line(cells).encode()
    elif kind == "bad_utf8":
        raw = _csv_line(cells).encode()
        pos = draw(st.integers(0, len(raw) - 2))
        junk = draw(st.sampled_from([b"\xff", b"\xc3", b"\x80", b"\xed\xa0\x80", b"\xf8\x88"]))
        line = raw[:pos] + junk + raw[pos:]
    elif kind == "truncate":
        raw = _csv_line(cells).rstrip("\r\n")
        line = (raw[:draw(st.integers(0, len(raw) - 1))] + "\r\n").encode()
    elif kind == "garbage":
        junk = draw(st.binary(min_size=1, max_size=40)).replace(b"\n", b"").replace(b"\r", b"")
        line = junk + b"\r\n"
    else:
        line = b"\r\n"
    return rows, k, kind, line


def _expected_outcome(rows: list[list[str]], k: int, line: bytes, starts: list[int]):
    """(rows, None) for a file that must parse, or (None, line) where the DataError must point."""
    try:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise _Invalid("utf-8") from None
        records = [r for r in _reference_cells(text) if r]  # a blank line is no record
        assert len(records) <= 1, "a corrupted line holds at most one record here"
        records_by_row: list[list[str] | None] = [list(r) for r in rows]
        records_by_row[k] = records[0] if records else None
        expected: list[tuple[int, ManifestRow]] = []
        for i, cells in enumerate(records_by_row):
            if cells is None:
                continue
            if len(cells) != len(HEADER):
                raise _Invalid("cell count")
            expected.append((i, _expected_row(dict(zip(HEADER, cells, strict=True)))))
    except _Invalid:
        return None, starts[k]
    seen: dict[str, int] = {}
    for i, row in expected:  # a corrupted utt_id may collide: the later line is the error
        if row.utt_id in seen:
            return None, starts[max(i, seen[row.utt_id])]
        seen[row.utt_id] = i
    return [row for _, row in expected], None


@SETTINGS
@given(case=csv_case())
@example(case=([["u0", "a.wav", "spoof", "-", "s", "train", "", ""],
                ["u1", "b.wav", "spoof", "-", "s", "train", "", ""]], 0, "bad_utf8",
               b"u0,a\xff.wav,spoof,-,s,train,,\r\n"))  # was UnicodeDecodeError, no line
@example(case=([["u0", "a.wav", "spoof", "-", "s", "train", "", ""],
                ["u1", "b.wav", "spoof", "-", "s", "train", "", ""]], 0, "missing_cell",
               b"u0,a.wav,spoof\r\n"))  # a short row was padded with defaults silently
@example(case=([["u0", "a.wav", "spoof", "-", "s", "train", "", ""],
                ["u1", "b.wav", "spoof", "-", "s", "train", "", ""]], 0, "truncate",
               b'u0,a.wav,spoof,-,s,train,,"a\r\n'))  # unterminated quote swallowed u1
@example(case=([["u0", "a.wav", "spoof", "-", "s", "train", "", ""],
                ["u1", "b.wav", "spoof", "-", "s", "train", "", ""]], 1, "field",
               b"u1,b.wav,spoof,-,s,train,  ,\r\n"))  # blank duration was a number error
def test_csv_corrupted_row_is_parsed_exactly_or_names_its_line(case):
    rows, k, kind, line = case
    header = _csv_line(HEADER).encode()
    texts = [_csv_line(r).encode() for r in rows]
    texts[k] = line
    starts, at = [], 1 + _line_breaks(header.decode())
    for t in texts:
        starts.append(at)
        at += _line_breaks(t.decode("utf-8", "replace"))
    expected, bad_line = _expected_outcome(rows, k, line, starts)
    event(f"{kind}: {'parsed' if expected is not None else 'DataError'}")
    with _tmp() as tmp:
        path = tmp / "m.csv"
        path.write_bytes(header + b"".join(texts))
        if expected is None:
            try:
                read_manifest(path)
            except DataError as err:
                _assert_names(err, path, bad_line)
            else:
                raise AssertionError(f"{kind} corruption of row {k} was accepted")
        else:
            _same_rows(read_manifest(path), expected)


# --- structured JSONL fuzz -------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(CHARS, max_size=12)
    | FIELD_VALUES | st.just(10**400),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=4,
)


@st.composite
def jsonl_case(draw):
    rows = [dict(zip(HEADER, r, strict=True)) for r in draw(base_csv_rows())]
    rows = [{k: v for k, v in r.items() if v != ""} for r in rows]
    k = draw(st.integers(0, len(rows) - 1))
    kind = draw(st.sampled_from(["value", "drop_key", "add_key", "not_object", "truncate",
                                 "bad_utf8", "garbage", "blank"]))
    record = dict(rows[k])
    if kind == "value":
        record[draw(st.sampled_from(HEADER))] = draw(JSON_VALUES)
    elif kind == "drop_key":
        record.pop(draw(st.sampled_from(sorted(record))))
    elif kind == "add_key":
        record[draw(st.text(CHARS, max_size=6))] = draw(JSON_VALUES)
    if kind == "not_object":
        line = json.dumps(draw(st.lists(JSON_VALUES, max_size=2) | st.integers() | st.text()))
    else:
        line = json.dumps(record, ensure_ascii=draw(st.booleans()))
    raw = line.encode()
    if kind == "truncate":
        raw = raw[:draw(st.integers(0, len(raw) - 1))]
        raw = raw.decode("utf-8", "ignore").encode()  # a cut inside a character is bad_utf8
    elif kind == "bad_utf8":
        pos = draw(st.integers(0, len(raw)))
        raw = raw[:pos] + draw(st.sampled_from([b"\xff", b"\xc3", b"\x80", b"\xed\xa0\x80"])) + (
            raw[pos:])
    elif kind == "garbage":
        raw = draw(st.binary(min_size=1, max_size=40)).replace(b"\n", b"").replace(b"\r", b"")
    elif kind == "blank":
        raw = draw(st.sampled_from([b"", b"  ", b"\t"]))
    return rows, k, kind, raw + b"\n"


def _json_reference(raw: bytes) -> dict | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Invalid("utf-8") from None
    if not text.strip():
        return None
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        raise _Invalid("json") from None
    if not isinstance(record, dict):
        raise _Invalid("not an object")
    return record


@SETTINGS
@given(case=jsonl_case())
@example(case=([{"utt_id": "u0", "path": "a", "label": "spoof"},
                {"utt_id": "u1", "path": "b", "label": "spoof"}], 1, "value",
               b'{"utt_id": "u1", "path": "b", "label": "spoof", "duration": {"a": 1}}\n'))
@example(case=([{"utt_id": "u0", "path": "a", "label": "spoof"},
                {"utt_id": "u1", "path": "b", "label": "spoof"}], 0, "value",
               b'{"utt_id": 0, "path": "a", "label": "spoof"}\n'))  # 0 counts as missing
@example(case=([{"utt_id": "u0", "path": "a", "label": "spoof"},
                {"utt_id": "u1", "path": "b", "label": "spoof"}], 1, "bad_utf8",
               b'{"utt_id": "u1", "path": "b\xc3", "label": "spoof"}\n'))
def test_jsonl_corrupted_line_is_parsed_exactly_or_names_its_line(case):
    rows, k, kind, raw = case
    lines = [(json.dumps(r) + "\n").encode() for r in rows]
    lines[k] = raw
    try:
        records: list[dict | None] = [dict(r) for r in rows]
        records[k] = _json_reference(raw)
        expected = [(i, _expected_row(r)) for i, r in enumerate(records) if r is not None]
        bad_line = None
        seen: dict[str, int] = {}
        for i, row in expected:
            if row.utt_id in seen:
                bad_line = max(i, seen[row.utt_id]) + 1
                break
            seen[row.utt_id] = i
    except _Invalid:
        expected, bad_line = None, k + 1
    event(f"{kind}: {'DataError' if bad_line is not None else 'parsed'}")
    with _tmp() as tmp:
        path = tmp / "m.jsonl"
        path.write_bytes(b"".join(lines))
        if bad_line is not None:
            try:
                read_manifest(path)
            except DataError as err:
                _assert_names(err, path, bad_line)
            else:
                raise AssertionError(f"{kind} corruption of line {k + 1} was accepted")
        else:
            _same_rows(read_manifest(path), [row for _, row in expected])


# --- corpus protocols: ASVspoof 2019 LA --------------------------------------------------------

TOKEN = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789", min_size=1, max_size=8)
ASV19_DEV = Path("LA") / "ASVspoof2019_LA_cm_protocols" / "ASVspoof2019.LA.cm.dev.trl.txt"


@st.composite
def asv19_lines(draw) -> list[str]:
    ids = draw(st.lists(st.integers(1_000_000, 9_999_999), min_size=2, max_size=5, unique=True))
    lines = []
    for utt in ids:
        key = draw(st.sampled_from(["bonafide", "spoof"]))
        attack = "-" if key == "bonafide" else draw(st.sampled_from(["A01", "A07", "A19"]))
        lines.append(f"LA_{draw(st.integers(1000, 9999))} LA_D_{utt} - {attack} {key}")
    return lines


def _garbage_line(draw) -> bytes:
    """Random bytes on one physical line that are certainly not UTF-8."""
    junk = draw(st.binary(max_size=30)).replace(b"\n", b"").replace(b"\r", b"")
    pos = draw(st.integers(0, len(junk)))
    return junk[:pos] + b"\xff" + junk[pos:]


@st.composite
def asv19_case(draw):
    lines = draw(asv19_lines())
    k = draw(st.integers(0, len(lines) - 1))
    kind = draw(st.sampled_from(["drop_cols", "extra", "label", "cut", "empty", "garbage"]))
    cols = lines[k].split()
    if kind == "drop_cols":
        for _ in range(draw(st.integers(1, 4))):
            del cols[draw(st.integers(0, len(cols) - 1))]
        bad = " ".join(cols).encode()
    elif kind == "extra":
        bad = " ".join(cols + draw(st.lists(TOKEN, min_size=1, max_size=3))).encode()
    elif kind == "label":
        cols[4] = draw(st.text(min_size=1, max_size=10).filter(
            lambda s: s.strip() and "\n" not in s and "\r" not in s
            and [t.lower() for t in s.split()] not in (["bonafide"], ["spoof"])))
        bad = " ".join(cols).encode()
    elif kind == "cut":
        bad = lines[k][:draw(st.integers(0, len(lines[k]) - 1))].encode()
    elif kind == "empty":
        bad = draw(st.sampled_from([b"", b"   ", b"\t "]))
    else:
        bad = _garbage_line(draw)
    return lines, k, kind, bad


@FEW
@given(case=asv19_case(), skip_bad=st.booleans())
@example(case=(["LA_1 LA_D_1000001 - - bonafide", "LA_2 LA_D_1000002 - A07 spoof"], 1,
               "garbage", b"LA_2 \xff\xfe"), skip_bad=False)  # was a DataError with no line
def test_asvspoof2019_corrupted_protocol_line(case, skip_bad: bool):
    lines, k, kind, bad = case
    data = [line.encode() for line in lines]
    data[k] = bad
    with _tmp() as root:
        proto = root / ASV19_DEV
        proto.parent.mkdir(parents=True)
        proto.write_bytes(b"\n".join(data) + b"\n")
        event(kind)
        if not bad.strip():  # a blank line holds no row: every other row is kept
            result = prepare_corpus("asvspoof2019_la", root, check_audio="none",
                                    skip_bad=skip_bad)
            kept = sorted(line.split()[1] for i, line in enumerate(lines) if i != k)
            assert [r.utt_id for r in result.manifest] == kept and result.skipped == []
            return
        # Malformed protocol lines always raise, with or without skip_bad (documented).
        try:
            prepare_corpus("asvspoof2019_la", root, check_audio="none", skip_bad=skip_bad)
        except DataError as err:
            _assert_names(err, proto, k + 1)
        else:
            raise AssertionError(f"{kind} corruption {bad!r} of line {k + 1} was accepted")


# --- corpus protocols: In-the-Wild meta.csv ----------------------------------------------------

SPEAKERS = st.sampled_from(["Alec Guinness", "Obama, Barack", "Ünal", "O'Brien"])
ITW_LABELS = ["spoof", "bona-fide", "bonafide"]


@st.composite
def itw_case(draw):
    n = draw(st.integers(2, 5))
    rows = [[f"{i}.wav", draw(SPEAKERS), draw(st.sampled_from(ITW_LABELS))] for i in range(n)]
    k = draw(st.integers(0, n - 1))
    kind = draw(st.sampled_from(["drop_cells", "extra_cells", "label", "no_file", "open_quote",
                                 "empty", "garbage"]))
    cells = list(rows[k])
    if kind == "drop_cells":
        start = draw(st.integers(0, 2))
        del cells[start:start + draw(st.integers(1, 2))]
        bad = _csv_line(cells).encode()
    elif kind == "extra_cells":
        bad = _csv_line(cells + draw(st.lists(SIMPLE, min_size=1, max_size=2))).encode()
    elif kind == "label":
        def unknown(s: str) -> bool:
            try:
                normalize_label(s)
            except DataError:
                return True
            return False
        cells[2] = draw(st.text(CHARS, max_size=12).filter(unknown))
        bad = _csv_line(cells).encode()
    elif kind == "no_file":
        cells[0] = draw(st.sampled_from(["", "  "]))
        bad = _csv_line(cells).encode()
    elif kind == "open_quote":
        i = draw(st.integers(0, 2))
        bad = ",".join(c if j != i else '"' + c.replace('"', "") for j, c in enumerate(
            [c.replace(",", " ") for c in cells])).encode() + b"\r\n"
    elif kind == "empty":
        bad = draw(st.sampled_from([b"\r\n", b" , ,\r\n", b"   \r\n"]))
    else:
        bad = _garbage_line(draw) + b"\r\n"
    return rows, k, kind, bad


@FEW
@given(case=itw_case(), skip_bad=st.booleans())
@example(case=([["0.wav", "A", "spoof"], ["1.wav", "B", "spoof"], ["2.wav", "C", "spoof"]], 0,
               "open_quote", b'0.wav,"A,spoof\r\n'), skip_bad=False)  # error was on the last line
@example(case=([["0.wav", "A", "spoof"], ["1.wav", "B", "spoof"]], 1, "garbage",
               b"\xff1.wav\r\n"), skip_bad=True)  # was UnicodeDecodeError
def test_in_the_wild_corrupted_meta_row(case, skip_bad: bool):
    rows, k, kind, bad = case
    data = [_csv_line(r).encode() for r in rows]
    data[k] = bad
    with _tmp() as root:
        meta = root / "release_in_the_wild" / "meta.csv"
        meta.parent.mkdir()
        meta.write_bytes(_csv_line(["file", "speaker", "label"]).encode() + b"".join(data))
        event(kind)
        if kind == "empty":
            result = prepare_corpus("in_the_wild", root, check_audio="none", skip_bad=skip_bad)
            kept = sorted(str(i) for i in range(len(rows)) if i != k)
            assert [r.utt_id for r in result.manifest] == kept and result.skipped == []
            return
        try:
            prepare_corpus("in_the_wild", root, check_audio="none", skip_bad=skip_bad)
        except DataError as err:
            _assert_names(err, meta, k + 2)
        else:
            raise AssertionError(f"{kind} corruption {bad!r} of line {k + 2} was accepted")


# --- corpus protocols: AntiDeepfake CSV -------------------------------------------------------

ADF = (b"ID,Label,Duration,SampleRate,Path,Attack,Speaker,Proportion,AudioChannel,"
       b"AudioEncoding,AudioBitSample,Language\r\n"
       b"ASV5-A14-D_1,fake,3.1,16000,$ROOT/ASVspoof5/D_1.flac,A14,D_4461,valid,1,PCM_S,16,EN\r\n"
       b"ASV5-D_2,real,2.5,16000,$ROOT/ASVspoof5/D_2.flac,-,D_0461,train,1,PCM_S,16,EN\r\n")


@FEW
@given(data=st.data())
@example(data=ADF.replace(b"2.5", b"2\xe9"))  # was UnicodeDecodeError
@example(data=ADF.replace(b"A14", b'"A14'))  # unterminated quote: was read to the end of file
@example(data=ADF.replace(b"A14", b"x" * 140_000))  # was csv.Error (field size limit)
def test_antideepfake_csv_mutated_bytes(data):
    if not isinstance(data, bytes):
        data = data.draw(mutated(ADF))
    with _tmp() as root:
        path = root / "protocol.csv"
        path.write_bytes(data)
        try:
            result = prepare_corpus("antideepfake", path, check_audio="none")
        except DataError as err:
            _assert_names(err, path)
            event("DataError")
        else:  # every record of the file became a row (no silent drop)
            text = io.StringIO(data.decode("utf-8-sig"), newline="")
            records = [r for r in csv.reader(text, strict=True) if r]
            assert len(result.manifest) == len(records) - 1
            event("parsed")


# --- corpus audio with skip_bad: the bad row is reported, every other row kept -----------------


def _audio_bytes(frames: int) -> bytes:
    with _tmp() as tmp:
        wave = 0.3 * np.sin(np.arange(frames) / 5.0)
        sf.write(str(tmp / "a.wav"), wave, 16000, subtype="PCM_16")
        return (tmp / "a.wav").read_bytes()


GOOD_AUDIO = _audio_bytes(800)
BAD_AUDIO = {"missing": None, "garbage": b"not audio at all", "empty_file": b"",
             "zero_frames": _audio_bytes(0)}


@FEW
@given(corpus=st.sampled_from(["asvspoof2019_la", "in_the_wild"]), n=st.integers(2, 5),
       data=st.data(), how=st.sampled_from(sorted(BAD_AUDIO)))
def test_bad_audio_with_skip_bad_is_reported_not_dropped(corpus: str, n: int, data, how: str):
    k = data.draw(st.integers(0, n - 1))
    with _tmp() as root:
        if corpus == "asvspoof2019_la":
            ids = [f"LA_D_{1000000 + i}" for i in range(n)]
            proto = root / ASV19_DEV
            proto.parent.mkdir(parents=True)
            proto.write_text("".join(f"LA_0001 {u} - A07 spoof\n" for u in ids))
            audio = [root / "LA" / "ASVspoof2019_LA_dev" / "flac" / f"{u}.flac" for u in ids]
            line = k + 1
        else:
            ids = [str(i) for i in range(n)]
            proto = root / "meta.csv"
            proto.write_text("file,speaker,label\n" + "".join(f"{u}.wav,S,spoof\n" for u in ids))
            audio = [root / f"{u}.wav" for u in ids]
            line = k + 2
        for i, path in enumerate(audio):
            path.parent.mkdir(parents=True, exist_ok=True)
            content = GOOD_AUDIO if i != k else BAD_AUDIO[how]
            if content is not None:
                path.write_bytes(content)
        try:
            prepare_corpus(corpus, root, check_audio="read")
        except DataError as err:
            _assert_names(err, proto, line)
            assert str(audio[k]) in str(err) and ids[k] in str(err)
        else:
            raise AssertionError("bad audio was accepted")
        result = prepare_corpus(corpus, root, check_audio="read", skip_bad=True)
        assert [r.utt_id for r in result.manifest] == sorted(u for i, u in enumerate(ids)
                                                              if i != k)
        assert len(result.skipped) == 1
        skipped_path, reason = result.skipped[0]
        assert skipped_path == str(audio[k])
        assert ids[k] in reason and f"{proto}:{line}" in reason
