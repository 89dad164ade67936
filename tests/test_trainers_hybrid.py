"""Hybrid SFT + GRPO: the cross-entropy weight schedules, the switch (with its reference reset),
and the promise that a part with weight zero costs nothing."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
import yaml
from trainer_helpers import count_forwards, same_weights, weights_of, write_tiny_recipe
from transformers import TrainerCallback, set_seed

from rlspoof.data.dataset import AudioCollator, SpoofDataset
from rlspoof.models import EncoderConfig, PolicyConfig, SpoofPolicy, build_policy
from rlspoof.trainers import grpo as grpo_module
from rlspoof.trainers.hybrid import HybridTrainer, sft_weight_at
from rlspoof.trainers.hybrid_config import HybridConfig
from rlspoof.trainers.run import train_from_recipe
from rlspoof.trainers.sft import SFTTrainer
from rlspoof.trainers.sft_config import SFTConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CROP = 1.0


def _split(tiny_corpus, split: str, train: bool = True) -> SpoofDataset:
    _, manifest = tiny_corpus
    return SpoofDataset(manifest.filter(split=split), crop_seconds=CROP, train=train, seed=0)


def _settings(tmp_path, **overrides) -> dict:
    settings = {
        "output_dir": str(tmp_path / "out"), "report_to": "none", "save_strategy": "no",
        "disable_tqdm": True, "use_cpu": True, "per_device_train_batch_size": 8,
        "max_steps": 4, "logging_steps": 1, "learning_rate": 1e-2,
        "lr_scheduler_type": "constant", "eval_strategy": "no", "seed": 0,
    }
    settings.update(overrides)
    return settings


def _policy(seed: int = 0):
    set_seed(seed)
    return build_policy(PolicyConfig(encoder=EncoderConfig(preset="tiny", freeze="none"),
                                     crop_seconds=CROP))


def _hybrid(tmp_path, train_set, **overrides) -> HybridTrainer:
    settings = _settings(tmp_path, num_generations=8, **overrides)
    return HybridTrainer(_policy(settings["seed"]), HybridConfig(**settings), train_set)


def _train_logs(trainer) -> list[dict]:
    return [h for h in trainer.state.log_history if "loss" in h]








@pytest.fixture
def rollout_count(monkeypatch):
    made = []
    real = grpo_module.make_rollout

    def counting(*args, **kwargs):
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(grpo_module, "make_rollout", counting)
    return made


# ------------------------------------------------------------------------------ schedules


def test_sft_weight_at_the_three_schedules():
    def weights(schedule, total, **kw):
        return [sft_weight_at(s, schedule, total, **kw) for s in range(total)]

    assert weights("sft_then_grpo", 6) == [1, 1, 1, 0, 0, 0]  # switch at half by default
    assert weights("sft_then_grpo", 6, switch_step=1) == [1, 0, 0, 0, 0, 0]
    assert weights("sft_then_grpo", 3, switch_step=0) == [0, 0, 0]
    assert weights("grpo_then_sft", 4) == [0, 0, 1, 1]
    assert weights("grpo_then_sft", 4, switch_step=3) == [0, 0, 0, 1]
    assert weights("mixed", 3, sft_weight=0.3) == [0.3, 0.3, 0.3]  # constant without an end
    assert weights("mixed", 5, sft_weight=1.0, sft_weight_end=0.0) == [1, 0.75, 0.5, 0.25, 0]
    assert weights("mixed", 3, sft_weight=0.2, sft_weight_end=0.8) == pytest.approx([0.2, 0.5, 0.8])
    assert sft_weight_at(9, "mixed", 5, sft_weight=1.0, sft_weight_end=0.0) == 0.0  # held at the end
    assert sft_weight_at(0, "mixed", 1, sft_weight=0.4, sft_weight_end=0.0) == 0.4  # one step
    with pytest.raises(ValueError, match="unknown schedule 'ppo'"):
        sft_weight_at(0, "ppo", 4)


# ----------------------------------------------------------------------------- switching


def test_sft_then_grpo_switches_at_half_and_resets_the_reference(tiny_corpus, tmp_path):
    # old_policy_sync_steps=100 never fires in 6 steps: only the switch can move the old policy
    trainer = _hybrid(tmp_path, _split(tiny_corpus, "train"), schedule="sft_then_grpo",
                      max_steps=6, beta=0.04, old_policy_sync_steps=100)
    initial = weights_of(trainer.model)
    ref_calls = count_forwards(trainer.ref_model.encoder)
    at_switch = {}

    class Snapshot(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step == 3:  # the last SFT step: GRPO starts from these weights
                at_switch["policy"] = weights_of(model)
                at_switch["ref_still_initial"] = same_weights(trainer.ref_model, initial)

    trainer.add_callback(Snapshot())
    trainer.train()

    logs = _train_logs(trainer)
    assert [h["sft_weight"] for h in logs] == [1, 1, 1, 0, 0, 0]
    assert ["reward" in h for h in logs] == [False] * 3 + [True] * 3
    assert len(ref_calls) == 3  # no reference pass during the SFT phase
    assert at_switch["ref_still_initial"]
    assert not same_weights(at_switch["policy"], initial)  # SFT moved the policy
    assert same_weights(trainer.ref_model, at_switch["policy"])  # reference reset at the switch
    assert same_weights(trainer.old_model, at_switch["policy"])  # and so was the old policy
    assert not same_weights(trainer.model, at_switch["policy"])  # GRPO trained on from there


@pytest.mark.parametrize("reset", [True, False])
def test_reset_optimizer_at_switch_restarts_adam_and_the_schedule(tiny_corpus, tmp_path, reset):
    """On: fresh AdamW moments at the switch and the schedule run once per phase, as an SFT run
    followed by a GRPO run from its folder would have; off: one of each over the whole run."""
    trainer = _hybrid(tmp_path, _split(tiny_corpus, "train"), schedule="sft_then_grpo",
                      switch_step=2, max_steps=4, lr_scheduler_type="linear", warmup_steps=1,
                      reset_optimizer_at_switch=reset)
    steps_at_switch = {}

    class AdamSteps(TrainerCallback):
        def on_step_end(self, args, state, control, optimizer=None, **kwargs):
            steps_at_switch[state.global_step] = {int(v["step"]) for v in optimizer.state.values()}

    trainer.add_callback(AdamSteps())
    trainer.train()

    factor = trainer.lr_scheduler.lr_lambdas[0]
    if reset:  # warmup 1 step, linear decay to 0 at the end of each 2-step phase
        assert [factor(s) for s in range(4)] == [0.0, 1.0, 0.0, 1.0]
        assert steps_at_switch == {1: {1}, 2: {2}, 3: {1}, 4: {2}}  # bias correction restarts
    else:
        assert [factor(s) for s in range(4)] == pytest.approx([0.0, 1.0, 2 / 3, 1 / 3])
        assert steps_at_switch == {1: {1}, 2: {2}, 3: {3}, 4: {4}}


def test_grpo_then_sft_keeps_the_reference(tiny_corpus, tmp_path):
    trainer = _hybrid(tmp_path, _split(tiny_corpus, "train"), schedule="grpo_then_sft",
                      switch_step=2, max_steps=4, beta=0.04)
    ref_before = weights_of(trainer.ref_model)
    ref_calls = count_forwards(trainer.ref_model.encoder)
    trainer.train()

    logs = _train_logs(trainer)
    assert [h["sft_weight"] for h in logs] == [0, 0, 1, 1]
    assert ["reward" in h for h in logs] == [True, True, False, False]
    assert len(ref_calls) == 2
    assert same_weights(trainer.ref_model, ref_before)  # only sft_then_grpo resets it


def test_mixed_weight_moves_linearly_to_its_end(tiny_corpus, tmp_path, rollout_count):
    trainer = _hybrid(tmp_path, _split(tiny_corpus, "train"), schedule="mixed",
                      sft_weight=1.0, sft_weight_end=0.0, max_steps=5)
    trainer.train()
    logs = _train_logs(trainer)
    assert [h["sft_weight"] for h in logs] == [1.0, 0.75, 0.5, 0.25, 0.0]
    assert len(rollout_count) == 4  # the first step (weight 1) samples nothing
    assert ["reward" in h for h in logs] == [False] + [True] * 4


def test_weight_one_is_sft_with_no_sampling_and_no_reference_pass(
        tiny_corpus, tmp_path, rollout_count):
    train = _split(tiny_corpus, "train")
    trainer = _hybrid(tmp_path, train, schedule="mixed", sft_weight=1.0, beta=0.04,
                      max_steps=3)
    ref_calls = count_forwards(trainer.ref_model.encoder)
    trainer.train()
    hybrid_losses = [h["loss"] for h in _train_logs(trainer)]
    assert len(ref_calls) == 0 and len(rollout_count) == 0
    assert not any("reward" in h or "kl" in h for h in _train_logs(trainer))

    sft = SFTTrainer(_policy(0), SFTConfig(**_settings(tmp_path, max_steps=3)), train)
    sft.train()
    assert hybrid_losses == [h["loss"] for h in _train_logs(sft)]  # the very same run


# ------------------------------------------------------------------------ saved policy


def test_hybrid_recipe_trains_and_saves_a_loadable_policy(tiny_corpus, tmp_path):
    folder, _ = tiny_corpus
    path = write_tiny_recipe(tmp_path, folder, "hybrid", CROP, method="hybrid",
                             schedule="sft_then_grpo", logging_steps=1)
    out = train_from_recipe(path, ["switch_step=1"])

    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert [h["sft_weight"] for h in history if "loss" in h] == [1, 0, 0, 0]
    final_eval = [h for h in history if "eval_loss" in h][-1]
    assert "eval_eer" in final_eval and final_eval["step"] == 4

    policy = SpoofPolicy.from_pretrained(out)
    assert policy.metadata["trainer"] == "HybridTrainer"
    resolved = yaml.safe_load((out / "recipe.resolved.yaml").read_text())
    assert resolved["method"] == "hybrid" and resolved["switch_step"] == 1

    # the dev loss is cross-entropy, and the saved weights reproduce it
    dev = _split(tiny_corpus, "dev", train=False)
    batch = AudioCollator()([dev[i] for i in range(len(dev))])
    with torch.no_grad():
        logits = policy(batch["input_values"], attention_mask=batch["attention_mask"])
    assert F.cross_entropy(logits, batch["labels"]).item() == pytest.approx(
        final_eval["eval_loss"], rel=1e-4)


@pytest.mark.slow
def test_a_hybrid_killed_after_its_switch_resumes_to_the_uninterrupted_weights(tiny_corpus, tmp_path):
    """Switch at step 4, checkpoint at 6: the reference and old policy of the switch, the switch
    flag (no second reset) and the GRPO-phase optimizer come back."""
    from test_trainers_grpo import _killed_and_resumed
    from trainer_helpers import assert_same_policy_files

    folder, _ = tiny_corpus
    whole, resumed = _killed_and_resumed(tmp_path, folder, method="hybrid", schedule="sft_then_grpo",
                                         switch_step=4, beta=0.04, old_policy_sync_steps=3,
                                         rollout_policy="current")
    assert_same_policy_files(whole, resumed, atol=1e-6)
