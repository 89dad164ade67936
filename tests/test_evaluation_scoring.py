"""Scoring sets and files with a policy: score files, metrics.json, windows, bad files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from rlspoof.data.audio import write_audio
from rlspoof.errors import AudioError
from rlspoof.evaluation import collect_audio_paths, detect_files, evaluate_sets, score_manifest
from rlspoof.models import EncoderConfig, PolicyConfig, build_policy


@pytest.fixture(scope="module")
def policy():
    torch.manual_seed(0)
    return build_policy(PolicyConfig(encoder=EncoderConfig(preset="tiny"))).eval()


def test_scores_equal_policy_scores_of_the_loaded_audio(policy, tiny_corpus):
    folder, manifest = tiny_corpus
    dev = manifest.filter(split="dev")
    scored = score_manifest(policy, dev, "dev", batch_size=3)
    assert sorted(scored.utt_ids) == sorted(r.utt_id for r in dev)
    from rlspoof.data.audio import load_audio

    first = dev[0]
    expected = policy.score([load_audio(folder / first.path)])[0]
    assert scored.scores[scored.utt_ids.index(first.utt_id)] == pytest.approx(expected, abs=1e-5)


def test_evaluate_sets_writes_score_files_and_metrics(policy, tiny_corpus, tmp_path):
    _, manifest = tiny_corpus
    sets = {"dev": manifest.filter(split="dev"), "unseen": manifest.filter(split="eval_unseen_attack")}
    results = evaluate_sets(policy, sets, tmp_path)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(results))
    for name, part in sets.items():
        rows = list(csv.reader((tmp_path / "scores" / f"{name}.tsv").open(), delimiter="\t"))
        assert rows[0] == ["filename", "cm-score", "label", "attack"] and len(rows) == len(part) + 1
        pooled = results[name]["pooled"]
        assert 0 <= pooled["eer"] <= 1 and pooled["eer_ci95"][0] <= pooled["eer"] <= pooled["eer_ci95"][1]
        assert set(results[name]["per_attack"]) == {r.attack for r in part if r.label == "spoof"}


def test_group_by_breaks_a_set_down_by_any_manifest_column(policy, tiny_corpus, tmp_path):
    """Each channel condition of eval_channel is scored on its own bonafide and spoof trials;
    a column no manifest has is refused before anything is scored, with the columns listed."""
    from rlspoof.errors import RlspoofError
    from rlspoof.metrics import compute_eer

    _, manifest = tiny_corpus
    channel = manifest.filter(split="eval_channel")
    dev = manifest.filter(split="dev")  # no channel column: not broken down by it
    results = evaluate_sets(policy, {"channel": channel, "dev": dev}, tmp_path,
                            group_by=["channel", "speaker"])
    assert set(results["dev"]["per_group"]) == {"speaker"}
    by_channel = results["channel"]["per_group"]["channel"]
    conditions = {r.extra["channel"] for r in channel}
    assert set(by_channel) == {c for c in conditions
                               if {r.label for r in channel if r.extra["channel"] == c} == {"bonafide", "spoof"}}
    scored = score_manifest(policy, channel)
    for condition, metrics in by_channel.items():
        rows = [i for i, u in enumerate(scored.utt_ids)
                if next(r for r in channel if r.utt_id == u).extra["channel"] == condition]
        bona = np.array([scored.scores[i] for i in rows if scored.labels[i] == "bonafide"])
        spoof = np.array([scored.scores[i] for i in rows if scored.labels[i] == "spoof"])
        assert (metrics["n_bonafide"], metrics["n_spoof"]) == (len(bona), len(spoof))
        assert metrics["eer"] == pytest.approx(compute_eer(bona, spoof)[0])
    assert set(results["channel"]["per_group"]["speaker"]) <= {r.speaker for r in channel}
    with pytest.raises(RlspoofError, match=r"'chanel': no set has.*columns: utt_id.*channel"):
        evaluate_sets(policy, {"channel": channel}, tmp_path / "typo", group_by=["chanel"])
    assert not (tmp_path / "typo" / "scores" / "channel.tsv").exists()


def test_bad_audio_fails_or_is_skipped_and_reported(policy, tiny_corpus, tmp_path):
    folder, manifest = tiny_corpus
    dev = manifest.filter(split="dev")
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"fLaC not really")
    dev.rows[0] = type(dev.rows[0])(**{**dev.rows[0].__dict__, "path": str(broken)})
    with pytest.raises(AudioError, match="broken.flac"):
        score_manifest(policy, dev)
    scored = score_manifest(policy, dev, skip_bad=True)
    assert len(scored.scores) == len(dev) - 1 and scored.skipped[0][0] == dev[0].utt_id


def test_detect_windows_long_files_and_reports_bad_ones(policy, tmp_path):
    t = np.arange(16000 * 3) / 16000
    write_audio(tmp_path / "long.wav", 0.3 * np.sin(2 * np.pi * 220 * t))
    write_audio(tmp_path / "short.wav", 0.3 * np.sin(2 * np.pi * 220 * t[:8000]))
    (tmp_path / "bad.wav").write_bytes(b"RIFF")
    (tmp_path / "list.txt").write_text("long.wav\nshort.wav\nbad.wav\n")
    rows, errors = detect_files(policy, collect_audio_paths([tmp_path / "list.txt"]),
                                window_seconds=1.0, hop_seconds=0.5)
    by_name = {r["path"].rsplit("/", 1)[-1]: r for r in rows}
    assert len(by_name["long.wav"]["window_scores"]) == 5  # 0, .5, 1, 1.5, 2 s starts
    assert len(by_name["short.wav"]["window_scores"]) == 1
    long = by_name["long.wav"]
    assert long["score"] == pytest.approx(np.mean(long["window_scores"]), abs=1e-5)
    assert long["p_bonafide"] == pytest.approx(1 / (1 + np.exp(-long["score"])))
    assert [e["path"].rsplit("/", 1)[-1] for e in errors] == ["bad.wav"]
    with pytest.raises(AudioError):
        detect_files(policy, [tmp_path / "bad.wav"], strict=True)


def test_score_file_round_trip_and_malformed_lines(tmp_path):
    from rlspoof.errors import DataError
    from rlspoof.evaluation import ScoredSet, read_score_file, write_score_file

    scored = ScoredSet("dev", ["u1", "u2"], [1.25, -0.5], ["bonafide", "spoof"], ["-", "A01"])
    path = write_score_file(scored, tmp_path / "dev.tsv")
    back = read_score_file(path)
    assert (back.name, back.utt_ids, back.scores, back.labels, back.attacks) == (
        "dev", scored.utt_ids, scored.scores, scored.labels, scored.attacks)
    path.write_text(path.read_text() + "u3\tnot-a-number\tspoof\tA02\n")
    with pytest.raises(DataError, match=r"dev.tsv:4: malformed score line"):
        read_score_file(path)


def test_non_finite_scores_are_errors_or_skipped_never_results(policy, tiny_corpus, tmp_path):
    import soundfile as sf

    from rlspoof.errors import RlspoofError

    _, manifest = tiny_corpus
    dev = manifest.filter(split="dev")
    huge = tmp_path / "huge.wav"  # finite samples that overflow the encoder: a NaN score
    sf.write(huge, np.full(8000, 1e30, np.float32), 16000, subtype="FLOAT")
    dev.rows[0] = type(dev.rows[0])(**{**dev.rows[0].__dict__, "path": str(huge)})
    with pytest.raises(RlspoofError, match="huge.wav: the model gave a non-finite score"):
        score_manifest(policy, dev)
    scored = score_manifest(policy, dev, skip_bad=True)
    assert dev[0].utt_id not in scored.utt_ids and np.isfinite(scored.scores).all()
    assert scored.skipped == [(dev[0].utt_id, scored.skipped[0][1])]
    rows, errors = detect_files(policy, [huge])
    assert rows == [] and "non-finite score" in errors[0]["error"]


def test_detect_bounds_the_windows_of_one_file(policy, tmp_path, monkeypatch):
    from rlspoof.evaluation import detect

    write_audio(tmp_path / "long.wav", 0.1 * np.random.default_rng(0).standard_normal(16000 * 3))
    monkeypatch.setattr(detect, "MAX_WINDOWS", 4)
    rows, errors = detect_files(policy, [tmp_path / "long.wav"], window_seconds=1.0, hop_seconds=0.5)
    assert rows == [] and "5 windows (at most 4)" in errors[0]["error"]
    with pytest.raises(AudioError, match="larger --hop"):
        detect_files(policy, [tmp_path / "long.wav"], 1.0, 0.5, strict=True)


def test_names_that_leave_the_results_folder_are_refused(policy, tiny_corpus, tmp_path):
    from rlspoof.errors import RlspoofError
    from rlspoof.evaluation import check_name

    assert check_name("dev set-1", "--set") == "dev set-1"
    for name in ("../../x", "a/b", "..", ".", "", "a\\b"):
        with pytest.raises(RlspoofError, match="plain file name"):
            check_name(name, "--set")
    _, manifest = tiny_corpus
    with pytest.raises(RlspoofError, match="plain file name"):
        evaluate_sets(policy, {"../x": manifest.filter(split="dev")}, tmp_path / "out")
    assert not (tmp_path / "x.tsv").exists() and not (tmp_path / "out").exists()


def test_read_scores_accepts_eval_and_detect_outputs(tmp_path):
    from rlspoof.errors import DataError
    from rlspoof.evaluation import ScoredSet, read_scores, write_score_file

    tsv = write_score_file(ScoredSet("s", ["u1", "u2"], [1.5, -2.0], ["bonafide", "spoof"], ["-", "A"]),
                           tmp_path / "s.tsv")
    csv_out = tmp_path / "d.csv"
    csv_out.write_text("\ufeffpath,score,decision,p_bonafide,n_windows\na.wav,1.500000,bonafide,0.8,1\n"
                       "b.wav,-2.000000,spoof,0.1,1\n")
    json_out = tmp_path / "d.json"
    json_out.write_text(json.dumps({"results": [{"path": "a", "score": 1.5}, {"path": "b", "score": -2}],
                                    "errors": []}))
    for path in (tsv, csv_out, json_out):
        assert read_scores(path) == [1.5, -2.0]
    csv_out.write_text("path,score,decision,p_bonafide,n_windows\na.wav,1.5,bonafide\n")
    with pytest.raises(DataError, match=r"d.csv:2: malformed score line"):
        read_scores(csv_out)
    with pytest.raises(DataError, match="not a regular file"):
        read_scores(tmp_path)
