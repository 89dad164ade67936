"""Corpus adapters: the on-disk layouts of public anti-spoofing corpora, read into manifests.

Every corpus ships its labels differently (whitespace protocols, CSVs, folder names). An adapter
reads one layout and returns rows whose paths are relative to the corpus root, so the rest of
rlspoof sees one format. A malformed protocol line is an error naming file and line, and a row
dropped for bad audio is listed in ``PrepareResult.skipped``: on a corpus of 100k files a
silent drop is a wrong EER that nobody can trace.
"""

from __future__ import annotations

import csv
import difflib
import inspect
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from rlspoof.data.audio import AUDIO_EXTENSIONS, audio_info
from rlspoof.data.manifest import (
    BONAFIDE,
    LABELS,
    SPOOF,
    UNKNOWN,
    Manifest,
    ManifestRow,
    csv_records,
    normalize_label,
    numbered_lines,
    open_text,
    parse_duration,
    read_manifest,
)
from rlspoof.errors import AudioError, DataError, RlspoofError

CHECK_AUDIO = ("none", "exists", "read")
# Audio formats that AUDIO_EXTENSIONS does not cover: reported in `skipped`, never dropped silently.
_OTHER_AUDIO = (".m4a", ".aac", ".wma", ".webm", ".mp4")


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


# --- shared helpers --------------------------------------------------------------------------


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


def _key(raw: str, path: Path, line: int) -> str:
    """An ASVspoof key column: strictly bonafide/spoof (anything else means misaligned columns)."""
    if raw.lower() in LABELS:
        return raw.lower()
    raise DataError(f"label {raw!r} is neither bonafide nor spoof", path, line)


def _attack(raw: str, label: str) -> str:
    return UNKNOWN if label == BONAFIDE and raw.lower() in (UNKNOWN, BONAFIDE) else raw


def _first_file(root: Path, candidates: list[Path], what: str) -> Path:
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise DataError(f"no {what} found; looked for: {tried}", root)


def _audio_files(folder: Path, skipped: list[tuple[str, str]]) -> list[Path]:
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
        elif suffix in _OTHER_AUDIO:
            skipped.append((str(path), f"unsupported audio format {suffix} "
                                       f"(supported: {', '.join(AUDIO_EXTENSIONS)})"))
    return found


def _path_id(rel: Path) -> str:
    """utt_id from a relative path: unique where bare file names repeat across folders."""
    return rel.with_suffix("").as_posix().replace("/", "__")


