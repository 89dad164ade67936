"""The AntiDeepfake protocol CSV: read as a corpus, and written from a manifest."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from rlspoof.data.audio import audio_info
from rlspoof.data.corpora.registry import CorpusScan, Entry, register_corpus
from rlspoof.data.manifest import (
    BONAFIDE,
    UNKNOWN,
    Manifest,
    ManifestRow,
    normalize_label,
    parse_duration,
)
from rlspoof.data.text_files import csv_records, open_text
from rlspoof.errors import DataError

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
