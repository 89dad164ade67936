"""Corpus adapters on tiny replicas of the real on-disk layouts, with real (0.1 s) audio files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rlspoof.data.audio import write_audio
from rlspoof.data.corpora import (
    CORPORA,
    list_corpora,
    prepare_corpus,
    write_antideepfake_csv,
)
from rlspoof.data.manifest import Manifest, ManifestRow, write_manifest
from rlspoof.errors import DataError, RlspoofError

TONE = 0.3 * np.sin(2 * np.pi * 440 * np.arange(1600) / 16000)


def tone(path: Path) -> Path:
    return write_audio(path, TONE)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def by_id(manifest: Manifest) -> dict[str, ManifestRow]:
    return {row.utt_id: row for row in manifest}


def assert_resolves(manifest: Manifest) -> None:
    assert manifest.rows, "empty manifest"
    for row in manifest:
        assert manifest.audio_path(row).is_file(), row.path


# --- fixtures: one per corpus layout ----------------------------------------------------------

ASV19 = {
    "train": ("trn", ["LA_0079 LA_T_1138215 - - bonafide", "LA_0079 LA_T_1271820 - A01 spoof"]),
    "dev": ("trl", ["LA_0069 LA_D_1047731 - - bonafide", "", "LA_0070 LA_D_1105538 - A04 spoof"]),
    "eval": ("trl", ["LA_0039 LA_E_2834763 - A11 spoof", "LA_0040 LA_E_1000147 - - bonafide"]),
}


def proto19(root: Path, split: str) -> Path:
    kind = ASV19[split][0]
    return root / "LA" / "ASVspoof2019_LA_cm_protocols" / f"ASVspoof2019.LA.cm.{split}.{kind}.txt"


@pytest.fixture
def asv19(tmp_path: Path) -> Path:
    for split, (_, lines) in ASV19.items():
        write(proto19(tmp_path, split), "\n".join(lines) + "\n")
        for line in filter(None, lines):
            tone(tmp_path / "LA" / f"ASVspoof2019_LA_{split}" / "flac" / f"{line.split()[1]}.flac")
    return tmp_path


@pytest.fixture
def asv21(tmp_path: Path) -> Path:
    la = ["LA_0009 LA_E_9332881 alaw ita_tx A07 spoof notrim eval",
          "LA_0007 LA_E_5013670 none loc_tx bonafide bonafide notrim progress"]
    df = ["LA_0023 DF_E_2000011 nocodec asvspoof A14 spoof notrim progress "
          "traditional_vocoder - - - -",
          "TEF2 DF_E_2000013 low_m4a vcc2020 Task1-team20 spoof notrim eval "
          "neural_vocoder_nonautoregressive Task1 team20 FF E",
          "LA_0043 DF_E_2000026 mp3m4a asvspoof bonafide bonafide notrim eval - - - - -"]
    write(tmp_path / "keys" / "LA" / "CM" / "trial_metadata.txt", "\n".join(la) + "\n")
    write(tmp_path / "DF-keys-full" / "keys" / "DF" / "CM" / "trial_metadata.txt", "\n".join(df))
    for track, lines in (("LA", la), ("DF", df)):
        for line in lines:
            tone(tmp_path / f"ASVspoof2021_{track}_eval" / "flac" / f"{line.split()[1]}.flac")
    return tmp_path


ASV5 = {
    "ASVspoof5.train.tsv": ("flac_T", ["T_4850 T_0000000000 F - - - AC3 A05 spoof -",
                                       "T_1000 T_0000000001 M - - - - bonafide bonafide -"]),
    "ASVspoof5.dev.track_1.tsv": ("flac_D", ["D_4461 D_0000000169 F - - - AC1 A14 spoof -",
                                             "D_0461 D_0000000190 M - - AC2 A09 spoof -"]),
    "ASVspoof5.eval.track_1.tsv": ("flac_E_eval",
                                   ["E_0001 E_0000000001 F mp3 4 7 AC1 A20 spoof -"]),
}


@pytest.fixture
def asv5(tmp_path: Path) -> Path:
    for name, (folder, lines) in ASV5.items():
        write(tmp_path / "ASVspoof5_protocols" / name, "\n".join(lines) + "\n")
        for line in lines:
            tone(tmp_path / folder / f"{line.split()[1]}.flac")
    return tmp_path


@pytest.fixture
def itw(tmp_path: Path) -> Path:
    base = tmp_path / "release_in_the_wild"
    write(base / "meta.csv", "file,speaker,label\n0.wav,Alec Guinness,spoof\n"
                             "1.wav,Alec Guinness,bona-fide\n\n2.wav,\"Obama, Barack\",spoof\n")
    for i in range(3):
        tone(base / f"{i}.wav")
    return tmp_path


@pytest.fixture
def mlaad_root(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "MLAAD"
    tone(root / "fake" / "de" / "tts_models_de_thorsten_vits" / "a.wav")
    tone(root / "fake" / "de" / "tts_models_de_thorsten_tacotron2-DCA" / "a.wav")
    tone(root / "fake" / "en" / "tts_models_en_ljspeech_vits" / "b.wav")
    write(root / "fake" / "de" / "tts_models_de_thorsten_vits" / "meta.csv", "x\n")
    bona = tmp_path / "M-AILABS"
    tone(bona / "de_DE" / "by_book" / "female" / "eva_k" / "grune_haus" / "wavs" / "g_001.wav")
    tone(bona / "en_US" / "by_book" / "mix" / "some_book" / "wavs" / "s_001.wav")
    return root, bona


@pytest.fixture
def for_root(tmp_path: Path) -> Path:
    for version in ("for-norm", "for-2seconds"):
        for split in ("training", "validation", "testing"):
            for label in ("fake", "real"):
                tone(tmp_path / version / split / label / "file1.wav")
    return tmp_path


@pytest.fixture
def folder_root(tmp_path: Path) -> Path:
    tone(tmp_path / "bonafide" / "a.wav")
    tone(tmp_path / "bonafide" / "sub" / "a.wav")
    tone(tmp_path / "fake" / "xtts" / "b.wav")
    tone(tmp_path / "spoof" / "c.flac")
    tone(tmp_path / "notes" / "d.wav")
    write(tmp_path / "spoof" / "readme.txt", "not audio")
    write(tmp_path / "spoof" / "e.m4a", "not decoded")
    return tmp_path


# --- registry ---------------------------------------------------------------------------------


def test_registry_lists_all_adapters():
    expected = {"asvspoof2019_la", "asvspoof2021_la", "asvspoof2021_df", "asvspoof5",
                "in_the_wild", "mlaad", "antideepfake", "fake_or_real", "folder"}
    assert set(list_corpora()) == expected == set(CORPORA)
    for adapter in CORPORA.values():
        assert adapter.__doc__


def test_unknown_corpus_lists_valid_names_and_suggests(tmp_path):
    with pytest.raises(DataError) as err:
        prepare_corpus("asvspoof2019", tmp_path)
    assert "asvspoof2019_la" in str(err.value) and "in_the_wild" in str(err.value)
    assert "did you mean 'asvspoof2019_la'" in str(err.value)


def test_bad_options_are_user_errors(asv19):
    with pytest.raises(RlspoofError, match="does not take option"):
        prepare_corpus("asvspoof2019_la", asv19, protocol="x")
    with pytest.raises(RlspoofError, match="check_audio"):
        prepare_corpus("asvspoof2019_la", asv19, check_audio="maybe")
    with pytest.raises(DataError, match="does not exist"):
        prepare_corpus("asvspoof2019_la", asv19 / "nope")


# --- ASVspoof 2019 LA ---------------------------------------------------------------------------


@pytest.mark.parametrize("sub", ["", "LA"])
def test_asvspoof2019_rows(asv19, sub):
    result = prepare_corpus("ASVspoof2019-LA", asv19 / sub, check_audio="read")
    m = result.manifest
    assert result.skipped == [] and len(m) == 6
    assert [r.utt_id for r in m] == sorted(r.utt_id for r in m)
    assert_resolves(m)
    rows = by_id(m)
    assert rows["LA_E_2834763"].attack == "A11" and rows["LA_E_2834763"].label == "spoof"
    assert rows["LA_D_1047731"].attack == "-" and rows["LA_D_1047731"].label == "bonafide"
    assert rows["LA_T_1271820"].speaker == "LA_0079"
    assert {r.split for r in m} == {"train", "dev", "eval"}
    assert {r.source for r in m} == {"asvspoof2019_la"} and {r.language for r in m} == {"en"}
    assert rows["LA_T_1138215"].path.endswith("ASVspoof2019_LA_train/flac/LA_T_1138215.flac")


def test_asvspoof2019_missing_split_is_skipped_but_none_is_error(asv19, tmp_path):
    proto19(asv19, "eval").unlink()
    assert {r.split for r in prepare_corpus("asvspoof2019_la", asv19).manifest} == {"train", "dev"}
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"ASVspoof2019\.LA\.cm\.train\.trn\.txt"):
        prepare_corpus("asvspoof2019_la", empty)


@pytest.mark.parametrize("bad, needle", [
    ("LA_0070 LA_D_9 - A04", "expected 5 whitespace-separated columns, found 4"),
    ("LA_0070 LA_D_9 - A04 fake", "neither bonafide nor spoof"),
])
def test_asvspoof2019_malformed_line_names_file_and_line(asv19, bad, needle):
    proto = proto19(asv19, "dev")
    proto.write_text(proto.read_text() + bad + "\n")  # 3 lines + blank -> line 4
    with pytest.raises(DataError) as err:
        prepare_corpus("asvspoof2019_la", asv19)
    assert err.value.path == str(proto) and err.value.line == 4
    assert "ASVspoof2019.LA.cm.dev.trl.txt:4:" in str(err.value) and needle in str(err.value)


def test_missing_audio_is_error_or_skipped(asv19):
    gone = asv19 / "LA" / "ASVspoof2019_LA_dev" / "flac" / "LA_D_1105538.flac"
    gone.unlink()
    with pytest.raises(DataError) as err:
        prepare_corpus("asvspoof2019_la", asv19)
    assert str(gone) in str(err.value) and "does not exist" in str(err.value)
    assert "ASVspoof2019.LA.cm.dev.trl.txt:3:" in str(err.value)
    result = prepare_corpus("asvspoof2019_la", asv19, skip_bad=True)
    assert "LA_D_1105538" not in by_id(result.manifest) and len(result.manifest) == 5
    assert len(result.skipped) == 1 and result.skipped[0][0] == str(gone)
    assert "LA_D_1105538" in result.skipped[0][1]
    assert len(prepare_corpus("asvspoof2019_la", asv19, check_audio="none").manifest) == 6


def test_unreadable_audio_caught_only_by_read(asv19):
    bad = asv19 / "LA" / "ASVspoof2019_LA_eval" / "flac" / "LA_E_2834763.flac"
    bad.write_bytes(b"not a flac file at all")
    assert len(prepare_corpus("asvspoof2019_la", asv19).manifest) == 6
    with pytest.raises(DataError, match="unreadable audio") as err:
        prepare_corpus("asvspoof2019_la", asv19, check_audio="read")
    assert str(bad) in str(err.value)
    result = prepare_corpus("asvspoof2019_la", asv19, check_audio="read", skip_bad=True)
    assert [s[0] for s in result.skipped] == [str(bad)]


def test_duplicate_utt_id_names_both_lines(asv19):
    proto = proto19(asv19, "train")
    proto.write_text(proto.read_text() + "LA_0079 LA_T_1138215 - - bonafide\n")
    with pytest.raises(DataError, match=r"duplicate utt_id 'LA_T_1138215' \(first at .*:1\)"):
        prepare_corpus("asvspoof2019_la", asv19)


# --- ASVspoof 2021 ----------------------------------------------------------------------------


def test_asvspoof2021_la(asv21):
    m = prepare_corpus("asvspoof2021_la", asv21, check_audio="read").manifest
    assert_resolves(m)
    rows = by_id(m)
    spoof, bona = rows["LA_E_9332881"], rows["LA_E_5013670"]
    assert (spoof.label, spoof.attack, spoof.speaker, spoof.split) == (
        "spoof", "A07", "LA_0009", "eval")
    assert spoof.extra == {"codec": "alaw", "transmission": "ita_tx", "trim": "notrim",
                           "subset": "eval"}
    assert (bona.label, bona.attack, bona.extra["subset"]) == ("bonafide", "-", "progress")


def test_asvspoof2021_df_and_protocol_option(asv21, tmp_path):
    m = prepare_corpus("asvspoof2021_df", asv21).manifest
    assert_resolves(m)
    rows = by_id(m)
    vcc = rows["DF_E_2000013"]
    assert (vcc.speaker, vcc.attack, vcc.label) == ("TEF2", "Task1-team20", "spoof")
    assert vcc.extra == {"codec": "low_m4a", "source_corpus": "vcc2020", "trim": "notrim",
                         "subset": "eval", "vocoder": "neural_vocoder_nonautoregressive"}
    assert rows["DF_E_2000011"].extra["subset"] == "progress"
    assert rows["DF_E_2000026"].label == "bonafide" and rows["DF_E_2000026"].attack == "-"
    keys = asv21 / "DF-keys-full" / "keys" / "DF" / "CM" / "trial_metadata.txt"
    moved = keys.rename(tmp_path / "my_keys.txt")
    with pytest.raises(DataError, match="trial_metadata.txt"):
        prepare_corpus("asvspoof2021_df", asv21)
    assert len(prepare_corpus("asvspoof2021_df", asv21, protocol=moved).manifest) == 3
    # An 8-column LA keys file given as DF keys is rejected at its first line.
    la_keys = asv21 / "keys" / "LA" / "CM" / "trial_metadata.txt"
    with pytest.raises(DataError, match="trial_metadata.txt:1: expected 13"):
        prepare_corpus("asvspoof2021_df", asv21, protocol=la_keys)


# --- ASVspoof 5 -------------------------------------------------------------------------------


def test_asvspoof5(asv5):
    m = prepare_corpus("asvspoof5", asv5, check_audio="read").manifest
    assert_resolves(m)
    assert len(m) == 5
    rows = by_id(m)
    t = rows["T_0000000000"]
    assert (t.split, t.label, t.attack, t.speaker) == ("train", "spoof", "A05", "T_4850")
    assert t.extra == {"gender": "F", "codec": "-", "codec_q": "-", "codec_seed": "-",
                       "attack_tag": "AC3"}
    assert rows["T_0000000001"].label == "bonafide" and rows["T_0000000001"].attack == "-"
    # 9 columns: the label column is found by value, not position
    assert rows["D_0000000190"].label == "spoof" and rows["D_0000000190"].attack == "A09"
    e = rows["E_0000000001"]
    assert e.split == "eval" and e.path == "flac_E_eval/E_0000000001.flac"
    assert e.extra["codec"] == "mp3" and e.extra["codec_seed"] == "7"


def test_asvspoof5_line_without_key(asv5):
    proto = asv5 / "ASVspoof5_protocols" / "ASVspoof5.train.tsv"
    proto.write_text(proto.read_text() + "\nT_1 T_2 F - - - AC3 A05 fake -\n")
    with pytest.raises(DataError, match=r"ASVspoof5\.train\.tsv:4: no bonafide/spoof column"):
        prepare_corpus("asvspoof5", asv5)


# --- In-the-Wild ------------------------------------------------------------------------------


def test_in_the_wild(itw):
    m = prepare_corpus("in_the_wild", itw, check_audio="read").manifest
    assert_resolves(m)
    rows = by_id(m)
    assert [r.label for r in m] == ["spoof", "bonafide", "spoof"]
    assert rows["0"].path == "release_in_the_wild/0.wav" and rows["0"].speaker == "Alec Guinness"
    assert rows["2"].speaker == "Obama, Barack"
    assert {r.split for r in m} == {"eval"} and {r.source for r in m} == {"in_the_wild"}
    assert len(prepare_corpus("in_the_wild", itw / "release_in_the_wild").manifest) == 3


@pytest.mark.parametrize("bad, needle", [("3.wav,Someone\n", "expected 3 cells, found 2"),
                                         ("3.wav,Someone,maybe\n", "unknown label 'maybe'")])
def test_in_the_wild_malformed_row(itw, bad, needle):
    meta = itw / "release_in_the_wild" / "meta.csv"
    meta.write_text(meta.read_text() + bad)
    with pytest.raises(DataError, match=needle) as err:
        prepare_corpus("in_the_wild", itw)
    assert err.value.path == str(meta) and err.value.line == 6


# --- MLAAD ------------------------------------------------------------------------------------


def test_mlaad(mlaad_root):
    root, bona = mlaad_root
    m = prepare_corpus("mlaad", root).manifest
    assert_resolves(m)
    assert {r.label for r in m} == {"spoof"} and len(m) == 3  # same file name, two models
    assert {(r.language, r.attack) for r in m} == {
        ("de", "tts_models_de_thorsten_vits"), ("de", "tts_models_de_thorsten_tacotron2-DCA"),
        ("en", "tts_models_en_ljspeech_vits")}
    both = prepare_corpus("mlaad", root, bonafide_root=bona).manifest
    assert_resolves(both)
    real = [r for r in both if r.label == "bonafide"]
    assert [(r.language, r.speaker) for r in real] == [("de", "eva_k"), ("en", "-")]
    assert real[0].extra == {"locale": "de_DE", "gender": "female", "book": "grune_haus"}


def test_mlaad_without_fake_folder(tmp_path):
    with pytest.raises(DataError, match="no fake/ folder"):
        prepare_corpus("mlaad", tmp_path)


# --- Fake-or-Real -----------------------------------------------------------------------------


def test_fake_or_real(for_root):
    m = prepare_corpus("fake_or_real", for_root).manifest
    assert_resolves(m)
    assert len(m) == 12
    assert m.counts("split", "label")[("train", "spoof")] == 2
    assert {r.extra["version"] for r in m} == {"norm", "2seconds"}
    row = by_id(m)["for-norm__validation__real__file1"]
    assert (row.split, row.label, row.path) == ("dev", "bonafide",
                                                "for-norm/validation/real/file1.wav")
    single = prepare_corpus("fake_or_real", for_root / "for-norm").manifest
    assert_resolves(single)
    assert len(single) == 6 and "for-norm__testing__fake__file1" in by_id(single)


# --- folder -----------------------------------------------------------------------------------


def test_folder(folder_root):
    result = prepare_corpus("folder", folder_root, check_audio="read")
    m = result.manifest
    assert_resolves(m)
    rows = by_id(m)
    assert set(rows) == {"bonafide__a", "bonafide__sub__a", "fake__xtts__b", "spoof__c"}
    assert rows["fake__xtts__b"].label == "spoof" and rows["fake__xtts__b"].attack == "xtts"
    assert rows["spoof__c"].attack == "-" and rows["bonafide__sub__a"].attack == "-"
    reasons = dict(result.skipped)
    assert "not a label" in reasons[str(folder_root / "notes")]
    assert "unsupported audio format .m4a" in reasons[str(folder_root / "spoof" / "e.m4a")]


def test_folder_delegates_to_manifest_file(folder_root, tmp_path):
    manifest = prepare_corpus("folder", folder_root).manifest
    path = write_manifest(manifest, folder_root / "list.csv")
    again = prepare_corpus("folder", path).manifest
    assert [r.utt_id for r in again] == [r.utt_id for r in manifest]
    assert_resolves(again)


# --- AntiDeepfake CSV -------------------------------------------------------------------------


def test_antideepfake_read(tmp_path):
    tone(tmp_path / "data" / "ASVspoof5" / "flac_D" / "D_1.flac")
    csv_path = write(tmp_path / "protocols" / "ASVspoof5.csv",
                     "ID,Label,Duration,SampleRate,Path,Attack,Speaker,Proportion,AudioChannel,"
                     "AudioEncoding,AudioBitSample,Language\n"
                     "ASV5-A14-D_1,fake,0.1,16000,$ROOT/ASVspoof5/flac_D/D_1.flac,A14,D_4461,"
                     "valid,1,PCM_S,16,EN\n")
    m = prepare_corpus("antideepfake", csv_path, data_root=tmp_path / "data").manifest
    assert_resolves(m)
    row = m[0]
    assert (row.utt_id, row.label, row.attack, row.speaker, row.split, row.language) == (
        "ASV5-A14-D_1", "spoof", "A14", "D_4461", "dev", "en")
    assert row.duration == pytest.approx(0.1) and row.extra["sample_rate"] == "16000"
    with pytest.raises(DataError, match="does not exist"):  # $ROOT defaults to the CSV's folder
        prepare_corpus("antideepfake", csv_path)


def test_antideepfake_round_trip(asv19, tmp_path):
    original = prepare_corpus("asvspoof2019_la", asv19).manifest
    csv_path = write_antideepfake_csv(original, tmp_path / "out" / "asv19.csv", data_root=asv19)
    text = csv_path.read_text()
    assert "$ROOT/LA/ASVspoof2019_LA_dev/flac/LA_D_1047731.flac" in text and ",real," in text
    back = prepare_corpus("antideepfake", csv_path, data_root=asv19, check_audio="read").manifest
    assert_resolves(back)
    assert [r.utt_id for r in back] == [r.utt_id for r in original]
    for a, b in zip(original, back, strict=True):
        assert (a.label, a.attack, a.speaker, a.split, a.language) == (
            b.label, b.attack, b.speaker, b.split, b.language)
        assert back.audio_path(b) == original.audio_path(a)
        assert b.duration == pytest.approx(0.1) and b.extra["sample_rate"] == "16000"


def test_empty_folder_says_what_was_skipped(tmp_path):
    write(tmp_path / "spoof" / "x.m4a", "")
    with pytest.raises(DataError, match=r"no utterances found.*unsupported audio format \.m4a"):
        prepare_corpus("folder", tmp_path)


# --- hostile input (issue 13) -----------------------------------------------------------------


def test_byte_order_mark_on_a_protocol_keeps_the_first_speaker(asv19):
    """A BOM used to turn the first line's speaker LA_0079 into "\\ufeffLA_0079"."""
    proto = proto19(asv19, "train")
    proto.write_text(proto.read_text(), encoding="utf-8-sig")
    rows = by_id(prepare_corpus("asvspoof2019_la", asv19).manifest)
    assert rows["LA_T_1138215"].speaker == "LA_0079"


