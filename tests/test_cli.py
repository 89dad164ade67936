"""The command line, through typer's CliRunner (and once as a real subprocess)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from rlspoof.cli import app
from rlspoof.data.audio import write_audio
from rlspoof.data.manifest import read_manifest
from rlspoof.data.synth.corpus import SIZES, split_specs
from rlspoof.errors import RlspoofError

runner = CliRunner()


def _tone(seconds=0.2, freq=440.0):
    t = np.arange(int(16000 * seconds)) / 16000
    return 0.3 * np.sin(2 * np.pi * freq * t)


def test_help_lists_only_working_commands():
    import typer

    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and "data" in result.output
    # Commands appear here as their issues land; nothing is listed before it works.
    assert set(typer.main.get_command(app).commands) == {
        "data", "pretrain", "train", "eval", "detect", "compare", "drift", "embed",
        "calibrate", "fuse", "export", "convert", "accelerate-config"}
    data_commands = typer.main.get_command(app).commands["data"].commands
    assert set(data_commands) == {"synth", "prepare", "validate", "summary"}
    assert set(typer.main.get_command(app).commands["convert"].commands) == {"fairseq"}


def test_synth_builds_corpus_and_prints_table(tmp_path):
    out = tmp_path / "mini"
    result = runner.invoke(app, ["data", "synth", "--size", "tiny", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.output and "eval_unseen_attack" in result.output
    manifest = read_manifest(out / "manifest.csv")
    assert len(manifest) == sum(spec.n_bonafide + spec.n_spoof_per_attack * len(spec.attacks)
                                for spec in split_specs(SIZES["tiny"])) == 160
    assert all(manifest.audio_path(r).is_file() for r in manifest)


@pytest.fixture
def plain_folder(tmp_path):
    root = tmp_path / "corpus"
    write_audio(root / "bonafide" / "a.wav", _tone())
    write_audio(root / "bonafide" / "b.wav", _tone(freq=220))
    write_audio(root / "spoof" / "tts1" / "c.wav", _tone(freq=330))
    return root


def test_prepare_writes_manifest_relative_to_its_folder(plain_folder, tmp_path):
    out = tmp_path / "manifests" / "plain.csv"
    result = runner.invoke(app, ["data", "prepare", "folder", str(plain_folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    manifest = read_manifest(out)
    assert sorted(r.label for r in manifest) == ["bonafide", "bonafide", "spoof"]
    assert {r.attack for r in manifest if r.label == "spoof"} == {"tts1"}
    assert all(manifest.audio_path(r).is_file() for r in manifest)


def test_prepare_unknown_corpus_is_a_user_error(plain_folder, tmp_path):
    result = runner.invoke(app, ["data", "prepare", "asvspoof2019", str(plain_folder),
                                 "--out", str(tmp_path / "m.csv")])
    assert isinstance(result.exception, RlspoofError)
    assert "asvspoof2019_la" in str(result.exception)


def test_validate_skip_bad_lists_bad_files_and_keeps_good_ones(plain_folder, tmp_path):
    (plain_folder / "spoof" / "tts1" / "broken.wav").write_bytes(b"RIFF\x00\x00not audio at all")
    manifest_path = tmp_path / "m.csv"
    runner.invoke(app, ["data", "prepare", "folder", str(plain_folder), "--out", str(manifest_path),
                        "--check-audio", "none"])
    strict = runner.invoke(app, ["data", "validate", str(manifest_path)])
    assert isinstance(strict.exception, RlspoofError) and "broken.wav" in str(strict.exception)

    clean = tmp_path / "clean.csv"
    result = runner.invoke(app, ["data", "validate", str(manifest_path), "--skip-bad", "--out", str(clean)])
    assert result.exit_code == 0, result.output
    assert "3 of 4 files usable" in result.output
    skipped = (tmp_path / "m.skipped.csv").read_text()
    assert "broken.wav" in skipped
    assert len(read_manifest(clean)) == 3


def test_user_errors_print_one_line_and_exit_2(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "rlspoof", "data", "summary", str(tmp_path / "missing.csv")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2
    assert "missing.csv" in proc.stderr and "Traceback" not in proc.stderr


def test_train_eval_detect_round_trip(tiny_corpus, tmp_path):
    import json

    import yaml

    folder, _ = tiny_corpus
    recipe = tmp_path / "sft.yaml"
    recipe.write_text(yaml.safe_dump({
        "method": "sft", "encoder_preset": "tiny", "train_manifest": str(folder / "train.csv"),
        "crop_seconds": 0.5, "output_dir": str(tmp_path / "run"), "max_steps": 3,
        "per_device_train_batch_size": 4, "save_strategy": "no", "use_cpu": True,
        "disable_tqdm": True, "report_to": "none",
    }))
    result = runner.invoke(app, ["train", str(recipe), "--set", "seed=5"])
    assert result.exit_code == 0, result.output
    model = tmp_path / "run"
    assert (model / "model.safetensors").is_file()

    result = runner.invoke(app, ["eval", "--model", str(model), "--set", f"dev={folder / 'dev.csv'}",
                                 "--out", str(tmp_path / "ev")])
    assert result.exit_code == 0, result.output
    assert "dev" in result.output and "pooled" in result.output
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["dev"]["pooled"]["n_bonafide"] == 8

    # several models: one results folder each and a side-by-side table (one column per model)
    result = runner.invoke(app, ["eval", "--model", f"a={model}", "--model", f"b={model}",
                                 "--set", f"dev={folder / 'dev.csv'}", "--set", str(folder / "eval.csv"),
                                 "--out", str(tmp_path / "side")])
    assert result.exit_code == 0, result.output
    side = {m: json.loads((tmp_path / "side" / m / "metrics.json").read_text()) for m in "ab"}
    assert side["a"] == side["b"] and set(side["a"]) == {"dev", "eval"}
    eer = 100 * side["a"]["eval"]["pooled"]["eer"]
    row = next(line for line in result.output.splitlines() if line.strip("│ ").startswith("eval"))
    assert row.count(f"{eer:.1f} (") == 2
    result = runner.invoke(app, ["eval", "--model", str(model), "--model", str(model),
                                 "--set", str(folder / "dev.csv")])
    assert isinstance(result.exception, RlspoofError)  # main() turns it into one line + exit 2
    assert "--model name 'run' given twice" in str(result.exception)

    out = tmp_path / "detect.json"
    result = runner.invoke(app, ["detect", "--model", str(model), "--format", "json", "--out", str(out),
                                 str(folder / "audio" / "dev")])
    assert result.exit_code == 0, result.output
    assert len(json.loads(out.read_text())["results"]) == 16


def test_drift_alerts_on_a_shifted_score_distribution_only(tmp_path):
    from rlspoof.evaluation import ScoredSet, write_score_file

    rng = np.random.default_rng(0)

    def score_file(name, shift):
        scores = list(rng.normal(shift, 1.0, 300))
        return write_score_file(ScoredSet(name, [f"u{i}" for i in range(300)], scores,
                                          ["bonafide"] * 300, ["-"] * 300), tmp_path / f"{name}.tsv")

    ref, same, moved = score_file("ref", 0.0), score_file("same", 0.0), score_file("moved", 1.0)
    quiet = runner.invoke(app, ["drift", "--reference", str(ref), "--incoming", str(same),
                                "--calibrate", "0.99", "--out", str(tmp_path / "quiet.json")])
    assert quiet.exit_code == 0, quiet.output
    assert json.loads((tmp_path / "quiet.json").read_text())["alert"] is False
    loud = runner.invoke(app, ["drift", "--reference", str(ref), "--incoming", str(moved),
                               "--alpha", "0.05", "--permutations", "99"])
    assert loud.exit_code == 1 and '"alert": true' in loud.output
    unset = runner.invoke(app, ["drift", "--reference", str(ref), "--incoming", str(moved)])
    assert isinstance(unset.exception, RlspoofError)


# ------------------------------------------------------------------------- exit codes


class _Exited(Exception):
    pass


@pytest.fixture
def process_group(tmp_path, monkeypatch):
    """A one-rank gloo group, as a distributed launch leaves it, and an ``os._exit`` that
    records its code instead of ending the test process."""
    import os

    import torch.distributed as dist

    codes = []

    def record_exit(code):
        codes.append(code)
        raise _Exited

    monkeypatch.setattr(os, "_exit", record_exit)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0,
                            world_size=1)
    yield codes
    if dist.is_initialized():
        dist.destroy_process_group()


@pytest.mark.parametrize(("argv", "code"), [
    (["accelerate-config", "cpu_ddp"], 0),
    (["accelerate-config", "no_such_config"], 2),  # an RlspoofError
    (["no-such-command"], 2),  # typer's usage error
])
def test_main_exits_with_the_documented_code(monkeypatch, argv, code):
    from rlspoof.cli import main

    monkeypatch.setattr(sys, "argv", ["rlspoof", *argv])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == code


@pytest.mark.parametrize(("argv", "code"), [
    (["accelerate-config", "cpu_ddp"], 0), (["accelerate-config", "no_such_config"], 2)])
def test_a_distributed_rank_closes_its_group_and_skips_teardown(process_group, monkeypatch,
                                                                argv, code):
    """The rank leaves by os._exit with the same code (libtorch's destructors can abort it)."""
    import torch.distributed as dist

    from rlspoof.cli import main

    monkeypatch.setattr(sys, "argv", ["rlspoof", *argv])
    with pytest.raises(_Exited):
        main()
    assert process_group == [code]
    assert not dist.is_initialized()


def test_a_message_exit_prints_it_and_exits_1_under_a_group(process_group, capsys):
    from rlspoof.cli import exit_process

    with pytest.raises(_Exited):
        exit_process("stopped: no trials")
    assert process_group == [1]
    assert "stopped: no trials" in capsys.readouterr().err


def test_a_bug_keeps_its_traceback_and_still_closes_the_group(process_group, monkeypatch):
    import torch.distributed as dist

    from rlspoof import cli

    def broken():
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(cli, "app", broken)
    with pytest.raises(ZeroDivisionError):
        cli.main()
    assert process_group == [] and not dist.is_initialized()
