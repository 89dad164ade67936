"""GRPO through transformers.Trainer: one forward pass per micro-batch, learning on the tiny
corpus, KL control, rollout reuse, the old policy, reproducibility, TRL's metric names, user
rewards and saved policy folders.

Every run uses the tiny preset encoder, 1 s crops and a handful of steps; the datasets are built
straight from the session's tiny corpus so a test costs a second or a few.
"""

from __future__ import annotations

import json
import math
import sys
import textwrap

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch.utils.data import SequentialSampler
from trainer_helpers import count_forwards, same_weights, weights_of, write_tiny_recipe
from transformers import TrainerCallback, set_seed

from rlspoof.algos import sample_actions
from rlspoof.data.dataset import AudioCollator, SpoofDataset
from rlspoof.models import EncoderConfig, PolicyConfig, SpoofPolicy, build_policy
from rlspoof.trainers import grpo as grpo_module
from rlspoof.trainers.grpo import GRPOTrainer
from rlspoof.trainers.grpo_config import GRPOConfig
from rlspoof.trainers.run import train_from_recipe

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CROP = 1.0  # the tiny corpus' clips last 1.0-1.5 s, so a crop sees (almost) the whole clip


# ------------------------------------------------------------------------------- helpers


def _split(tiny_corpus, split: str, train: bool = True) -> SpoofDataset:
    """A split of the tiny corpus: 16 bonafide + 16 spoof (train), 8 + 8 (dev)."""
    _, manifest = tiny_corpus
    return SpoofDataset(manifest.filter(split=split), crop_seconds=CROP, train=train, seed=0)


def _trainer(tmp_path, train_set, *, cls=GRPOTrainer, eval_set=None, init_seed=None, **overrides):
    """A GRPO trainer on a fresh tiny policy (initialised from ``init_seed``, default ``seed``)."""
    seed = overrides.setdefault("seed", 0)
    set_seed(seed if init_seed is None else init_seed)
    policy = build_policy(PolicyConfig(encoder=EncoderConfig(preset="tiny", freeze="none"),
                                       crop_seconds=CROP))
    settings = {
        "output_dir": str(tmp_path / "out"), "report_to": "none", "save_strategy": "no",
        "disable_tqdm": True, "use_cpu": True, "per_device_train_batch_size": 8,
        "per_device_eval_batch_size": 16, "max_steps": 4, "logging_steps": 1,
        "learning_rate": 1e-3, "lr_scheduler_type": "constant", "eval_strategy": "no",
        "num_generations": 16,
    }
    settings.update(overrides)
    return cls(policy, GRPOConfig(**settings), train_set, eval_set)


def _train_logs(trainer) -> list[dict]:
    return [h for h in trainer.state.log_history if "loss" in h]


def _logged(trainer, key: str) -> list[float]:
    return [h[key] for h in trainer.state.log_history if key in h]


@pytest.fixture
def rollouts(monkeypatch):
    """Every rollout the trainer makes, in order (wraps ``make_rollout``)."""
    made = []

    def recording(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    real = grpo_module.make_rollout
    monkeypatch.setattr(grpo_module, "make_rollout", recording)
    return made


# ----------------------------------------------------------------- one forward per micro-batch


@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_one_policy_forward_per_micro_batch_and_a_frozen_reference(tiny_corpus, tmp_path, beta):
    trainer = _trainer(tmp_path, _split(tiny_corpus, "train"), beta=beta, max_steps=3,
                       gradient_accumulation_steps=2, per_device_train_batch_size=4)
    micro_batches = 3 * 2
    assert trainer.old_model is None
    assert (trainer.ref_model is None) == (beta == 0)
    policy_calls = count_forwards(trainer.model.encoder)
    ref_calls = count_forwards(trainer.ref_model.encoder) if beta else []
    ref_before = weights_of(trainer.ref_model) if beta else None
    policy_before = weights_of(trainer.model)

    trainer.train()

    # G = 16 decisions per utterance, yet one policy forward per micro-batch (and one of the
    # reference when beta > 0): the group is sampled from that single pass.
    assert len(policy_calls) == micro_batches
    assert len(ref_calls) == (micro_batches if beta else 0)
    assert not same_weights(trainer.model, policy_before)
    if beta:
        assert same_weights(trainer.ref_model, ref_before)
        assert all(not p.requires_grad for p in trainer.ref_model.parameters())
    assert "entropy" in _train_logs(trainer)[0]  # logged even with entropy_coef = 0 (TRL)
    assert ("kl" in _train_logs(trainer)[0]) == (beta > 0)  # omitted, not 0, without reference


# ------------------------------------------------------------------------------- learning


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["exact", "sampled"])
def test_grpo_raises_the_mean_reward_on_the_train_split(tiny_corpus, tmp_path, estimator):
    # Measured over seeds 0-4 and both estimators: the mean reward of logs 1-2 is 0.48-0.52,
    # of logs 7-8 0.74-0.84.
    trainer = _trainer(tmp_path, _split(tiny_corpus, "train"), estimator=estimator,
                       max_steps=40, logging_steps=5, seed=1)
    trainer.train()
    reward = _logged(trainer, "reward")
    assert len(reward) == 8
    first, last = sum(reward[:2]) / 2, sum(reward[-2:]) / 2
    assert last > first + 0.15, reward
    accuracy = _logged(trainer, "accuracy")
    assert sum(accuracy[-2:]) > sum(accuracy[:2]), accuracy


