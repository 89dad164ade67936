"""SFT through transformers.Trainer: recipe -> policy -> training -> checkpoint folder."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from rlspoof.data.manifest import Manifest, write_manifest
from rlspoof.errors import ConfigError, DataError
from rlspoof.models import SpoofPolicy
from rlspoof.trainers.run import train_from_recipe
from rlspoof.trainers.sft import sft_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _recipe(tmp_path, train, dev, **overrides):
    recipe = {
        "method": "sft", "encoder_preset": "tiny", "freeze": "none",
        "train_manifest": str(train), "eval_manifest": str(dev), "crop_seconds": 0.5,
        "output_dir": str(tmp_path / "run"), "learning_rate": 3.0e-3,
        "per_device_train_batch_size": 4, "per_device_eval_batch_size": 8,
        "max_steps": 40, "eval_strategy": "no", "save_strategy": "no", "logging_steps": 5,
        "use_cpu": True, "disable_tqdm": True, "seed": 3, "lr_scheduler_type": "constant",
    }
    recipe.update(overrides)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_sft_loss_matches_cross_entropy_and_weights_shift_it():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.5], [-1.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    plain = sft_loss(logits, labels)
    assert torch.isclose(plain, torch.nn.functional.cross_entropy(logits, labels))
    weighted = sft_loss(logits, labels, class_weights=[1.0, 3.0])
    assert not torch.isclose(plain, weighted)
    smoothed = sft_loss(logits, labels, label_smoothing=0.1)
    assert smoothed > plain  # smoothing penalises the confident correct rows


@pytest.mark.slow
def test_sft_fits_a_few_utterances_and_saves_a_loadable_policy(tiny_corpus, tmp_path):
    folder, manifest = tiny_corpus
    # both classes (the first 8 train rows are all bonafide: a constant fits those)
    few = Manifest([*manifest.filter(split="train", label="bonafide")[:4],
                    *manifest.filter(split="train", label="spoof")[:4]], root=folder)
    train = write_manifest(few, folder / "few.csv")
    out = train_from_recipe(_recipe(tmp_path, train, train))

    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    losses = [h["loss"] for h in history if "loss" in h]
    assert losses[-1] < losses[0] * 0.7, losses

    policy = SpoofPolicy.from_pretrained(out)
    assert (out / "recipe.resolved.yaml").is_file()
    resolved = yaml.safe_load((out / "recipe.resolved.yaml").read_text())
    assert resolved["learning_rate"] == 3.0e-3 and resolved["encoder_preset"] == "tiny"
    assert not any(out.glob("*.bin")) and not (out / "training_args.bin").exists()
    assert policy.metadata["trainer"] == "SFTTrainer"


def test_recipe_typo_is_an_error_naming_the_key(tiny_corpus, tmp_path):
    folder, _ = tiny_corpus
    recipe = _recipe(tmp_path, folder / "train.csv", folder / "dev.csv", learnig_rate=1.0)
    with pytest.raises(ConfigError, match="learnig_rate.*did you mean 'learning_rate'"):
        train_from_recipe(recipe)


def test_unknown_method_lists_valid_ones(tiny_corpus, tmp_path):
    folder, _ = tiny_corpus
    recipe = _recipe(tmp_path, folder / "train.csv", folder / "dev.csv", method="ppo")
    with pytest.raises(ConfigError, match="unknown method 'ppo'.*sft"):
        train_from_recipe(recipe)


def test_drift_samples_logs_the_train_dev_embedding_distance_at_each_evaluation(tiny_corpus, tmp_path):
    folder, _ = tiny_corpus
    path = _recipe(tmp_path, folder / "train.csv", folder / "dev.csv", max_steps=4,
                   eval_strategy="steps", eval_steps=2, drift_samples=6)
    out = train_from_recipe(path)
    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    drift = [entry["eval_embedding_drift"] for entry in history if "eval_embedding_drift" in entry]
    assert len(drift) == 2 and all(0 < d < float("inf") for d in drift)
    with pytest.raises(ConfigError, match="drift_samples"):
        train_from_recipe(_recipe(tmp_path, folder / "train.csv", folder / "dev.csv", drift_samples=-1))


@pytest.mark.parametrize("method", ["sft", "grpo", "posttrain", "mldg", "hybrid"])
def test_a_one_class_manifest_is_refused_naming_it_and_its_label(tiny_corpus, tmp_path, method):
    """Cross-entropy on one label learns a constant and GRPO's correctness reward is won by
    always answering it: every fine-tuning method refuses, before building the model."""
    folder, manifest = tiny_corpus
    spoof = manifest.filter(split="train", label="spoof")
    spoof.root = folder
    train = write_manifest(spoof, tmp_path / "spoof_only.csv")
    extra = {"switch_step": 1} if method == "hybrid" else {}
    recipe = _recipe(tmp_path, train, train, method=method, **extra)
    with pytest.raises(DataError, match=rf"spoof_only\.csv: all {len(spoof)} training rows are 'spoof' "
                                        r"and none is 'bonafide'"):
        train_from_recipe(recipe)


def test_zero_steps_and_an_empty_split_are_errors_not_a_silent_run(tiny_corpus, tmp_path):
    folder, _ = tiny_corpus
    with pytest.raises(ConfigError, match="max_steps must be a positive number of optimizer steps"):
        train_from_recipe(_recipe(tmp_path, folder / "train.csv", folder / "dev.csv", max_steps=0))
    with pytest.raises(DataError, match=r"manifest\.csv: no rows with split 'nosuch'"):
        train_from_recipe(_recipe(tmp_path, folder / "manifest.csv", folder / "dev.csv", train_split="nosuch"))
    with pytest.raises(ConfigError, match=r"eval_strategy steps needs eval_manifest \(or set eval_strategy: no\)"):
        train_from_recipe(_recipe(tmp_path, folder / "train.csv", folder / "dev.csv", eval_manifest=None,
                                  eval_strategy="steps", eval_steps=2))
    assert not (tmp_path / "run").exists()  # nothing was written


def test_a_one_class_dev_manifest_is_refused_before_training(tiny_corpus, tmp_path):
    """Its EER is undefined: it used to fail with a traceback at the first evaluation."""
    folder, manifest = tiny_corpus
    bonafide = manifest.filter(split="dev", label="bonafide")
    bonafide.root = folder
    dev = write_manifest(bonafide, tmp_path / "dev_bonafide.csv")
    with pytest.raises(DataError, match=r"dev_bonafide\.csv: all \d+ dev rows are 'bonafide' and none is "
                                        r"'spoof'; the dev EER needs both classes"):
        train_from_recipe(_recipe(tmp_path, folder / "train.csv", dev, eval_strategy="steps", eval_steps=2))
