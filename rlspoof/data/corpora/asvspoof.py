"""ASVspoof 2019 LA, 2021 LA/DF and ASVspoof 5: whitespace protocols beside the audio folders."""

from __future__ import annotations

from pathlib import Path

from rlspoof.data.corpora.common import (
    attack_of,
    first_file,
    protocol_key,
    read_protocol,
)
from rlspoof.data.corpora.registry import CorpusScan, Entry, register_corpus
from rlspoof.data.manifest import (
    LABELS,
    ManifestRow,
)
from rlspoof.errors import DataError

# column index -> extra name, per track
_ASV21_EXTRA = {
    "LA": (8, {2: "codec", 3: "transmission", 6: "trim", 7: "subset"}),
    "DF": (13, {2: "codec", 3: "source_corpus", 6: "trim", 7: "subset", 8: "vocoder"}),
}

_ASV5_SPLITS = {
    "train": ("ASVspoof5.train.tsv", ("flac_T",)),
    "dev": ("ASVspoof5.dev.track_1.tsv", ("flac_D",)),
    "eval": ("ASVspoof5.eval.track_1.tsv", ("flac_E_eval", "flac_E")),
}

_ASV5_EXTRA = ("gender", "codec", "codec_q", "codec_seed")


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
            label = protocol_key(key, proto, no)
            path = (la / f"ASVspoof2019_LA_{split}" / "flac" / f"{utt}.flac").as_posix()
            row = ManifestRow(utt, path, label, attack_of(attack, label), speaker, split=split,
                              language="en")
            entries.append(Entry(row, proto, no))
    return CorpusScan(root, entries)


def _asvspoof2021(root: Path, track: str, protocol: str | Path | None) -> CorpusScan:
    if protocol is not None:
        keys = Path(protocol).expanduser()
        if not keys.is_file():
            raise DataError("keys file given as protocol= does not exist", keys)
    else:
        candidates = [root / "keys" / track / "CM" / "trial_metadata.txt",
                      root / f"{track}-keys-full" / "keys" / track / "CM" / "trial_metadata.txt",
                      root / "trial_metadata.txt"]
        keys = first_file(root, candidates, f"ASVspoof 2021 {track} keys (pass protocol=PATH)")
    ncols, extra_cols = _ASV21_EXTRA[track]
    audio_dir = Path(f"ASVspoof2021_{track}_eval") / "flac"
    entries = []
    for no, cols in read_protocol(keys, ncols):
        label = protocol_key(cols[5], keys, no)
        extra = {name: cols[i] for i, name in extra_cols.items()}
        row = ManifestRow(cols[1], (audio_dir / f"{cols[1]}.flac").as_posix(), label,
                          attack_of(cols[4], label), cols[0], split="eval", language="en",
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
                              attack_of(cols[k - 1], label), cols[0], split=split, language="en",
                              extra=extra)
            entries.append(Entry(row, proto, no))
    if not found:
        expected = ", ".join(name for name, _ in _ASV5_SPLITS.values())
        raise DataError(f"no protocol files found; expected {expected} in the root or "
                        "ASVspoof5_protocols/", root)
    return CorpusScan(root, entries)