def test_byte_order_mark_on_a_folder_manifest(folder_root, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("utt_id,path,label\nu1,bonafide/a.wav,bonafide\n", encoding="utf-8-sig")
    assert [r.utt_id for r in prepare_corpus("folder", manifest).manifest] == ["u1"]


@pytest.mark.parametrize("duration, expected", [("-1", None), ("", None), ("0.5", 0.5),
                                                ("nan", "finite"), ("inf", "finite")])
def test_antideepfake_duration_minus_one_is_unknown_nan_is_refused(tmp_path, duration, expected):
    tone(tmp_path / "a.wav")
    csv_path = write(tmp_path / "p.csv", f"ID,Label,Duration,Path\nu1,fake,{duration},a.wav\n")
    if isinstance(expected, str):
        with pytest.raises(DataError, match=expected) as err:
            prepare_corpus("antideepfake", csv_path)
        assert err.value.line == 2
    else:
        assert prepare_corpus("antideepfake", csv_path).manifest[0].duration == expected


def test_a_fifo_in_a_scanned_folder_is_reported_not_opened(folder_root):
    import os

    os.mkfifo(folder_root / "bonafide" / "stuck.wav")
    result = prepare_corpus("folder", folder_root, check_audio="read")
    assert "bonafide__stuck" not in by_id(result.manifest)
    assert any(path.endswith("stuck.wav") and "not a regular file" in why
               for path, why in result.skipped)


def test_fake_or_real_root_that_is_a_file(tmp_path):
    with pytest.raises(DataError, match="must be a folder"):
        prepare_corpus("fake_or_real", write(tmp_path / "x.txt", "x"))


def test_every_row_with_bad_audio_is_an_error_even_with_skip_bad(asv19):
    for flac in asv19.rglob("*.flac"):
        flac.unlink()
    with pytest.raises(DataError, match="no usable rows: all 6 have bad audio"):
        prepare_corpus("asvspoof2019_la", asv19, skip_bad=True)