@pytest.mark.slow
def test_kl_stays_bounded_and_a_larger_beta_keeps_the_policy_closer(tiny_corpus, tmp_path):
    train = _split(tiny_corpus, "train")
    kl = {}
    for beta in (1e-3, 1.0):
        trainer = _trainer(tmp_path, train, beta=beta, estimator="exact", max_steps=20,
                           logging_steps=5)
        trainer.train()
        kl[beta] = _logged(trainer, "kl")
        assert len(kl[beta]) == 4
        assert all(math.isfinite(v) and v >= 0.0 for v in kl[beta]), kl  # k3 is never negative
    # Measured over seeds 0-4: logged KL at most 0.77 with beta 1e-3 and 0.07 with beta 1;
    # the mean over the run is 3-10x smaller with beta 1.
    assert max(kl[1e-3]) < 2.0 and max(kl[1.0]) < 0.25, kl
    assert sum(kl[1.0]) < 0.6 * sum(kl[1e-3]), kl


# ------------------------------------------------------------------------ num_iterations


def test_disable_dropout_makes_the_first_kl_exactly_zero(tiny_corpus, tmp_path):
    """With dropout on, the training-mode policy differs from its eval-mode reference copy even
    with equal weights; TRL's disable_dropout removes that gap."""
    train = _split(tiny_corpus, "train")
    kls = {}
    for disable in (False, True):
        trainer = _trainer(tmp_path, train, max_steps=1, beta=0.04, disable_dropout=disable,
                           estimator="exact")
        trainer.train()
        kls[disable] = _logged(trainer, "kl")[0]
    assert kls[True] == pytest.approx(0.0, abs=1e-7)
    assert kls[False] > 1e-6


def test_num_iterations_reuses_the_rollout_on_the_repeated_batch(tiny_corpus, tmp_path, rollouts):
    seen: list[tuple[int, list[str]]] = []

    class Recording(GRPOTrainer):
        def compute_loss(self, model, inputs, *args, **kwargs):
            if model.training:
                seen.append((self.state.global_step, list(inputs["utt_id"])))
            return super().compute_loss(model, inputs, *args, **kwargs)

    trainer = _trainer(tmp_path, _split(tiny_corpus, "train"), cls=Recording, num_iterations=2,
                       max_steps=6, gradient_accumulation_steps=2, per_device_train_batch_size=4,
                       learning_rate=1e-2, epsilon=0.05)
    trainer.train()

    # 6 optimizer steps x 2 micro-batches; TRL's RepeatSampler serves each global batch twice
    # in a row, so micro-batch p of step 2k+1 holds the utterances of micro-batch p of step 2k
    assert [step for step, _ in seen] == [s for s in range(6) for _ in range(2)]
    batches = [utts for _, utts in seen]
    for k in (0, 4, 8):
        assert batches[k:k + 2] == batches[k + 2:k + 4]
        assert batches[k] != batches[k + 1]
    assert batches[0] != batches[4] != batches[8]
    assert len(rollouts) == 6  # sampled on the first visit only, reused on the second
    assert [r.utt_ids for r in rollouts] == [batches[k + p] for k in (0, 4, 8) for p in (0, 1)]

    ratio = _logged(trainer, "ratio_mean")
    region = _logged(trainer, "clip_ratio/region_mean")
    assert ratio[0::2] == [1.0, 1.0, 1.0]  # fresh rollout: the old log-probs are these
    assert all(abs(r - 1.0) > 1e-4 for r in ratio[1::2]), ratio  # the policy moved since
    assert region[0::2] == [0.0, 0.0, 0.0]
    assert max(region[1::2]) > 0, region  # epsilon 0.05 at lr 1e-2: the clip engages


