"""Hostile input to the scoring commands ``eval``, ``detect`` and ``drift`` (issue 13).

The contract: bad input exits 2 with one line naming the option or file, exit 1 is only the
command's own alert (drift found; detect: no input could be scored), nothing the user had is
overwritten, no scan hangs, and a non-finite score is never printed as a result.
"""

from __future__ import annotations

import csv
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from cli_helpers import run_cli

from rlspoof.data.audio import write_audio

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _noise(n: int, seed: int = 0) -> np.ndarray:
    return 0.1 * np.random.default_rng(seed).standard_normal(n)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    import torch

    from rlspoof.models import EncoderConfig, PolicyConfig, build_policy

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("model") / "policy"
    build_policy(PolicyConfig(encoder=EncoderConfig(preset="tiny"))).save_pretrained(folder)
    return folder


@pytest.fixture
def clip(tmp_path) -> Path:
    return write_audio(tmp_path / "victim.wav", _noise(8000))


def _detect(model: Path, *args) -> tuple[int, str]:
    return run_cli(["detect", "--model", model, *args])


# --- detect: --out never destroys anything ------------------------------------------------


def test_detect_refuses_to_write_over_an_input(model, clip, tmp_path):
    before = clip.read_bytes()
    code, message = _detect(model, clip, "--out", clip)
    assert code == 2 and "one of the inputs" in message
    code, _ = _detect(model, clip, "--out", clip, "--overwrite")  # not even with --overwrite
    assert code == 2 and clip.read_bytes() == before
    listing = tmp_path / "list.txt"
    listing.write_text("victim.wav\n")
    code, message = _detect(model, listing, "--out", listing, "--overwrite")
    assert code == 2 and listing.read_text() == "victim.wav\n"


def test_detect_refuses_an_existing_out_unless_overwrite(model, clip, tmp_path):
    out = tmp_path / "scores.csv"
    out.write_text("precious\n")
    code, message = _detect(model, clip, "--out", out)
    assert code == 2 and "--overwrite" in message and out.read_text() == "precious\n"
    code, _ = _detect(model, clip, "--out", out, "--overwrite")
    assert code == 0 and out.read_text().startswith("path,score,")


def test_detect_out_folder_is_a_clear_error_and_a_new_folder_is_made(model, clip, tmp_path):
    code, message = _detect(model, clip, "--out", tmp_path)
    assert code == 2 and "is a folder" in message
    code, _ = _detect(model, clip, "--out", tmp_path / "new" / "scores.csv")
    assert code == 0 and (tmp_path / "new" / "scores.csv").is_file()


# --- detect: scans skip and report bad entries, never hang -------------------------------


def test_detect_scan_skips_fifo_and_bad_files_and_scores_the_rest(model, tmp_path):
    scan = tmp_path / "scan"
    for i in range(2):
        write_audio(scan / f"good{i}.wav", _noise(8000, seed=i))
    write_audio(scan / "short.wav", _noise(100))  # below the encoder's 400-sample receptive field
    sf.write(scan / "nan.wav", np.full(800, np.nan, np.float32), 16000, subtype="FLOAT")
    sf.write(scan / "huge.wav", np.full(8000, 1e30, np.float32), 16000, subtype="FLOAT")
    (scan / "cut.wav").write_bytes(b"RIFF")
    os.mkfifo(scan / "stuck.wav")
    out = tmp_path / "scan.json"
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("detect hung on a FIFO"))
    signal.alarm(120)
    try:
        code, output = _detect(model, scan, "--format", "json", "--out", out)
    finally:
        signal.alarm(0)
    assert code == 0, output
    result = json.loads(out.read_text())
    scored = {Path(r["path"]).name for r in result["results"]}
    assert scored == {"good0.wav", "good1.wav", "short.wav"}
    assert all(np.isfinite(r["score"]) for r in result["results"])
    errors = {Path(e["path"]).name: e["error"] for e in result["errors"]}
    assert set(errors) == {"nan.wav", "huge.wav", "cut.wav", "stuck.wav"}
    assert "not a regular file" in errors["stuck.wav"] and "non-finite score" in errors["huge.wav"]
    assert "bad file" in output and "stuck.wav" in output  # also on stderr


