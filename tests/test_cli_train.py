"""`rlspoof train` / `rlspoof pretrain` under hostile input (issue 13): exit 2 with one line that
names the culprit, nothing the user had is overwritten without --overwrite, and a CPU run
prints no pin_memory noise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

from rlspoof.cli import EXIT_INPUT_ERROR, app
from rlspoof.errors import RlspoofError

pytestmark = pytest.mark.usefixtures("one_torch_thread")
runner = CliRunner()


def _recipe(tmp_path, corpus, name="sft.yaml", **fields):
    recipe = {
        "method": "sft", "encoder_preset": "tiny", "train_manifest": str(corpus / "train.csv"),
        "crop_seconds": 0.5, "output_dir": str(tmp_path / "run"), "max_steps": 1,
        "per_device_train_batch_size": 4, "save_strategy": "no", "use_cpu": True,
        "disable_tqdm": True, "report_to": "none", **fields,
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(recipe))
    return path


def _error(args) -> str:
    """The one line ``main()`` prints for ``rlspoof ARGS``: an RlspoofError, nothing else."""
    result = runner.invoke(app, args)
    assert isinstance(result.exception, RlspoofError), (args, result.exception, result.output)
    return str(result.exception)


def _rlspoof(*args, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "rlspoof", *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=600)


@pytest.mark.parametrize("command", ["train", "pretrain"])
@pytest.mark.parametrize(("text", "message"), [
    ("- method: sft\n", "a recipe must be a YAML mapping of config keys (key: value lines), got a list"),
    ("sft\n", "a recipe must be a YAML mapping of config keys (key: value lines), got a str"),
])
def test_a_recipe_that_is_a_list_or_a_scalar_names_the_file(tmp_path, command, text, message):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    assert _error([command, str(path)]) == f"{path}: {message}"


@pytest.mark.parametrize(("override", "message"), [
    ("learning_rate", "--set expects key=value, got 'learning_rate'"),
    ("learning_rate=[1,", "--set learning_rate is not valid YAML (line 1, column 4"),
    ("augment=[{name: rawboost, algo: 12}]", "augment: augmentation spec #0 (rawboost): RawBoost algo"),
    ("augment=[nonsense:1:2]", "augment: augmentation spec #0 must be a mapping"),
    ("max_steps=0", "max_steps must be a positive number of optimizer steps"),
    ("max_steps=-5", "max_steps must be a positive number of optimizer steps, or -1 to train "
                     "num_train_epochs epochs; got -5"),
    ("learning_rate=nan", "learning_rate must be positive, got nan"),
    ("resume_from_checkpoint={tmp}/nothing", "resume_from_checkpoint: {tmp}/nothing does not exist"),
])
def test_a_bad_override_is_one_line_naming_it(tiny_corpus, tmp_path, override, message):
    folder, _ = tiny_corpus
    recipe = _recipe(tmp_path, folder)
    text = _error(["train", str(recipe), "--set", override.replace("{tmp}", str(tmp_path))])
    assert text.startswith(message.replace("{tmp}", str(tmp_path))) and "\n" not in text


def test_an_empty_or_one_class_manifest_names_the_file(tiny_corpus, tmp_path):
    folder, _ = tiny_corpus
    recipe = _recipe(tmp_path, folder)
    lines = (folder / "train.csv").read_text().splitlines()
    (tmp_path / "header.csv").write_text(lines[0] + "\n")
    assert str(tmp_path / "header.csv") in _error(["train", str(recipe), "--set",
                                                   f"train_manifest={tmp_path / 'header.csv'}"])
    bonafide = [line for line in lines[1:] if ",bonafide," in line]
    (tmp_path / "bona.csv").write_text("\n".join([lines[0], *bonafide]).replace(",audio/", f",{folder}/audio/"))
    text = _error(["train", str(recipe), "--set", f"train_manifest={tmp_path / 'bona.csv'}"])
    assert text.startswith(f"{tmp_path / 'bona.csv'}: all {len(bonafide)} training rows are 'bonafide'")


def test_set_accepts_a_yaml_list_of_manifests(tiny_corpus, tmp_path):
    folder, _ = tiny_corpus
    recipe = _recipe(tmp_path, folder)
    both = f"train_manifest=[{folder / 'train.csv'}, {folder / 'target_train.csv'}]"
    result = runner.invoke(app, ["train", str(recipe), "--set", both])
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load((tmp_path / "run" / "recipe.resolved.yaml").read_text())
    assert resolved["train_manifest"] == [str(folder / "train.csv"), str(folder / "target_train.csv")]
    card = (tmp_path / "run" / "README.md").read_text()  # every saved run carries its model card
    assert "rlspoof policy" in card and "SYNTHETIC corpus" in card and "Class 0 is `bonafide`" in card


def test_a_finished_run_is_replaced_only_with_overwrite(tiny_corpus, tmp_path):
    folder, _ = tiny_corpus
    recipe = _recipe(tmp_path, folder)
    assert runner.invoke(app, ["train", str(recipe)]).exit_code == 0
    weights = tmp_path / "run" / "model.safetensors"
    before = weights.read_bytes()
    assert "holds a finished run" in _error(["train", str(recipe), "--set", "seed=7"])
    assert weights.read_bytes() == before
    start = f"model_name_or_path={tmp_path / 'run'}"
    assert "is model_name_or_path" in _error(["train", str(recipe), "--overwrite", "--set", start,
                                              "--set", "encoder_preset=null"])
    result = runner.invoke(app, ["train", str(recipe), "--overwrite", "--set", "seed=7"])
    assert result.exit_code == 0, result.output
    assert weights.read_bytes() != before


def test_pretrain_refuses_to_replace_an_encoder_without_overwrite(tiny_corpus, tmp_path):
    folder, _ = tiny_corpus
    recipe = tmp_path / "pretrain.yaml"
    recipe.write_text(yaml.safe_dump({
        "train_manifest": str(folder / "train.csv"), "crop_seconds": 0.5, "output_dir": str(tmp_path / "pre"),
        "max_steps": 1, "per_device_train_batch_size": 2, "save_strategy": "no", "report_to": "none",
        "disable_tqdm": True, "use_cpu": True}))
    assert runner.invoke(app, ["pretrain", str(recipe)]).exit_code == 0
    assert "holds a finished run" in _error(["pretrain", str(recipe)])
    assert "max_steps must be a positive" in _error(["pretrain", str(recipe), "--set", "max_steps=0"])
    assert runner.invoke(app, ["pretrain", str(recipe), "--overwrite"]).exit_code == 0


@pytest.mark.slow
def test_a_real_cpu_run_exits_cleanly_without_noise_or_leftovers(tiny_corpus, tmp_path):
    """The process as a user runs it: exit codes from main(), no pin_memory warning, no
    traceback, and no empty .partial folder left behind. (DeepSpeed's "Setting accelerator to
    CPU" line stays: keeping accelerate from importing DeepSpeed made two-rank CPU runs abort
    at exit about one time in three.)"""
    folder, _ = tiny_corpus
    recipe = _recipe(tmp_path, folder, max_steps=2, save_strategy="steps", save_steps=1,
                     use_cpu=False, eval_manifest=str(folder / "dev.csv"), eval_strategy="steps",
                     eval_steps=2)
    proc = _rlspoof("train", recipe)
    assert proc.returncode == 0, proc.stderr
    for noise in ("pin_memory", "Traceback"):
        assert noise not in proc.stderr + proc.stdout, noise
    run = tmp_path / "run"
    assert (run / "model.safetensors").is_file() and not (run / ".partial").exists()

    proc = _rlspoof("train", recipe)  # the same run again: refused, the policy kept
    assert proc.returncode == EXIT_INPUT_ERROR
    assert "holds a finished run" in proc.stderr and "Traceback" not in proc.stderr
