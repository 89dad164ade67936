"""What every trainer shares: NaN/Inf guard, atomic checkpoints, resume after a SIGKILL."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from trainer_helpers import (
    assert_same_policy_files,
    kill_after_checkpoint,
    same_weights,
    weights_of,
)
from transformers import TrainerCallback

from rlspoof.data.dataset import SpoofDataset
from rlspoof.data.manifest import read_manifest
from rlspoof.errors import ConfigError, RlspoofError
from rlspoof.models import EncoderConfig, PolicyConfig, build_policy
from rlspoof.trainers.base import PARTIAL_DIR
from rlspoof.trainers.run import train_from_recipe
from rlspoof.trainers.sft import SFTTrainer
from rlspoof.trainers.sft_config import SFTConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class PoisonedSFT(SFTTrainer):
    """SFT whose loss is NaN at the given optimizer steps (1-based)."""

    poisoned: tuple[int, ...] = ()

    def training_loss(self, model, inputs, outputs):
        loss = super().training_loss(model, inputs, outputs)
        return loss * float("nan") if self.state.global_step + 1 in self.poisoned else loss


class WeightsPerStep(TrainerCallback):
    def __init__(self):
        self.by_step = {}

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self.by_step[state.global_step] = weights_of(model)


def _trainer(tiny_corpus, tmp_path, poisoned, **args):
    folder, _ = tiny_corpus
    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(EncoderConfig(preset="tiny", freeze="none"), crop_seconds=0.5))
    train = SpoofDataset(read_manifest(folder / "train.csv"), crop_seconds=0.5, seed=1)
    config = SFTConfig(output_dir=str(tmp_path / "run"), max_steps=5, per_device_train_batch_size=4,
                       learning_rate=1e-3, use_cpu=True, save_strategy="no", report_to="none",
                       disable_tqdm=True, logging_steps=1, seed=1, **args)
    trainer = PoisonedSFT(policy, config, train)
    trainer.poisoned = poisoned
    recorder = WeightsPerStep()
    trainer.add_callback(recorder)
    return trainer, recorder


def test_a_nan_loss_stops_with_the_step_and_the_batch_and_leaves_the_weights_finite(tiny_corpus, tmp_path):
    trainer, recorder = _trainer(tiny_corpus, tmp_path, poisoned=(3,))
    with pytest.raises(RlspoofError, match=r"non-finite training loss \(nan\) at step 3.*SYN_TRAIN_"):
        trainer.train()
    assert sorted(recorder.by_step) == [1, 2]
    assert same_weights(trainer.model, recorder.by_step[2])  # no update was made at step 3
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())


def test_skip_drops_exactly_the_poisoned_optimizer_step(tiny_corpus, tmp_path):
    trainer, recorder = _trainer(tiny_corpus, tmp_path, poisoned=(3,), nonfinite_loss="skip")
    trainer.train()
    assert sorted(recorder.by_step) == [1, 2, 3, 4, 5]
    assert same_weights(recorder.by_step[3], recorder.by_step[2])
    assert not same_weights(recorder.by_step[4], recorder.by_step[3])
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    skipped = [h for h in trainer.state.log_history if h.get("nonfinite_skipped")]
    assert [h["step"] for h in skipped] == [3]


def test_nonfinite_loss_setting_is_checked():
    with pytest.raises(ConfigError, match="nonfinite_loss must be one of error, skip"):
        SFTConfig(output_dir="x", nonfinite_loss="ignore")


def _recipe(tmp_path, corpus, **overrides) -> Path:
    recipe = {
        "method": "sft", "encoder_preset": "tiny", "freeze": "none",
        "train_manifest": str(corpus / "train.csv"), "crop_seconds": 1.0,
        "output_dir": str(tmp_path / "run"), "learning_rate": 1e-3, "per_device_train_batch_size": 8,
        "max_steps": 60, "save_strategy": "steps", "save_steps": 10, "logging_steps": 5,
        "eval_strategy": "no", "use_cpu": True, "disable_tqdm": True, "report_to": "none", "seed": 9,
        "head_dropout": 0.1, "dataloader_num_workers": 0, **overrides,
    }
    path = tmp_path / f"recipe_{len(overrides)}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


@pytest.mark.slow
def test_checkpoints_are_renamed_into_place_and_a_partial_one_is_never_resumed(tiny_corpus, tmp_path):
    folder, _ = tiny_corpus
    out = train_from_recipe(_recipe(tmp_path, folder, max_steps=20))
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-10", "checkpoint-20"]
    assert not (out / PARTIAL_DIR).exists()  # the staging folder goes once it is empty
    # a half-written checkpoint from a killed save sits in .partial and is never picked up
    (out / PARTIAL_DIR / "checkpoint-30").mkdir(parents=True)
    (out / PARTIAL_DIR / "checkpoint-30" / "model.safetensors").write_bytes(b"trunc")
    again = train_from_recipe(_recipe(tmp_path, folder, max_steps=30, resume_from_checkpoint="last"))
    state = yaml.safe_load((again / "trainer_state.json").read_text())
    assert state["global_step"] == 30
    assert not (out / PARTIAL_DIR).exists()
    with pytest.raises(ConfigError, match="no checkpoint-"):
        train_from_recipe(_recipe(tmp_path, folder, output_dir=str(tmp_path / "empty"),
                                  resume_from_checkpoint="last"))

    # A pickled optimizer.pt is refused (never unpickled), as one line naming the file.
    evil, marker = tmp_path / "evil", tmp_path / "pwned"
    shutil.copytree(out / "checkpoint-30", evil)
    torch.save({"state": _Payload(marker)}, evil / "optimizer.pt")
    with pytest.raises(RlspoofError, match=r"evil/optimizer\.pt: refused, not loaded: it is a pickle "
                                           r"that imports io\.open") as err:
        train_from_recipe(_recipe(tmp_path, folder, max_steps=31, resume_from_checkpoint=str(evil)))
    assert "\n" not in str(err.value) and not marker.exists()


class _Payload:
    """Unpickling it would create ``marker``: the file must never appear."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize(("value", "message"), [
    ("nowhere", "resume_from_checkpoint: {tmp}/nowhere does not exist"),
    ("folder", "resume_from_checkpoint: {tmp}/folder is not a checkpoint folder (no trainer_state.json)"),
])
def test_resuming_from_nothing_names_the_path(tiny_corpus, tmp_path, value, message):
    folder, _ = tiny_corpus
    (tmp_path / "folder").mkdir()
    with pytest.raises(ConfigError, match=re.escape(message.format(tmp=tmp_path))):
        train_from_recipe(_recipe(tmp_path, folder, resume_from_checkpoint=str(tmp_path / value)))