def test_num_iterations_refuses_a_batch_that_is_not_the_stored_one(tiny_corpus, tmp_path):
    class NoRepeat(GRPOTrainer):  # breaks the RepeatSampler contract on purpose
        def _get_train_sampler(self, train_dataset=None):
            return SequentialSampler(train_dataset or self.train_dataset)

    trainer = _trainer(tmp_path, _split(tiny_corpus, "train"), cls=NoRepeat, num_iterations=2,
                       max_steps=2)
    with pytest.raises(RuntimeError, match="repeated batch differs"):
        trainer.train()


# -------------------------------------------------------------------------- old policy


def test_old_policy_is_resynced_every_k_steps_and_takes_the_decisions(
        tiny_corpus, tmp_path, rollouts):
    class Check(TrainerCallback):
        """Runs after SyncOldPolicy (callbacks run in the order they were added)."""

        def __init__(self):
            self.synced: dict[int, bool] = {}

        def on_step_end(self, args, state, control, model=None, **kwargs):
            self.synced[state.global_step] = same_weights(trainer.old_model, model)

    trainer = _trainer(tmp_path, _split(tiny_corpus, "train"), old_policy_sync_steps=2,
                       max_steps=5, learning_rate=1e-2, estimator="exact")
    assert same_weights(trainer.old_model, trainer.model)
    assert not trainer.old_model.training
    old_calls = count_forwards(trainer.old_model.encoder)
    check = Check()
    trainer.add_callback(check)
    trainer.train()

    assert check.synced == {1: False, 2: True, 3: False, 4: True, 5: False}
    assert len(old_calls) == 5  # the old log-probs come from the old policy's forward
    # The rollout is the old policy's (PPO/GRPO sample from pi_old): in exact mode the action
    # weights are its probabilities, the ones old_logp scores, so ratio * weight = pi.
    assert len(rollouts) == 5
    for rollout in rollouts:
        torch.testing.assert_close(rollout.sample_weights, rollout.old_logp.exp())