def test_detect_exits_1_when_every_input_failed(model, tmp_path):
    sf.write(tmp_path / "huge.wav", np.full(8000, 1e30, np.float32), 16000, subtype="FLOAT")
    (tmp_path / "cut.wav").write_bytes(b"RIFF")
    code, output = _detect(model, tmp_path / "huge.wav", tmp_path / "cut.wav")
    assert code == 1 and "no file could be scored" in output
    assert "huge.wav," not in output and "bad file" in output  # reported, not a result row
    assert "1 when every input failed" in " ".join(run_cli(["detect", "--help"])[1].split())


# --- detect and eval: hostile option values ----------------------------------------------


@pytest.mark.parametrize("args, option", [
    (["--threshold", "nan"], "--threshold"),
    (["--threshold", "inf"], "--threshold"),
    (["--window", "nan"], "--window"),
    (["--window", "0"], "--window"),
    (["--window", "-1"], "--window"),
    (["--hop", "0.0001"], "--hop"),
    (["--hop", "inf"], "--hop"),
    (["--window", "1", "--hop", "2"], "--hop"),
    (["--batch-size", "0"], "--batch-size"),
])
def test_detect_bad_option_values_are_one_line_errors(model, clip, args, option):
    code, message = _detect(model, clip, *args)
    assert code == 2 and option in message


def test_detect_missing_inputs_are_usage_errors(model, tmp_path):
    code, message = _detect(model, tmp_path / "nope.txt")
    assert code == 2 and "nope.txt" in message
    code, message = _detect(model, tmp_path / "nope.wav")
    assert code == 2 and "nope.wav" in message
    (tmp_path / "empty").mkdir()
    code, message = _detect(model, tmp_path / "empty")
    assert code == 2 and "no audio files" in message


@pytest.fixture
def labelled(tmp_path) -> Path:
    header = "utt_id,path,label,attack,speaker\n"
    rows = []
    for i in range(4):
        write_audio(tmp_path / "clips" / f"c{i}.wav", _noise(4000, seed=i))
        rows.append(f"u{i},clips/c{i}.wav,{'bonafide' if i < 2 else 'spoof'},{'-' if i < 2 else 'A01'},s{i}")
    (tmp_path / "set.csv").write_text(header + "\n".join(rows) + "\n")
    return tmp_path / "set.csv"


@pytest.mark.parametrize("args, option", [
    (["--max-seconds", "-1"], "--max-seconds"),
    (["--max-seconds", "0"], "--max-seconds"),
    (["--max-seconds", "nan"], "--max-seconds"),
    (["--batch-size", "0"], "--batch-size"),
])
def test_eval_bad_option_values_are_one_line_errors(model, labelled, tmp_path, args, option):
    code, message = run_cli(["eval", "--model", model, "--set", labelled, "--out", tmp_path / "ev", *args])
    assert code == 2 and option in message


def test_eval_names_cannot_escape_out(model, labelled, tmp_path):
    out = tmp_path / "a" / "b" / "ev"
    code, message = run_cli(["eval", "--model", model, "--set", f"../../x={labelled}", "--out", out])
    assert code == 2 and "plain file name" in message
    code, message = run_cli(["eval", "--model", f"../m={model}", "--model", f"n={model}",
                          "--set", labelled, "--out", out])
    assert code == 2 and "--model" in message
    assert not list(tmp_path.rglob("x.tsv")) and not (tmp_path / "a" / "m").exists()


def test_eval_out_file_and_missing_manifest_are_one_line_errors(model, labelled, tmp_path):
    (tmp_path / "taken").write_text("")
    code, message = run_cli(["eval", "--model", model, "--set", labelled, "--out", tmp_path / "taken"])
    assert code == 2 and "taken" in message
    code, message = run_cli(["eval", "--model", model, "--set", tmp_path / "missing.csv"])
    assert code == 2 and "missing.csv" in message


def test_eval_short_clips_are_scored_and_max_seconds_limits(model, labelled, tmp_path):
    write_audio(labelled.parent / "clips" / "c0.wav", _noise(100))  # shorter than the receptive field
    code, output = run_cli(["eval", "--model", model, "--set", labelled, "--out", tmp_path / "ev",
                         "--max-seconds", "0.01"])
    assert code == 0, output
    rows = list(csv.reader((tmp_path / "ev" / "scores" / "set.tsv").open(), delimiter="\t"))
    assert len(rows) == 5 and all(np.isfinite(float(r[1])) for r in rows[1:])


