"""In-the-Wild, MLAAD, Fake-or-Real and a plain folder of labelled sub-folders."""

from __future__ import annotations

from pathlib import Path

from rlspoof.data.corpora.common import (
    audio_files,
    first_file,
    path_id,
    relative,
)
from rlspoof.data.corpora.registry import CorpusScan, Entry, register_corpus
from rlspoof.data.manifest import (
    BONAFIDE,
    SPOOF,
    UNKNOWN,
    ManifestRow,
    normalize_label,
    read_manifest,
)
from rlspoof.data.text_files import csv_records, open_text
from rlspoof.errors import DataError


@register_corpus("in_the_wild")
def in_the_wild(root: Path) -> CorpusScan:
    """In-the-Wild (Mueller et al. 2022), English, evaluation only::

        release_in_the_wild/meta.csv   (or root/meta.csv)
            file,speaker,label
            0.wav,Alec Guinness,spoof        label: bona-fide | spoof
        release_in_the_wild/0.wav ...    audio beside meta.csv
    """
    meta = first_file(root, [root / "meta.csv", root / "release_in_the_wild" / "meta.csv"],
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
    for path in audio_files(fake, skipped):
        rel = path.relative_to(root)
        if len(rel.parts) < 4:
            skipped.append((str(path), "not inside fake/<language>/<tts_model>/"))
            continue
        row = ManifestRow(path_id(rel), rel.as_posix(), SPOOF, attack=rel.parts[2],
                          language=rel.parts[1].lower())
        entries.append(Entry(row))
    if bonafide_root is not None:
        bona = Path(bonafide_root).expanduser()
        if not bona.is_dir():
            raise DataError("bonafide_root (M-AILABS) is not a folder", bona)
        for path in audio_files(bona, skipped):
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
            row = ManifestRow("mailabs__" + path_id(path.relative_to(bona)), relative(path, root),
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
                for path in audio_files(version_dir / folder / label, skipped):
                    utt = f"{version_dir.name}__{path_id(path.relative_to(version_dir))}"
                    row = ManifestRow(utt, relative(path, root), normalize_label(label), split=split,
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
        for path in audio_files(sub, skipped):
            inner = path.relative_to(sub).parts
            attack = inner[0] if label == SPOOF and len(inner) > 1 else UNKNOWN
            rel = path.relative_to(root)
            entries.append(Entry(ManifestRow(path_id(rel), rel.as_posix(), label, attack)))
    return CorpusScan(root, entries, skipped)
