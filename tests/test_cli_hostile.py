"""The exit-code contract under hostile input, over every command (issue 13).

Each case is one command line with one hostile value in it. The contract is written in
``rlspoof/cli/__init__.py``: bad input exits 2 with one line that names the culprit, exit 1 is
only a command's own alert, a traceback never appears, and the user's files are left exactly as
they were (every case runs against the same folder, whose bytes are compared afterwards).
"""

from __future__ import annotations

import hashlib
import os
import signal
import traceback
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from typer.testing import CliRunner

from rlspoof.cli import EXIT_ALERT, EXIT_INPUT_ERROR, app
from rlspoof.data.audio import write_audio
from rlspoof.errors import RlspoofError

runner = CliRunner()
OK, ALERT, BAD = 0, EXIT_ALERT, EXIT_INPUT_ERROR


def _invoke(args: list[str]) -> tuple[int, str]:
    """What ``rlspoof ARGS`` would exit with and print, as ``main()`` maps errors."""
    result = runner.invoke(app, args)
    exc = result.exception
    if isinstance(exc, RlspoofError):
        return EXIT_INPUT_ERROR, f"{result.output}error: {exc}"
    if exc is not None and not isinstance(exc, SystemExit):
        raise AssertionError(f"rlspoof {' '.join(args)} raised "
                             f"{''.join(traceback.format_exception(exc))}")
    return result.exit_code, result.output


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def user_files(tmp_path_factory):
    """A user's folder: a tiny policy, good and hostile clips, manifests, recipes, score files."""
    from rlspoof.evaluation import ScoredSet, write_score_file
    from rlspoof.models.encoders import EncoderConfig
    from rlspoof.models.policy import PolicyConfig, build_policy

    root = tmp_path_factory.mktemp("user")
    rng = np.random.default_rng(0)
    policy = build_policy(PolicyConfig(encoder=EncoderConfig(preset="tiny"), crop_seconds=0.5))
    policy.save_pretrained(root / "policy")
    clips = root / "clips"
    for i in range(4):
        write_audio(clips / f"clip{i}.wav", 0.1 * rng.standard_normal(8000))
    write_audio(root / "short.wav", 0.1 * rng.standard_normal(100))
    sf.write(root / "nan.wav", np.full(8000, np.nan, np.float32), 16000, subtype="FLOAT")
    sf.write(root / "huge.wav", np.full(8000, 1e30, np.float32), 16000, subtype="FLOAT")
    (root / "binary.bin").write_bytes(bytes(range(256)) * 4)
    (root / "empty.csv").write_text("")
    header = "utt_id,path,label,attack,speaker\n"
    rows = [f"u{i},clips/clip{i}.wav,{'bonafide' if i < 2 else 'spoof'},{'-' if i < 2 else 'A01'},s{i}"
            for i in range(4)]
    (root / "set.csv").write_text(header + "\n".join(rows) + "\n")
    (root / "one_class.csv").write_text(header + "\n".join(r.replace("spoof", "bonafide")
                                                         .replace("A01", "-") for r in rows) + "\n")
    recipe = {"method": "sft", "encoder_preset": "tiny", "train_manifest": str(root / "set.csv"),
              "crop_seconds": 0.5, "output_dir": str(root / "never_written"), "max_steps": 2,
              "per_device_train_batch_size": 2, "save_strategy": "no", "report_to": "none",
              "disable_tqdm": True}
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    (root / "list_recipe.yaml").write_text("- method: sft\n")
    (root / "scalar_recipe.yaml").write_text("sft\n")
    (root / "compare.yaml").write_text(yaml.safe_dump({
        "output_dir": str(root / "never_written"), "start": str(root / "policy"),
        "methods": {"sft": str(root / "recipe.yaml")}, "seeds": [1],
        "suite": {"old": {"manifest": str(root / "set.csv"), "role": "old"}}}))
    scores = write_score_file(ScoredSet("ref", [f"u{i}" for i in range(50)],
                                        list(rng.normal(0, 1, 50)), ["bonafide"] * 50, ["-"] * 50),
                              root / "scores.tsv")
    lines = scores.read_text().splitlines()
    lines[1] = "\t".join(["u0", "nan", *lines[1].split("\t")[2:]])
    (root / "nan_scores.tsv").write_text("\n".join(lines) + "\n")
    os.mkfifo(clips / "stuck.wav")  # a FIFO with an audio name: opening it blocks forever
    return root