def test_trust_remote_code_is_off_unless_asked_and_passed_down(model, clip, labelled, tmp_path,
                                                               monkeypatch):
    from rlspoof.models import SpoofPolicy

    seen = []
    real = SpoofPolicy.from_pretrained.__func__

    def spy(cls, folder, trust_remote_code=False):
        seen.append(trust_remote_code)
        return real(cls, folder, trust_remote_code=trust_remote_code)

    monkeypatch.setattr(SpoofPolicy, "from_pretrained", classmethod(spy))
    assert _detect(model, clip)[0] == 0
    assert _detect(model, clip, "--trust-remote-code")[0] == 0
    ev = ["eval", "--model", model, "--set", labelled, "--out", tmp_path / "ev"]
    assert run_cli(ev)[0] == 0 and run_cli([*ev, "--trust-remote-code"])[0] == 0
    assert seen == [False, True, False, True]


# --- drift: input errors are exit 2, never the alert code 1 --------------------------------


@pytest.fixture
def reference(tmp_path) -> Path:
    from rlspoof.evaluation import ScoredSet, write_score_file

    scores = list(np.random.default_rng(0).normal(0, 1, 40))
    return write_score_file(ScoredSet("ref", [f"u{i}" for i in range(40)], scores,
                                      ["bonafide"] * 40, ["-"] * 40), tmp_path / "ref.tsv")


def _drift(reference, incoming, *args) -> tuple[int, str]:
    return run_cli(["drift", "--reference", reference, "--incoming", incoming, "--threshold", "1", *args])


@pytest.mark.parametrize("name, content, expected", [
    ("missing.tsv", None, "does not exist"),
    ("empty.csv", b"", "not an rlspoof score file"),
    ("binary.bin", bytes(range(256)) * 4, ""),
    ("nan.tsv", b"filename\tcm-score\tlabel\tattack\nu0\tnan\tbonafide\t-\n", ":2: "),
    ("inf.csv", b"path,score,decision,p_bonafide,n_windows\na.wav,inf,spoof,0,1\n", ":2: "),
    ("header.tsv", b"filename\tcm-score\tlabel\tattack\n", "no scores"),
    ("other.csv", b"a,b\n1,2\n", "not an rlspoof score file"),
    ("bad.json", b'{"results": [{"score": NaN}]}', "results[0]"),
    ("list.json", b"[1, 2]", '"results"'),
    ("broken.json", b'{"results": [', "not valid JSON"),
])
def test_drift_bad_score_files_exit_2(reference, tmp_path, name, content, expected):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    code, message = _drift(reference, path)
    assert code == 2 and name in message and expected in message


@pytest.mark.parametrize("args, option", [
    (["--threshold", "nan"], "--threshold"),
    (["--threshold", "-1"], "--threshold"),
    (["--alpha", "2"], "--alpha"),
    (["--calibrate", "0"], "--calibrate"),
    (["--permutations", "0", "--alpha", "0.05"], "--permutations"),
])
def test_drift_bad_options_exit_2(reference, args, option):
    code, message = _drift(reference, reference, *args)
    assert code == 2 and option in message


def test_drift_out_never_replaces_an_input(reference, tmp_path):
    before = reference.read_bytes()
    code, message = _drift(reference, reference, "--out", reference, "--overwrite")
    assert code == 2 and reference.read_bytes() == before
    out = tmp_path / "drift.json"
    assert _drift(reference, reference, "--out", out)[0] == 0
    assert _drift(reference, reference, "--out", out)[0] == 2
    assert _drift(reference, reference, "--out", out, "--overwrite")[0] == 0


def test_drift_reads_what_detect_writes(model, tmp_path, reference):
    for i in range(3):
        write_audio(tmp_path / "clips" / f"c{i}.wav", _noise(4000, seed=i))
    for fmt in ("csv", "json"):
        out = tmp_path / f"detect.{fmt}"
        assert _detect(model, tmp_path / "clips", "--format", fmt, "--out", out)[0] == 0
        code, output = _drift(reference, out, "--threshold", "100")
        assert code == 0 and '"n_incoming": 3' in output
    help_text = " ".join(run_cli(["drift", "--help"])[1].split())
    assert "rlspoof detect" in help_text and "CSV or JSON" in help_text
