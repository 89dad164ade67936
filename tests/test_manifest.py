"""Tests for rlspoof.data.manifest: labels, reading/writing, errors with file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rlspoof.data.manifest import (
    BONAFIDE,
    SPOOF,
    Manifest,
    ManifestRow,
    normalize_label,
    read_manifest,
    relocate,
    write_manifest,
)
from rlspoof.errors import DataError


def _rows() -> list[ManifestRow]:
    return [
        ManifestRow("u1", "audio/u1.wav", "bonafide", speaker="s1", split="train", duration=1.25,
                    extra={"codec": "mp3", "note": "a, b"}),
        ManifestRow("u2", "audio/u2.wav", "spoof", attack="A07", split="train", duration=2.0),
        ManifestRow("u3", "/abs/u3.flac", "spoof", attack="A08", split="dev",
                    extra={"codec": "opus"}),
    ]


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("bonafide", BONAFIDE), ("bona-fide", BONAFIDE), ("Bona_Fide", BONAFIDE),
        ("bona fide", BONAFIDE), (" genuine ", BONAFIDE), ("REAL", BONAFIDE),
        ("spoof", SPOOF), ("Spoofed", SPOOF), ("fake", SPOOF), (" DeepFake\t", SPOOF),
    ],
)
def test_label_synonyms_map_to_canonical(raw, expected):
    assert normalize_label(raw) == expected
    assert ManifestRow("x", "x.wav", raw).label == expected


def test_label_id_order():
    assert ManifestRow("a", "a.wav", "real").label_id == 0
    assert ManifestRow("b", "b.wav", "fake").label_id == 1


def test_unknown_label_csv_names_file_and_line(tmp_path: Path):
    path = tmp_path / "m.csv"
    path.write_text("utt_id,path,label\nu1,a.wav,bonafide\nu2,b.wav,maybe\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_manifest(path)
    msg = str(info.value)
    assert "m.csv" in msg and ":3:" in msg and "maybe" in msg
    assert info.value.line == 3


def test_unknown_label_jsonl_names_file_and_line(tmp_path: Path):
    path = tmp_path / "m.jsonl"
    lines = [
        json.dumps({"utt_id": "u1", "path": "a.wav", "label": "spoof"}),
        json.dumps({"utt_id": "u2", "path": "b.wav", "label": "synthetic"}),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError) as info:
        read_manifest(path)
    assert "m.jsonl" in str(info.value) and ":2:" in str(info.value)
    assert info.value.line == 2


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_write_read_round_trip(tmp_path: Path, suffix: str):
    path = write_manifest(Manifest(_rows()), tmp_path / f"m{suffix}")
    back = read_manifest(path)
    assert [r.utt_id for r in back] == ["u1", "u2", "u3"]
    assert back[0].extra == {"codec": "mp3", "note": "a, b"}
    assert back[1].extra == {}
    assert back[2].extra == {"codec": "opus"}
    assert back[2].duration is None
    assert back[1].attack == "A07" and back[0].speaker == "s1" and back[2].split == "dev"
    assert [r.label for r in back] == [BONAFIDE, SPOOF, SPOOF]
    assert back.root == tmp_path and back.origin == str(path)
    assert not (tmp_path / f"m{suffix}.tmp").exists()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_round_trip_duration_is_float(tmp_path: Path, suffix: str):
    back = read_manifest(write_manifest(Manifest(_rows()), tmp_path / f"m{suffix}"))
    assert isinstance(back[0].duration, float)
    assert back[0].duration == pytest.approx(1.25)


def test_missing_required_column_in_header(tmp_path: Path):
    path = tmp_path / "m.csv"
    path.write_text("utt_id,label\nu1,bonafide\n", encoding="utf-8")
    with pytest.raises(DataError, match="path") as info:
        read_manifest(path)
    assert "m.csv" in str(info.value)


def test_empty_path_value_names_line(tmp_path: Path):
    path = tmp_path / "m.csv"
    path.write_text("utt_id,path,label\nu1,a.wav,bonafide\nu2,,spoof\n", encoding="utf-8")
    with pytest.raises(DataError, match="path") as info:
        read_manifest(path)
    assert info.value.line == 3 and "m.csv:3:" in str(info.value)


def test_empty_path_value_jsonl(tmp_path: Path):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"utt_id": "u1", "path": " ", "label": "spoof"}) + "\n")
    with pytest.raises(DataError, match="path") as info:
        read_manifest(path)
    assert info.value.line == 1


def test_duplicate_utt_id(tmp_path: Path):
    path = tmp_path / "m.csv"
    path.write_text("utt_id,path,label\nu1,a.wav,bonafide\nu1,b.wav,spoof\n", encoding="utf-8")
    with pytest.raises(DataError, match="duplicate utt_id 'u1'") as info:
        read_manifest(path)
    assert "m.csv" in str(info.value)
    with pytest.raises(DataError, match="duplicate"):
        Manifest([ManifestRow("a", "a.wav", "spoof"), ManifestRow("a", "b.wav", "spoof")])


def test_bad_duration_and_surplus_cells(tmp_path: Path):
    path = tmp_path / "m.csv"
    path.write_text("utt_id,path,label,duration\nu1,a.wav,spoof,long\n", encoding="utf-8")
    with pytest.raises(DataError, match="duration"):
        read_manifest(path)
    path.write_text("utt_id,path,label\nu1,a.wav,spoof,extra\n", encoding="utf-8")
    with pytest.raises(DataError, match="more cells") as info:
        read_manifest(path)
    assert info.value.line == 2


def test_missing_file_and_bad_extension(tmp_path: Path):
    with pytest.raises(DataError, match="does not exist"):
        read_manifest(tmp_path / "nope.csv")
    other = tmp_path / "m.txt"
    other.write_text("utt_id,path,label\n")
    with pytest.raises(DataError, match="m.txt"):
        read_manifest(other)


def test_filter_scalar_list_and_extra():
    m = Manifest(_rows())
    assert [r.utt_id for r in m.filter(split="train")] == ["u1", "u2"]
    assert [r.utt_id for r in m.filter(attack=["A07", "A08"])] == ["u2", "u3"]
    assert [r.utt_id for r in m.filter(split="train", label="spoof")] == ["u2"]
    assert [r.utt_id for r in m.filter(codec="opus")] == ["u3"]
    assert len(m.filter(split="eval")) == 0
    assert m.filter(split="dev").root == m.root


def test_audio_path_resolves_against_manifest_folder(tmp_path: Path):
    path = write_manifest(Manifest(_rows()), tmp_path / "corpus" / "m.csv")
    m = read_manifest(path)
    assert m.audio_path(m[0]) == tmp_path / "corpus" / "audio" / "u1.wav"
    assert m.audio_path(m[2]) == Path("/abs/u3.flac")


def test_relocate_rewrites_paths(tmp_path: Path):
    m = Manifest(_rows()[:2], root=tmp_path / "corpus")
    moved = relocate(m, tmp_path)
    assert moved[0].path == "corpus/audio/u1.wav"
    assert moved.audio_path(moved[0]) == (tmp_path / "corpus/audio/u1.wav").resolve()
    assert moved[0].extra == {"codec": "mp3", "note": "a, b"}
    # outside the new root -> absolute
    elsewhere = relocate(m, tmp_path / "other")
    assert Path(elsewhere[0].path).is_absolute()
    assert elsewhere.audio_path(elsewhere[0]) == moved.audio_path(moved[0])


@pytest.mark.parametrize("suffix, value, line", [(".csv", "nan", 3), (".csv", "-1.5", 3),
                                                 (".csv", "inf", 3), (".jsonl", "NaN", 2),
                                                 (".jsonl", "-2", 2), (".jsonl", "true", 2)])
def test_nan_negative_or_boolean_duration_names_its_line(tmp_path: Path, suffix, value, line):
    """A NaN duration made `data summary --json` print NaN (not JSON); it is now refused."""
    path = tmp_path / f"m{suffix}"
    if suffix == ".csv":
        path.write_text(f"utt_id,path,label,duration\nu1,a.wav,spoof,1\nu2,b.wav,spoof,{value}\n")
    else:
        path.write_text(f'{{"utt_id": "u1", "path": "a", "label": "spoof"}}\n'
                        f'{{"utt_id": "u2", "path": "b", "label": "spoof", "duration": {value}}}\n')
    with pytest.raises(DataError, match="duration") as info:
        read_manifest(path)
    assert info.value.line == line and f"m{suffix}:{line}:" in str(info.value)


def test_blank_or_dash_duration_is_unknown(tmp_path: Path):
    path = tmp_path / "m.csv"
    path.write_text("utt_id,path,label,duration\nu1,a.wav,spoof,\nu2,b.wav,spoof,-\nu3,c,spoof,0\n")
    assert [r.duration for r in read_manifest(path)] == [None, None, 0.0]


def test_byte_order_mark_is_stripped(tmp_path: Path):
    """Excel writes a BOM; it used to stick to the first header name ("\\ufeffutt_id")."""
    for suffix, text in ((".csv", "utt_id,path,label\nu1,a.wav,spoof\n"),
                         (".jsonl", '{"utt_id": "u1", "path": "a.wav", "label": "spoof"}\n')):
        path = tmp_path / f"m{suffix}"
        path.write_text(text, encoding="utf-8-sig")
        assert [r.utt_id for r in read_manifest(path)] == ["u1"]


def test_empty_header_only_and_folder_manifests_are_refused(tmp_path: Path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="file is empty") as info:
        read_manifest(empty)
    assert info.value.line == 1
    header_only = tmp_path / "h.csv"
    header_only.write_text("utt_id,path,label\n")
    with pytest.raises(DataError, match="no rows"):
        read_manifest(header_only)
    blank = tmp_path / "b.jsonl"
    blank.write_text("\n\n")
    with pytest.raises(DataError, match="no rows"):
        read_manifest(blank)
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(DataError, match="is a folder"):
        read_manifest(tmp_path / "dir.csv")


def test_write_refuses_what_read_would_refuse(tmp_path: Path):
    """`data prepare --out x.txt` wrote a CSV that `data summary` then refused."""
    with pytest.raises(DataError, match=r"must end in \.csv, \.tsv, \.jsonl"):
        write_manifest(_rows(), tmp_path / "m.txt")
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(DataError, match="is a folder"):
        write_manifest(_rows(), tmp_path / "dir.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.csv"]