def test_a_finished_run_and_the_starting_checkpoint_are_never_overwritten(tiny_corpus, tmp_path):
    folder, _ = tiny_corpus
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.safetensors").write_bytes(b"the user's finished policy")
    with pytest.raises(ConfigError, match=f"output_dir {run} holds a finished run"):
        train_from_recipe(_recipe(tmp_path, folder, max_steps=2))
    with pytest.raises(ConfigError, match=f"output_dir {run} is model_name_or_path {run}"):
        train_from_recipe(_recipe(tmp_path, folder, encoder_preset=None, model_name_or_path=str(run),
                                  overwrite_output_dir=True))
    with pytest.raises(ConfigError, match="is inside model_name_or_path"):
        train_from_recipe(_recipe(tmp_path, folder, encoder_preset=None, model_name_or_path=str(run),
                                  output_dir=str(run / "next")))
    assert (run / "model.safetensors").read_bytes() == b"the user's finished policy"
    out = train_from_recipe(_recipe(tmp_path, folder, max_steps=2, save_strategy="no",
                                    overwrite_output_dir=True))  # asked for: replaced
    assert (out / "model.safetensors").read_bytes() != b"the user's finished policy"


def test_trust_remote_code_comes_from_the_recipe_never_from_the_checkpoint(tmp_path):
    import json

    from rlspoof.data.arguments import DataArguments
    from rlspoof.models.arguments import ModelArguments
    from rlspoof.trainers.run import policy_from_arguments

    policy = build_policy(PolicyConfig(EncoderConfig(preset="tiny"), crop_seconds=0.5))
    folder = policy.save_pretrained(tmp_path / "policy")
    config = json.loads((folder / "config.json").read_text())
    config["policy"]["encoder"]["trust_remote_code"] = True  # a hostile folder asks for it
    (folder / "config.json").write_text(json.dumps(config))
    for asked in (False, True):
        loaded = policy_from_arguments(ModelArguments(model_name_or_path=str(folder), trust_remote_code=asked),
                                       DataArguments())
        assert loaded.config.encoder.trust_remote_code is asked


@pytest.mark.slow
def test_a_run_killed_mid_way_resumes_to_the_uninterrupted_result(tiny_corpus, tmp_path):
    folder, _ = tiny_corpus
    whole = train_from_recipe(_recipe(tmp_path, folder, output_dir=str(tmp_path / "whole")))

    killed_dir = tmp_path / "killed"
    kill_after_checkpoint(_recipe(tmp_path, folder, output_dir=str(killed_dir)), killed_dir, 20)
    resumed = train_from_recipe(_recipe(tmp_path, folder, output_dir=str(killed_dir),
                                        resume_from_checkpoint="last"))
    # Same data order, crops, dropout masks and optimizer state after the resume.
    assert_same_policy_files(whole, resumed)