def _cases(r: Path) -> list[tuple[str, list[str], int]]:
    """(id, argv, expected exit code). ``r`` is the user's folder; outputs go under r/../out."""
    out = r.parent / "out"
    policy, clip, manifest = str(r / "policy"), str(r / "clips" / "clip0.wav"), str(r / "set.csv")
    recipe = str(r / "recipe.yaml")
    detect = ["detect", "--model", policy]
    ev = ["eval", "--model", policy, "--set", f"dev={manifest}", "--out", str(out / "eval")]
    drift = ["drift", "--reference", str(r / "scores.tsv"), "--threshold", "1.0", "--incoming"]
    return [
        # detect
        ("detect-out-is-input", [*detect, clip, "--out", clip], BAD),
        ("detect-out-existing", [*detect, clip, "--out", manifest], BAD),
        ("detect-out-is-folder", [*detect, clip, "--out", str(r / "clips")], BAD),
        ("detect-threshold-nan", [*detect, clip, "--threshold", "nan"], BAD),
        ("detect-threshold-inf", [*detect, clip, "--threshold", "inf"], BAD),
        ("detect-window-nan", [*detect, clip, "--window", "nan"], BAD),
        ("detect-window-zero", [*detect, clip, "--window", "0"], BAD),
        ("detect-window-negative", [*detect, clip, "--window", "-1"], BAD),
        ("detect-hop-bomb", [*detect, clip, "--window", "1", "--hop", "0.0001"], BAD),
        ("detect-missing-input", [*detect, str(r / "missing.wav")], BAD),
        ("detect-missing-list", [*detect, str(r / "missing.txt")], BAD),
        ("detect-missing-model", ["detect", "--model", str(r / "nope"), clip], BAD),
        ("detect-model-is-a-clip", ["detect", "--model", clip, clip], BAD),
        ("detect-format", [*detect, clip, "--format", "xml"], BAD),
        ("detect-only-bad-inputs", [*detect, str(r / "nan.wav"), str(r / "huge.wav")], ALERT),
        ("detect-short-clip-scored", [*detect, str(r / "short.wav"), "--out", str(out / "s.csv")], OK),
        ("detect-folder-with-fifo", [*detect, str(r), "--out", str(out / "scan.csv")], OK),
        # eval
        ("eval-max-seconds-negative", [*ev, "--max-seconds", "-1"], BAD),
        ("eval-max-seconds-zero", [*ev, "--max-seconds", "0"], BAD),
        ("eval-batch-size-zero", [*ev, "--batch-size", "0"], BAD),
        ("eval-set-name-escapes", ["eval", "--model", policy, "--set", f"../../x={manifest}",
                                   "--out", str(out / "eval2")], BAD),
        ("eval-missing-manifest", ["eval", "--model", policy, "--set", str(r / "missing.csv")], BAD),
        ("eval-empty-manifest", ["eval", "--model", policy, "--set", str(r / "empty.csv")], BAD),
        ("eval-binary-manifest", ["eval", "--model", policy, "--set", str(r / "binary.bin")], BAD),
        # train / pretrain
        ("train-missing-recipe", ["train", str(r / "missing.yaml")], BAD),
        ("train-recipe-is-a-list", ["train", str(r / "list_recipe.yaml")], BAD),
        ("train-recipe-is-a-scalar", ["train", str(r / "scalar_recipe.yaml")], BAD),
        ("train-recipe-is-binary", ["train", str(r / "binary.bin")], BAD),
        ("train-set-unparsable", ["train", recipe, "--set", "learning_rate"], BAD),
        ("train-set-typo", ["train", recipe, "--set", "learning_rat=1e-3"], BAD),
        ("train-max-steps-zero", ["train", recipe, "--set", "max_steps=0"], BAD),
        ("train-max-steps-negative", ["train", recipe, "--set", "max_steps=-5"], BAD),
        ("train-lr-nan", ["train", recipe, "--set", "learning_rate=nan"], BAD),
        ("train-one-class", ["train", recipe, "--set", f"train_manifest={r / 'one_class.csv'}"], BAD),
        ("train-empty-manifest", ["train", recipe, "--set", f"train_manifest={r / 'empty.csv'}"], BAD),
        ("train-augment-malformed", ["train", recipe, "--set", "augment=[nonsense:1:2]"], BAD),
        ("train-resume-missing", ["train", recipe, "--set", f"resume_from_checkpoint={r / 'nope'}"], BAD),
        ("train-output-is-start", ["train", recipe, "--set", f"model_name_or_path={policy}",
                                   "--set", "encoder_preset=null",
                                   "--set", f"output_dir={policy}"], BAD),
        ("train-output-is-finished-run", ["train", recipe, "--set", f"output_dir={policy}"], BAD),
        ("pretrain-missing-recipe", ["pretrain", str(r / "missing.yaml")], BAD),
        ("pretrain-recipe-is-a-list", ["pretrain", str(r / "list_recipe.yaml")], BAD),
        # data
        ("data-validate-rate-zero", ["data", "validate", manifest, "--sample-rate", "0"], BAD),
        ("data-validate-rate-negative", ["data", "validate", manifest, "--sample-rate", "-16000"], BAD),
        ("data-synth-jobs-negative", ["data", "synth", "--size", "tiny", "--jobs", "-1",
                                      "--out", str(out / "synth")], BAD),
        ("data-summary-missing", ["data", "summary", str(r / "missing.csv")], BAD),
        ("data-summary-empty", ["data", "summary", str(r / "empty.csv")], BAD),
        ("data-summary-binary", ["data", "summary", str(r / "binary.bin")], BAD),
        ("data-summary-folder", ["data", "summary", str(r / "clips")], BAD),
        ("data-prepare-unknown-corpus", ["data", "prepare", "nonsense", str(r), "--out",
                                         str(out / "m.csv")], BAD),
        ("data-prepare-bad-extension", ["data", "prepare", "folder", str(r / "clips"), "--out",
                                        str(out / "m.txt")], BAD),
        # compare / drift / embed / accelerate-config
        ("compare-missing-recipe", ["compare", str(r / "missing.yaml")], BAD),
        ("compare-seeds-not-ints", ["compare", str(r / "compare.yaml"), "--seeds", "abc"], BAD),
        ("drift-missing-file", [*drift, str(r / "missing.tsv")], BAD),
        ("drift-empty-file", [*drift, str(r / "empty.csv")], BAD),
        ("drift-binary-file", [*drift, str(r / "binary.bin")], BAD),
        ("drift-nan-scores", [*drift, str(r / "nan_scores.tsv")], BAD),
        ("embed-missing-manifest", ["embed", "--model", policy, "--manifest", str(r / "missing.csv"),
                                    "--out", str(out / "emb")], BAD),
        ("embed-batch-size-zero", ["embed", "--model", policy, "--manifest", manifest,
                                   "--batch-size", "0", "--out", str(out / "emb2")], BAD),
        ("accelerate-config-unknown", ["accelerate-config", "nonsense"], BAD),
    ]


def test_hostile_inputs_keep_the_exit_code_contract(user_files):
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("a hostile command hung"))
    signal.alarm(600)  # a hang (a FIFO opened for reading) must fail the test, not CI
    before = _digest(user_files)
    failures = []
    for case_id, argv, expected in _cases(user_files):
        code, output = _invoke(argv)
        if code != expected or "Traceback" in output:
            failures.append(f"{case_id}: exit {code}, expected {expected}\n{output[-600:]}")
        elif code == BAD and not output.strip():
            failures.append(f"{case_id}: exit 2 without a message")
    signal.alarm(0)
    assert not failures, "\n\n".join(failures)
    assert _digest(user_files) == before, "a hostile command changed the user's files"


def test_the_fifo_scan_scored_the_good_files_and_reported_the_rest(user_files):
    out = user_files.parent / "out" / "scan.csv"
    if not out.exists():
        _invoke(["detect", "--model", str(user_files / "policy"), str(user_files), "--out", str(out)])
    scored = out.read_text()
    assert all(f"clip{i}.wav" in scored for i in range(4))
    assert "stuck.wav" not in scored