@pytest.mark.parametrize("correction", [True, False])
def test_rollout_policy_current_samples_from_the_policy_and_keeps_the_old_one_in_the_ratio(
        tiny_corpus, tmp_path, rollouts, monkeypatch, correction):
    """The published rule: the train-mode policy of this forward pass takes the decisions; the
    stale copy (never resynced here) enters only the ratio, and the KL correction, when on,
    is to the sampler (pi / pi = 1 in value), not to the stale copy."""
    calls = []
    real = grpo_module.grpo_loss

    def recording(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(grpo_module, "grpo_loss", recording)
    trainer = _trainer(tmp_path, _split(tiny_corpus, "train"), old_policy_sync_steps=100,
                       rollout_policy="current", max_steps=3, learning_rate=1e-2,
                       estimator="exact", beta=0.04, use_bias_correction_kl=correction,
                       disable_dropout=True)  # so the first ratio is exactly 1
    old_calls = count_forwards(trainer.old_model.encoder)
    trainer.train()

    assert len(old_calls) == 3  # the old policy still scores the decisions for the ratio
    for (args, kwargs), rollout in zip(calls, rollouts, strict=True):
        logp, old_logp = args[:2]
        assert kwargs["use_bias_correction_kl"] is correction
        # exact mode: the action weights are the current policy's probabilities...
        torch.testing.assert_close(rollout.sample_weights, logp.detach().exp())
        torch.testing.assert_close(kwargs["sampling_logp"], logp.detach())
        assert old_logp is rollout.old_logp  # ...and the ratio's denominator the old copy's
    assert not torch.allclose(rollouts[-1].old_logp, rollouts[-1].sampling_logp)  # it went stale
    ratio = _logged(trainer, "ratio_mean")
    assert ratio[0] == pytest.approx(1.0) and abs(ratio[-1] - 1.0) > 1e-4, ratio


# ----------------------------------------------------------------------- reproducibility


def test_same_seed_reproduces_the_run_and_another_seed_samples_differently(
        tiny_corpus, tmp_path, rollouts):
    train = _split(tiny_corpus, "train")

    def run(seed):
        rollouts.clear()
        trainer = _trainer(tmp_path, train, seed=seed, init_seed=0, max_steps=3,
                           estimator="sampled")
        trainer.train()
        keys = ("loss", "reward", "reward_std", "grad_norm", "accuracy")
        return [[h[k] for k in keys] for h in _train_logs(trainer)], [r.actions for r in rollouts]

    logs_a, actions_a = run(seed=0)
    logs_b, actions_b = run(seed=0)
    assert logs_a == logs_b
    assert all(torch.equal(a, b) for a, b in zip(actions_a, actions_b, strict=True))

    _, actions_c = run(seed=1)  # same initial policy, another seed
    assert not all(torch.equal(a, c) for a, c in zip(actions_a, actions_c, strict=True))

    # and the sampling generator alone: same logits, different seed -> different draws
    logits = torch.zeros(8, 2)
    draws = [sample_actions(logits, 16, generator=_trainer(tmp_path, train, seed=s)
                            .sampling_generator(torch.device("cpu"))) for s in (0, 0, 1)]
    assert torch.equal(draws[0], draws[1]) and not torch.equal(draws[0], draws[2])


# --------------------------------------------------------------------- metrics and eval


def test_logs_trl_metric_names_and_evaluates_with_cross_entropy(tiny_corpus, tmp_path):
    dev = _split(tiny_corpus, "dev", train=False)
    trainer = _trainer(tmp_path, _split(tiny_corpus, "train"), eval_set=dev, max_steps=2,
                       estimator="sampled", num_generations=4, beta=0.04, entropy_coef=0.01,
                       reward_funcs=["correctness", "confidence"], reward_weights=[1.0, 0.5],
                       eval_strategy="steps", eval_steps=2)
    trainer.train()

    train_log = _train_logs(trainer)[-1]
    for key in ("reward", "reward_std", "frac_reward_zero_std", "kl", "clip_ratio/low_mean",
                "clip_ratio/high_mean", "clip_ratio/region_mean", "entropy",
                "rewards/correctness/mean", "rewards/confidence/mean"):
        assert key in train_log and math.isfinite(train_log[key]), (key, train_log)
    assert 0.0 <= train_log["frac_reward_zero_std"] <= 1.0
    assert 0.0 < train_log["entropy"] <= math.log(2) + 1e-6
    assert train_log["reward"] == pytest.approx(
        train_log["rewards/correctness/mean"] + 0.5 * train_log["rewards/confidence/mean"],
        abs=1e-5)

    eval_log = next(h for h in trainer.state.log_history if "eval_loss" in h)
    assert {"eval_eer", "eval_min_dcf", "eval_cllr"} <= eval_log.keys()
    assert not any(k.startswith("eval_reward") for k in eval_log)  # no rollout on dev

    # the dev loss is the cross-entropy of the policy's logits, whatever the method
    metrics = trainer.evaluate()
    trainer.model.eval()
    batch = AudioCollator()([dev[i] for i in range(len(dev))])
    with torch.no_grad():
        logits = trainer.model(batch["input_values"], attention_mask=batch["attention_mask"])
    ce = F.cross_entropy(logits, batch["labels"]).item()
    assert metrics["eval_loss"] == pytest.approx(ce, rel=1e-4)


def test_reward_std_is_over_the_batch_as_trl_and_the_group_std_has_its_own_name(
        tiny_corpus, tmp_path, rollouts):
    trainer = _trainer(tmp_path, _split(tiny_corpus, "train"), max_steps=2, num_generations=4,
                       reward_funcs=["correctness", "confidence"], reward_weights=[1.0, 0.5])
    trainer.train()
    for log, rollout in zip(_train_logs(trainer), rollouts, strict=True):
        assert "kl" not in log  # beta = 0: no reference, so no kl (TRL omits it)
        assert log["reward_std"] == pytest.approx(rollout.rewards.flatten().std().item(), abs=1e-6)
        assert log["reward_std_within_group"] == pytest.approx(
            rollout.rewards.std(dim=1).mean().item(), abs=1e-6)
        for name, r in rollout.rewards_per_func.items():
            assert log[f"rewards/{name}/std"] == pytest.approx(r.flatten().std().item(), abs=1e-6)
            assert log[f"rewards/{name}/mean"] == pytest.approx(r.mean().item(), abs=1e-6)


# -------------------------------------------------------------------------- user reward


def test_a_user_reward_named_by_dotted_path_trains(tiny_corpus, tmp_path, monkeypatch):
    module = "rlspoof_test_user_reward"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent("""
        SEEN = []

        def prefer_spoof(actions, labels, **kwargs):
            SEEN.append(sorted(kwargs))
            return (actions == 1).float()
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    name = f"{module}.prefer_spoof"
    try:
        trainer = _trainer(tmp_path, _split(tiny_corpus, "train"), reward_funcs=[name],
                           max_steps=4, learning_rate=3e-3)
        trainer.train()
        seen = sys.modules[module].SEEN
    finally:
        sys.modules.pop(module, None)

    assert len(seen) == 4
    assert {"probs", "utt_id", "attack"} <= set(seen[0])  # batch columns reach the reward
    reward = _logged(trainer, f"rewards/{name}/mean")
    assert reward == _logged(trainer, "reward")
    # the initial policy says spoof about half the time; a few steps make it say so always
    assert reward[0] < 0.7 and reward[-1] > 0.95, reward


# ------------------------------------------------------------------------ saved policy


def test_grpo_recipe_trains_and_saves_a_loadable_policy(tiny_corpus, tmp_path):
    folder, _ = tiny_corpus
    path = write_tiny_recipe(tmp_path, folder, "grpo", CROP, method="grpo", logging_steps=2)
    out = train_from_recipe(path, ["estimator=exact"])

    history = json.loads((out / "trainer_state.json").read_text())["log_history"]
    assert any("reward" in h and "kl" in h for h in history)
    final_eval = [h for h in history if "eval_loss" in h][-1]
    assert final_eval["step"] == 4

    policy = SpoofPolicy.from_pretrained(out)
    assert policy.metadata["trainer"] == "GRPOTrainer"
    resolved = yaml.safe_load((out / "recipe.resolved.yaml").read_text())
    assert resolved["method"] == "grpo" and resolved["estimator"] == "exact"
    assert resolved["beta"] == 0.04
    assert not any(out.glob("*.bin"))

    # the saved weights are the trained ones: they reproduce the last dev loss
    dev = _split(tiny_corpus, "dev", train=False)
    batch = AudioCollator()([dev[i] for i in range(len(dev))])
    with torch.no_grad():
        logits = policy(batch["input_values"], attention_mask=batch["attention_mask"])
    assert F.cross_entropy(logits, batch["labels"]).item() == pytest.approx(
        final_eval["eval_loss"], rel=1e-4)


@pytest.mark.parametrize("family", ["wav2vec2", "hubert", "wavlm"])
def test_disable_stochastic_layers_makes_train_mode_forwards_bit_identical(family):
    """Attention dropout (a float the attention modules pass to the kernel, not an nn.Dropout),
    SpecAugment and LayerDrop are all switched off: two train-mode passes agree to the bit."""
    from rlspoof.models.encoders import EncoderConfig
    from rlspoof.models.policy import PolicyConfig, build_policy
    from rlspoof.trainers.frozen import disable_stochastic_layers

    torch.manual_seed(0)
    policy = build_policy(PolicyConfig(encoder=EncoderConfig(preset="tiny", family=family),
                                       crop_seconds=0.5)).train()
    x = torch.randn(2, 8000)
    assert not torch.equal(policy(x), policy(x))  # the presets are stochastic in train mode
    disable_stochastic_layers(policy)
    assert torch.equal(policy(x), policy(x))
    assert policy.encoder.config.attention_dropout == 0.0
    assert not policy.encoder.config.apply_spec_augment


def test_zero3_with_a_reference_or_an_old_policy_is_refused_naming_the_fields():
    from types import SimpleNamespace

    from rlspoof.errors import ConfigError
    from rlspoof.trainers.frozen import check_frozen_copies_fit

    both = SimpleNamespace(beta=0.04, old_policy_sync_steps=1000)
    with pytest.raises(ConfigError, match=r"beta > 0 .* and old_policy_sync_steps"):
        check_frozen_copies_fit(3, both)
    with pytest.raises(ConfigError, match="old_policy_sync_steps"):
        check_frozen_copies_fit(3, SimpleNamespace(beta=0.0, old_policy_sync_steps=10))
    check_frozen_copies_fit(3, SimpleNamespace(beta=0.0, old_policy_sync_steps=0))  # nothing copied
    for stage in (None, 0, 2):
        check_frozen_copies_fit(stage, both)


@pytest.mark.parametrize("scope", ["accumulation", "micro_batch"])
def test_batch_level_advantages_cover_every_micro_batch_of_the_step_or_one(tiny_corpus, tmp_path, rollouts,
                                                                           scope):
    """TRL's batch is every micro-batch of an optimizer step: with ``batch_scope: accumulation``
    the first micro-batch samples both (one extra no-grad pass) and the advantages are the
    batch-normalised rewards of all 2 x 4 utterances; ``micro_batch`` normalises each alone."""
    from rlspoof.algos import group_advantages

    trainer = _trainer(tmp_path, _split(tiny_corpus, "train"), max_steps=2, gradient_accumulation_steps=2,
                       per_device_train_batch_size=4, advantage_center="batch", scale_rewards="batch",
                       batch_scope=scope, disable_dropout=True)
    policy_calls = count_forwards(trainer.model.encoder)
    trainer.train()

    assert len(rollouts) == 4  # one per micro-batch either way
    eps = trainer.args.advantage_eps
    for first, second in (rollouts[0:2], rollouts[2:4]):
        assert first.utt_ids != second.utt_ids
        if scope == "accumulation":
            rewards = torch.cat([first.rewards, second.rewards])
            torch.testing.assert_close(torch.cat([first.advantages, second.advantages]),
                                       group_advantages(rewards, center="batch", scale="batch", eps=eps))
        else:
            for rollout in (first, second):
                torch.testing.assert_close(rollout.advantages, group_advantages(
                    rollout.rewards, center="batch", scale="batch", eps=eps))
    assert len(policy_calls) == 4 + (2 if scope == "accumulation" else 0)


# ------------------------------------------------------------------------------- exact resume


def _killed_and_resumed(tmp_path, corpus, save_steps=6, **fields):
    """The uninterrupted run's folder and the folder of the same run SIGKILLed after its first
    checkpoint and resumed with ``resume_from_checkpoint: last``."""
    from trainer_helpers import kill_after_checkpoint

    common = {"max_steps": 14, "save_strategy": "steps", "save_steps": save_steps, "eval_strategy": "no",
              "lr_scheduler_type": "linear", "warmup_steps": 2, **fields}
    whole = train_from_recipe(write_tiny_recipe(tmp_path, corpus, "whole", CROP,
                                                output_dir=str(tmp_path / "whole"), **common))
    killed = tmp_path / "killed"
    recipe = write_tiny_recipe(tmp_path, corpus, "killed", CROP, output_dir=str(killed), **common)
    kill_after_checkpoint(recipe, killed, save_steps)
    resumed = train_from_recipe(write_tiny_recipe(tmp_path, corpus, "resumed", CROP, output_dir=str(killed),
                                                  resume_from_checkpoint="last", **common))
    return whole, resumed


@pytest.mark.slow
@pytest.mark.parametrize("fields", [
    # the reference is the starting policy; the sampler must go on with its stream
    {"beta": 0.04},
    # the old policy was last synced at step 4: neither the start nor the checkpoint's weights
    {"beta": 0.04, "old_policy_sync_steps": 4, "rollout_policy": "current"},
    # the reference has been mixed with the policy at step 4
    {"beta": 0.04, "old_policy_sync_steps": 4, "rollout_policy": "old", "sync_ref_model": True,
     "ref_model_sync_steps": 4, "ref_model_mixup_alpha": 0.5},
    # checkpoint-5 falls between a batch's two visits: step 6 reuses the stored rollout
    {"beta": 0.04, "num_iterations": 2, "save_steps": 5},
], ids=["reference", "old_policy", "synced_reference", "num_iterations"])
def test_a_killed_grpo_run_resumes_to_the_uninterrupted_weights(tiny_corpus, tmp_path, fields):
    from trainer_helpers import assert_same_policy_files

    folder, _ = tiny_corpus
    whole, resumed = _killed_and_resumed(tmp_path, folder, method="grpo", **fields)
    assert_same_policy_files(whole, resumed, atol=1e-6)