def _rel(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` where it lies below it, else absolute."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return os.path.abspath(path)


# --- ASVspoof --------------------------------------------------------------------------------


@register_corpus("asvspoof2019_la")
def asvspoof2019_la(root: Path) -> CorpusScan:
    """ASVspoof 2019 logical access (root = the folder holding ``LA/``, or ``LA/`` itself)::

        LA/ASVspoof2019_LA_cm_protocols/ASVspoof2019.LA.cm.{train.trn,dev.trl,eval.trl}.txt
            LA_0069 LA_D_1047731 - - bonafide        SPEAKER UTT - ATTACK KEY
            LA_0039 LA_E_2834763 - A11 spoof
        LA/ASVspoof2019_LA_{train,dev,eval}/flac/UTT.flac

    A missing split's protocol is skipped (people download train+dev only); none is an error.
    """
    la = Path("LA") if (root / "LA").is_dir() else Path()
    protocols = root / la / "ASVspoof2019_LA_cm_protocols"
    files = {split: protocols / f"ASVspoof2019.LA.cm.{split}.{kind}.txt"
             for split, kind in (("train", "trn"), ("dev", "trl"), ("eval", "trl"))}
    present = {split: path for split, path in files.items() if path.is_file()}
    if not present:
        raise DataError(f"no protocol files found; expected {', '.join(map(str, files.values()))}",
                        root)
    entries = []
    for split, proto in present.items():
        for no, (speaker, utt, _, attack, key) in read_protocol(proto, 5):
            label = _key(key, proto, no)
            path = (la / f"ASVspoof2019_LA_{split}" / "flac" / f"{utt}.flac").as_posix()
            row = ManifestRow(utt, path, label, _attack(attack, label), speaker, split=split,
                              language="en")
            entries.append(Entry(row, proto, no))
    return CorpusScan(root, entries)


# column index -> extra name, per track
_ASV21_EXTRA = {
    "LA": (8, {2: "codec", 3: "transmission", 6: "trim", 7: "subset"}),
    "DF": (13, {2: "codec", 3: "source_corpus", 6: "trim", 7: "subset", 8: "vocoder"}),
}


def _asvspoof2021(root: Path, track: str, protocol: str | Path | None) -> CorpusScan:
    if protocol is not None:
        keys = Path(protocol).expanduser()
        if not keys.is_file():
            raise DataError("keys file given as protocol= does not exist", keys)
    else:
        candidates = [root / "keys" / track / "CM" / "trial_metadata.txt",
                      root / f"{track}-keys-full" / "keys" / track / "CM" / "trial_metadata.txt",
                      root / "trial_metadata.txt"]
        keys = _first_file(root, candidates, f"ASVspoof 2021 {track} keys (pass protocol=PATH)")
    ncols, extra_cols = _ASV21_EXTRA[track]
    audio_dir = Path(f"ASVspoof2021_{track}_eval") / "flac"
    entries = []
    for no, cols in read_protocol(keys, ncols):
        label = _key(cols[5], keys, no)
        extra = {name: cols[i] for i, name in extra_cols.items()}
        row = ManifestRow(cols[1], (audio_dir / f"{cols[1]}.flac").as_posix(), label,
                          _attack(cols[4], label), cols[0], split="eval", language="en",
                          extra=extra)
        entries.append(Entry(row, keys, no))
    return CorpusScan(root, entries)


@register_corpus("asvspoof2021_la")
def asvspoof2021_la(root: Path, protocol: str | Path | None = None) -> CorpusScan:
    """ASVspoof 2021 LA evaluation (codec and transmission channel conditions)::

        ASVspoof2021_LA_eval/flac/UTT.flac
        keys/LA/CM/trial_metadata.txt   (or LA-keys-full/keys/LA/CM/, or protocol=PATH)
            LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval
            SPEAKER UTT CODEC TRANSMISSION ATTACK KEY TRIM SUBSET
    """
    return _asvspoof2021(root, "LA", protocol)


@register_corpus("asvspoof2021_df")
def asvspoof2021_df(root: Path, protocol: str | Path | None = None) -> CorpusScan:
    """ASVspoof 2021 DF evaluation (compressed speech from several source corpora)::

        ASVspoof2021_DF_eval/flac/UTT.flac
        keys/DF/CM/trial_metadata.txt   (or DF-keys-full/keys/DF/CM/, or protocol=PATH)
            LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress traditional_vocoder
                - - - -
            SPEAKER UTT CODEC SOURCE_CORPUS ATTACK KEY TRIM SUBSET VOCODER (+4 VCC columns)
    """
    return _asvspoof2021(root, "DF", protocol)


_ASV5_SPLITS = {
    "train": ("ASVspoof5.train.tsv", ("flac_T",)),
    "dev": ("ASVspoof5.dev.track_1.tsv", ("flac_D",)),
    "eval": ("ASVspoof5.eval.track_1.tsv", ("flac_E_eval", "flac_E")),
}
_ASV5_EXTRA = ("gender", "codec", "codec_q", "codec_seed")


@register_corpus("asvspoof5")
def asvspoof5(root: Path) -> CorpusScan:
    """ASVspoof 5 (protocols are space separated despite ``.tsv``)::

        ASVspoof5.{train,dev.track_1,eval.track_1}.tsv   (in root or root/ASVspoof5_protocols)
            D_4461 D_0000000169 F - - - AC1 A14 spoof -
            SPEAKER FILE GENDER CODEC CODEC_Q CODEC_SEED ATTACK_TAG ATTACK KEY TMP
        flac_T/ flac_D/ flac_E_eval/ (or flac_E/), each in root or root/ASVspoof5_{split}/

    The codec columns are not documented with certainty, so the label is taken from the
    bonafide|spoof column (column 9, else the last such column) rather than a fixed position.
    """
    entries = []
    found = False
    for split, (name, folders) in _ASV5_SPLITS.items():
        proto = next((p for p in (root / name, root / "ASVspoof5_protocols" / name) if p.is_file()),
                     None)
        if proto is None:
            continue
        found = True
        dirs = [base / f for f in folders for base in (Path(), Path(f"ASVspoof5_{split}"))]
        audio_dir = next((d for d in dirs if (root / d).is_dir()), dirs[0])
        for no, cols in read_protocol(proto, 9, at_least=True):
            k = 8 if cols[8].lower() in LABELS else max(
                (i for i in range(4, len(cols)) if cols[i].lower() in LABELS), default=None)
            if k is None:
                raise DataError("no bonafide/spoof column in line", proto, no)
            label = cols[k].lower()
            extra = dict(zip(_ASV5_EXTRA, cols[2:k - 2], strict=False))
            extra["attack_tag"] = cols[k - 2]
            row = ManifestRow(cols[1], (audio_dir / f"{cols[1]}.flac").as_posix(), label,
                              _attack(cols[k - 1], label), cols[0], split=split, language="en",
                              extra=extra)
            entries.append(Entry(row, proto, no))
    if not found:
        expected = ", ".join(name for name, _ in _ASV5_SPLITS.values())
        raise DataError(f"no protocol files found; expected {expected} in the root or "
                        "ASVspoof5_protocols/", root)
    return CorpusScan(root, entries)


# --- other corpora ---------------------------------------------------------------------------


@register_corpus("in_the_wild")
def in_the_wild(root: Path) -> CorpusScan:
    """In-the-Wild (Mueller et al. 2022), English, evaluation only::

        release_in_the_wild/meta.csv   (or root/meta.csv)
            file,speaker,label
            0.wav,Alec Guinness,spoof        label: bona-fide | spoof
        release_in_the_wild/0.wav ...    audio beside meta.csv
    """
    meta = _first_file(root, [root / "meta.csv", root / "release_in_the_wild" / "meta.csv"],
                       "In-the-Wild meta.csv")
    base = meta.parent.relative_to(root)
    entries = []
    with open_text(meta) as handle:
        # single_line: no field holds a newline, so a stray quote is an error at its own line
        records = csv_records(handle, meta, single_line=True)
        header_line, header = next(records, (1, []))
        header = [h.strip().lower() for h in header]
        if not {"file", "speaker", "label"} <= set(header):
            raise DataError(f"header must name file,speaker,label; found {header}", meta,
                            header_line)
        col = {name: header.index(name) for name in ("file", "speaker", "label")}
        for no, cells in records:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise DataError(f"expected {len(header)} cells, found {len(cells)}", meta, no)
            file = cells[col["file"]].strip()
            if not file:
                raise DataError("empty file name", meta, no)
            row = ManifestRow(Path(file).stem, (base / file).as_posix(),
                              normalize_label(cells[col["label"]], meta, no),
                              speaker=cells[col["speaker"]].strip() or UNKNOWN, split="eval",
                              language="en")
            entries.append(Entry(row, meta, no))
    return CorpusScan(root, entries)


@register_corpus("mlaad")
def mlaad(root: Path, bonafide_root: str | Path | None = None) -> CorpusScan:
    """MLAAD (multilingual TTS output, spoof only), optionally with M-AILABS as bonafide::

        fake/<language>/<tts_model>/*.wav                              -> spoof, attack=tts_model
        bonafide_root/<lang>_<REGION>/by_book/<gender>/<speaker>/<book>/wavs/*.wav   (M-AILABS)

    M-AILABS locales (``de_DE``) are cut to the language (``de``) so they pair with MLAAD's
    folders; the locale is kept in ``extra``. Bonafide paths lie outside root: stored absolute.
    """
    fake = root / "fake"
    if not fake.is_dir():
        raise DataError("MLAAD root has no fake/ folder (expected fake/<language>/<tts_model>/)",
                        root)
    skipped: list[tuple[str, str]] = []
    entries = []
    for path in _audio_files(fake, skipped):
        rel = path.relative_to(root)
        if len(rel.parts) < 4:
            skipped.append((str(path), "not inside fake/<language>/<tts_model>/"))
            continue
        row = ManifestRow(_path_id(rel), rel.as_posix(), SPOOF, attack=rel.parts[2],
                          language=rel.parts[1].lower())
        entries.append(Entry(row))
    if bonafide_root is not None:
        bona = Path(bonafide_root).expanduser()
        if not bona.is_dir():
            raise DataError("bonafide_root (M-AILABS) is not a folder", bona)
        for path in _audio_files(bona, skipped):
            parts = path.relative_to(bona).parts
            extra = {"locale": parts[0]} if len(parts) > 1 else {}
            speaker = UNKNOWN
            if len(parts) > 3 and parts[1] == "by_book":
                extra["gender"] = parts[2]
                if "wavs" in parts:
                    w = parts.index("wavs")
                    extra["book"] = parts[w - 1]
                    speaker = parts[w - 2] if w - 2 >= 3 else UNKNOWN  # mix/ books: no speaker
            language = parts[0].split("_")[0].lower() if len(parts) > 1 else UNKNOWN
            row = ManifestRow("mailabs__" + _path_id(path.relative_to(bona)), _rel(path, root),
                              BONAFIDE, speaker=speaker, language=language, extra=extra)
            entries.append(Entry(row))
    return CorpusScan(root, entries, skipped)


_FOR_SPLITS = {"training": "train", "validation": "dev", "testing": "eval"}


@register_corpus("fake_or_real")
def fake_or_real(root: Path) -> CorpusScan:
    """Fake-or-Real (FoR), root = one ``for-*`` folder or the folder holding several::

        for-{original,norm,2seconds,rerecorded}/{training,validation,testing}/{fake,real}/*.wav

    utt_id starts with the version folder so ids do not depend on which root was given; a
    doubly nested ``for-norm/for-norm/`` (as some archives unpack) is accepted.
    """

    def has_splits(folder: Path) -> bool:
        return any((folder / s).is_dir() for s in _FOR_SPLITS)

    if not root.is_dir():
        raise DataError("the Fake-or-Real root must be a folder", root)
    versions = [root] if has_splits(root) else []
    for child in [] if versions else sorted(p for p in root.iterdir() if p.is_dir()):
        versions += [d for d in (child, child / child.name) if has_splits(d)][:1]
    if not versions:
        raise DataError("no Fake-or-Real folders found (expected for-*/{training,validation,"
                        "testing}/{fake,real}/)", root)
    skipped: list[tuple[str, str]] = []
    entries = []
    for version_dir in versions:
        version = version_dir.name.removeprefix("for-")
        for folder, split in _FOR_SPLITS.items():
            for label in ("fake", "real"):
                if not (version_dir / folder / label).is_dir():
                    continue
                for path in _audio_files(version_dir / folder / label, skipped):
                    utt = f"{version_dir.name}__{_path_id(path.relative_to(version_dir))}"
                    row = ManifestRow(utt, _rel(path, root), normalize_label(label), split=split,
                                      language="en", extra={"version": version})
                    entries.append(Entry(row))
    return CorpusScan(root, entries, skipped)


@register_corpus("folder")
def folder(root: Path) -> CorpusScan:
    """Any corpus sorted into label folders, or an existing manifest (.csv/.tsv/.jsonl)::

        bonafide/**/*.wav              (also real/, genuine/, bona-fide/ ...)
        spoof/<attack>/**/*.wav        (also fake/, ...; first level = attack name, optional)

    Folders whose name is not a label are listed in ``skipped``, not silently ignored.
    """
    if root.is_file():
        manifest = read_manifest(root)
        return CorpusScan(manifest.root, [Entry(row, root) for row in manifest])
    skipped: list[tuple[str, str]] = []
    entries = []
    label_dirs = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            label_dirs.append((sub, normalize_label(sub.name)))
        except DataError:
            skipped.append((str(sub), "folder name is not a label (bonafide/spoof/real/fake...)"))
    if not label_dirs:
        raise DataError("expected bonafide/ and spoof/ subfolders (or real/, fake/ ...)", root)
    for sub, label in label_dirs:
        for path in _audio_files(sub, skipped):
            inner = path.relative_to(sub).parts
            attack = inner[0] if label == SPOOF and len(inner) > 1 else UNKNOWN
            rel = path.relative_to(root)
            entries.append(Entry(ManifestRow(_path_id(rel), rel.as_posix(), label, attack)))
    return CorpusScan(root, entries, skipped)


# --- AntiDeepfake protocol CSV ---------------------------------------------------------------

ANTIDEEPFAKE_COLUMNS = ("ID", "Label", "Duration", "SampleRate", "Path", "Attack", "Speaker",
                        "Proportion", "AudioChannel", "AudioEncoding", "AudioBitSample", "Language")
# AntiDeepfake column -> manifest extra key
_ADF_EXTRA = {"SampleRate": "sample_rate", "AudioChannel": "audio_channel",
              "AudioEncoding": "audio_encoding", "AudioBitSample": "audio_bit_sample"}
# Its "Proportion" spellings (train/valid/test) <-> rlspoof split names.
_ADF_SPLIT = {"valid": "dev", "test": "eval"}
_ADF_SPLIT_BACK = {"dev": "valid", "eval": "test"}
_ADF_ROOT = "$ROOT"


@register_corpus("antideepfake")
def antideepfake(root: Path, data_root: str | Path | None = None) -> CorpusScan:
    """An AntiDeepfake protocol CSV (root = the CSV file; ``$ROOT`` in Path = ``data_root``)::

        ID,Label,Duration,SampleRate,Path,Attack,Speaker,Proportion,AudioChannel,...,Language
        ASV5-A14-D_0000000169,fake,3.1,16000,$ROOT/ASVspoof5/flac_D/D_0000000169.flac,A14,...

    Read so that protocols prepared with the AntiDeepfake recipes can be reused as they are.
    """
    if not root.is_file():
        raise DataError("the antideepfake corpus root must be the protocol CSV file", root)
    data = Path(data_root).expanduser() if data_root is not None else root.parent
    entries = []
    with open_text(root) as handle:
        records = csv_records(handle, root)
        header_line, header = next(records, (1, []))
        missing = [c for c in ("ID", "Label", "Path") if c not in header]
        if missing:
            raise DataError(f"header lacks column(s) {', '.join(missing)}", root, header_line)
        for no, cells in records:
            if len(cells) != len(header):
                raise DataError("row has a different number of cells than the header", root, no)
            rec = {k: v.strip() for k, v in zip(header, cells, strict=True)}
            if not rec["ID"] or not rec["Path"]:
                raise DataError("empty ID or Path", root, no)
            path = rec["Path"]
            if path.startswith(_ADF_ROOT):
                path = path[len(_ADF_ROOT):].lstrip("/\\")
            # AntiDeepfake writes -1 where it did not measure the duration
            duration = parse_duration(rec.get("Duration"), root, no, negative_is_unknown=True)
            split = rec.get("Proportion") or UNKNOWN
            extra = {_ADF_EXTRA.get(k, k): v for k, v in rec.items()
                     if k not in ANTIDEEPFAKE_COLUMNS or k in _ADF_EXTRA}
            row = ManifestRow(
                rec["ID"], path, normalize_label(rec["Label"], root, no),
                rec.get("Attack") or UNKNOWN, rec.get("Speaker") or UNKNOWN,
                split=_ADF_SPLIT.get(split, split), language=(rec.get("Language") or "-").lower(),
                duration=duration,
                extra={k: v for k, v in extra.items() if v not in ("", "-1")},
            )
            entries.append(Entry(row, root, no))
    return CorpusScan(data, entries)


def write_antideepfake_csv(
    manifest: Manifest, path: str | Path, data_root: str | Path | None = None,
    *, probe_audio: bool = True,
) -> Path:
    """Write ``manifest`` as an AntiDeepfake protocol CSV, for training with that code base.

    Audio below ``data_root`` (default: the manifest's root) is written as ``$ROOT/...``.
    Labels become real/fake and splits train/valid/test, as AntiDeepfake expects. Its loader
    needs Duration, SampleRate and AudioChannel: missing ones are read from the audio header
    when ``probe_audio`` (an unreadable file then raises ``AudioError``). Other extras are lost.
    """
    path = Path(path)
    base = Path(os.path.abspath(data_root if data_root is not None else manifest.root))
    records = []
    for row in manifest:
        audio = Path(os.path.abspath(manifest.audio_path(row)))
        try:
            out_path = f"{_ADF_ROOT}/{audio.relative_to(base).as_posix()}"
        except ValueError:
            out_path = str(audio)
        record = {"ID": row.utt_id, "Label": "real" if row.label == BONAFIDE else "fake",
                  "Duration": "" if row.duration is None else round(row.duration, 4),
                  "Path": out_path, "Attack": row.attack, "Speaker": row.speaker,
                  "Proportion": _ADF_SPLIT_BACK.get(row.split, row.split),
                  "Language": row.language.upper()}
        record.update({col: row.extra.get(key, "") for col, key in _ADF_EXTRA.items()})
        if probe_audio and "" in (record["Duration"], record["SampleRate"], record["AudioChannel"]):
            info = audio_info(audio)
            record["Duration"] = record["Duration"] if record["Duration"] != "" else round(
                info.duration, 4)
            record["SampleRate"] = record["SampleRate"] or info.sample_rate
            record["AudioChannel"] = record["AudioChannel"] or info.channels
        records.append(record)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=ANTIDEEPFAKE_COLUMNS)
        writer.writeheader()
        writer.writerows(records)
    tmp.replace(path)
    return path
