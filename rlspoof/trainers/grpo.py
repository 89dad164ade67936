"""GRPO for a detector: TRL's group-relative policy optimisation on a two-action policy.

One training step reads top to bottom:

    audio batch -> ONE policy forward -> logits (B, 2)
      -> rollout: G decisions per utterance sampled from those logits (or, with
         ``estimator: exact``, both actions weighted by their probabilities)
      -> rewards (weighted reward functions) -> group-relative advantages
      -> clipped surrogate + beta * KL(reference) -> loss

A language model needs G generations, hence G forward passes; a detector's decision is a
single token, so all G samples share one forward pass and GRPO costs about what SFT costs
(``benchmarks/grpo_step_time.py`` measures it). The maths lives in ``rlspoof.algos`` and
``rlspoof.rewards`` as pure functions; this module only wires them to ``transformers.Trainer``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import TrainerCallback
from trl.trainer.callbacks import SyncRefModelCallback
from trl.trainer.utils import RepeatSampler, disable_dropout_in_model

from rlspoof.algos import (
    action_log_probs,
    all_actions,
    group_advantages,
    group_stats,
    grpo_loss,
    sample_actions,
    zero_std_fraction,
)
from rlspoof.errors import ConfigError, RlspoofError
from rlspoof.rewards import compute_rewards, resolve_rewards
from rlspoof.trainers.base import SpoofTrainer


@dataclass
class Rollout:
    """The decisions of one batch and what they earned; reused for ``num_iterations`` steps."""

    utt_ids: list[str]
    actions: torch.Tensor  # (B, G) sampled, or (B, 2) every action in exact mode
    sample_weights: torch.Tensor | None  # (B, 2) sampling-policy probabilities in exact mode
    sampling_logp: torch.Tensor  # (B, G) log-probabilities under the policy that sampled
    old_logp: torch.Tensor  # (B, G) under the old policy of the ratio (= sampling_logp but for
                            # rollout_policy: current with an old policy)
    rewards: torch.Tensor  # (B, G) weighted total
    rewards_per_func: dict[str, torch.Tensor]
    advantages: torch.Tensor | None  # (B, G); None until set over several micro-batches


def make_rollout(logits, labels, args, reward_funcs, reward_weights, generator, columns,
                 gather_rows=None, old_logits=None, compute_advantages=True) -> Rollout:
    """Group sampling from ``logits`` -> rewards -> advantages for one batch (no gradient).

    ``gather_rows`` (see ``GRPOTrainer.gather_rows``) makes batch-level advantage statistics
    cover the micro-batches of every process; None: this batch alone (one process).
    ``old_logits``: the old policy's, when it only enters the ratio and does not sample.
    ``compute_advantages=False`` leaves ``advantages`` to the caller (statistics over several
    micro-batches)."""
    logits = logits.detach()
    probs = torch.softmax(logits.float() / args.temperature, dim=-1)
    if args.estimator == "exact":
        actions = all_actions(logits.shape[0], logits.shape[-1], device=logits.device)
        sample_weights = probs
    else:
        actions = sample_actions(logits, args.num_generations, args.temperature, generator)
        sample_weights = None
    rewards, per_func = compute_rewards(
        reward_funcs, reward_weights.to(logits.device), actions, labels, probs=probs, **columns
    )
    advantages = rollout_advantages(rewards, sample_weights, args, gather_rows) if compute_advantages else None
    sampling_logp = action_log_probs(logits, actions, args.temperature)
    return Rollout(
        utt_ids=list(columns.get("utt_id", [])),
        actions=actions,
        sample_weights=sample_weights,
        sampling_logp=sampling_logp,
        old_logp=sampling_logp if old_logits is None else action_log_probs(
            old_logits.detach(), actions, args.temperature),
        rewards=rewards,
        rewards_per_func=per_func,
        advantages=advantages,
    )


def rollout_advantages(rewards, sample_weights, args, gather_rows=None) -> torch.Tensor:
    """``group_advantages`` of this batch's rows, with batch-level statistics over the global
    batch when ``gather_rows`` is given.

    Groups are per utterance and an utterance lives on one process, so group statistics are
    local to its rank by construction. ``advantage_center: batch`` / ``scale_rewards: batch``
    use the whole batch, which under DDP is every rank's micro-batch: the rewards (and, in exact
    mode, the action weights) of all ranks are gathered, the advantages computed on them as one
    process would on the same global batch, and this rank keeps its own rows. With gradient
    accumulation, ``rewards`` holds every micro-batch of the step (``batch_scope: accumulation``,
    TRL's generation batch) or this micro-batch alone (``micro_batch``).
    """
    own = slice(None)
    batch_level = "batch" in (args.advantage_center, args.scale_rewards)
    if batch_level and gather_rows is not None:
        rewards, own = gather_rows(rewards)
        if sample_weights is not None:
            sample_weights, _ = gather_rows(sample_weights)
    advantages = group_advantages(
        rewards, center=args.advantage_center, scale=args.scale_rewards,
        eps=args.advantage_eps, weights=sample_weights,
    )
    return advantages[own]


def rollout_tensors(rollouts: dict[int, Rollout]) -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    """Stored rollouts as flat ``rollouts.<position>.<field>`` tensors plus their utterance ids."""
    tensors: dict[str, torch.Tensor] = {}
    for position, rollout in rollouts.items():
        for field in dataclasses.fields(rollout):
            value = getattr(rollout, field.name)
            if field.name == "rewards_per_func":
                tensors.update({f"rollouts.{position}.rewards_per_func.{k}": v.detach().clone()
                                for k, v in value.items()})
            elif isinstance(value, torch.Tensor):
                # clones: safetensors refuses shared storage (old_logp may be sampling_logp)
                tensors[f"rollouts.{position}.{field.name}"] = value.detach().clone()
    return tensors, {str(position): r.utt_ids for position, r in rollouts.items()}


def rollouts_from_tensors(tensors: dict[str, torch.Tensor], utt_ids: dict[str, list[str]]) -> dict[int, Rollout]:
    rollouts = {}
    for position, ids in utt_ids.items():
        prefix = f"rollouts.{position}."
        own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        per_func = {k.split(".", 1)[1]: v for k, v in own.items() if k.startswith("rewards_per_func.")}
        fields = {f.name: own.get(f.name) for f in dataclasses.fields(Rollout)}
        rollouts[int(position)] = Rollout(**{**fields, "utt_ids": ids, "rewards_per_func": per_func})
    return rollouts


def read_safetensors(path: Path, device: str = "cpu") -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """A safetensors file's tensors and its metadata, from one open."""
    with safe_open(str(path), "pt", device=device) as f:
        return {key: f.get_tensor(key) for key in f.keys()}, f.metadata() or {}


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A reference / old policy: same weights, no gradients, eval mode (no dropout)."""
    return copy.deepcopy(model).eval().requires_grad_(False)


def disable_stochastic_layers(policy: torch.nn.Module) -> None:
    """TRL's ``disable_dropout`` for an SSL policy, made complete: a training-mode forward must
    equal its eval-mode reference and old copies at equal weights, or ratio != 1 and KL > 0
    appear from noise. Besides ``nn.Dropout`` (what TRL's helper zeroes), the wav2vec2, HuBERT
    and WavLM attention modules keep a float ``dropout`` that they hand to the attention kernel,
    the encoder applies SpecAugment time/feature masking and LayerDrop in training, and the
    config's dropout fields rebuild them whenever the encoder is re-created from it."""
    disable_dropout_in_model(policy)
    for module in policy.modules():
        if isinstance(getattr(module, "dropout", None), float):
            module.dropout = 0.0
    config = getattr(getattr(policy, "encoder", None), "config", None)
    if config is not None:
        config.apply_spec_augment = False
        for name in _CONFIG_STOCHASTIC_FIELDS:
            if isinstance(getattr(config, name, None), float):
                setattr(config, name, 0.0)


#: Encoder config fields that make a training-mode forward random (all families rlspoof loads).
#: SpecAugment is off through ``apply_spec_augment``; its probabilities stay, because a
#: non-zero one is what gives the model its ``masked_spec_embed`` weight when it is rebuilt.
_CONFIG_STOCHASTIC_FIELDS = ("attention_dropout", "hidden_dropout", "activation_dropout",
                             "feat_proj_dropout", "final_dropout", "layerdrop")


def check_frozen_copies_fit(zero_stage: int | None, args) -> None:
    """The reference and old policies are plain deep copies of the policy module. Under ZeRO-3
    the policy's parameters are partitioned across ranks, and nothing here gathers or
    partitions the copies with them, so they are refused rather than left untested."""
    if zero_stage != 3:
        return
    uses = [name for name, on in (("beta > 0 (a KL reference)", args.beta > 0),
                                  ("old_policy_sync_steps (an old policy)", args.old_policy_sync_steps))
            if on]
    if uses:
        raise ConfigError(f"DeepSpeed ZeRO-3 with {' and '.join(uses)}: the frozen copies are not "
                          "partitioned with the policy; use ZeRO-2 (accelerate-config zero2), or set "
                          "beta: 0 and old_policy_sync_steps: 0")


class SyncOldPolicy(TrainerCallback):
    """The published method's old policy: a copy refreshed every K optimizer steps."""

    def __init__(self, old_model: torch.nn.Module, every: int):
        self.old_model, self.every = old_model, every

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step % self.every == 0:
            SyncRefModelCallback.sync_target_model(model, self.old_model, 1.0)


class GRPOTrainer(SpoofTrainer):
    """GRPO on ``GRPOConfig``; logs TRL's metrics (reward, reward_std, frac_reward_zero_std,
    kl when there is a reference, clip ratios, entropy, rewards/<f>/mean|std) plus
    reward_std_within_group and accuracy."""

    def __init__(self, model, args, train_dataset=None, eval_dataset=None, **kwargs):
        if args.disable_dropout:
            disable_stochastic_layers(model)
        super().__init__(model, args, train_dataset, eval_dataset, **kwargs)
        plugin = getattr(self.accelerator.state, "deepspeed_plugin", None)
        check_frozen_copies_fit(getattr(plugin, "zero_stage", None) if self.is_deepspeed_enabled
                                else None, args)
        self.reward_funcs, self.reward_weights = resolve_rewards(
            list(args.reward_funcs), args.reward_weights, args.reward_kwargs
        )
        device = self.args.device
        self.ref_model = frozen_copy(model).to(device) if args.beta > 0 else None
        self.old_model = frozen_copy(model).to(device) if args.old_policy_sync_steps else None
        if self.ref_model is not None and args.sync_ref_model:
            self.add_callback(SyncRefModelCallback(self.ref_model, self.accelerator))
        if self.old_model is not None:
            self.add_callback(SyncOldPolicy(self.old_model, args.old_policy_sync_steps))
        self._generator: torch.Generator | None = None
        self._rollouts: dict[int, Rollout] = {}  # micro-batch position -> rollout to reuse
        self._step_batches: list[dict] = []  # the optimizer step's micro-batches, as prefetched
        self._micro_step = 0

    # ---------------------------------------------------------------- data

    def _get_train_sampler(self, train_dataset=None):
        """With ``num_iterations`` = mu > 1 every global batch comes back mu times in a row
        (TRL's RepeatSampler), so the stored rollout meets the same utterances again."""
        if self.args.num_iterations == 1:
            return super()._get_train_sampler(train_dataset)
        if self.train_sampler is not None:
            raise ConfigError("num_iterations > 1 repeats batches with its own sampler: it cannot be "
                              "combined with a data mixture (mix_by / balance_labels)")
        global_batch = (self.args.per_device_train_batch_size * self.args.gradient_accumulation_steps
                        * self.args.world_size)
        return RepeatSampler(train_dataset or self.train_dataset, mini_repeat_count=1,
                             batch_size=global_batch, repeat_count=self.args.num_iterations,
                             seed=self.args.seed)

    def gather_rows(self, tensor: torch.Tensor) -> tuple[torch.Tensor, slice]:
        """The rows of a ``(B, ...)`` tensor from every process, in process order, and the
        slice of them that is this process's (B may differ between processes, e.g. on the
        last batch of an epoch). Every process must call it, in the same order."""
        accelerator = self.accelerator
        if accelerator.num_processes == 1:
            return tensor, slice(None)
        size = torch.tensor([tensor.shape[0]], device=tensor.device)
        sizes = accelerator.gather(size).tolist()
        padded = tensor.new_zeros((max(sizes), *tensor.shape[1:]))
        padded[: tensor.shape[0]] = tensor
        chunks = accelerator.gather(padded).split(max(sizes))
        rows = torch.cat([chunk[:n] for chunk, n in zip(chunks, sizes, strict=True)])
        start = sum(sizes[: accelerator.process_index])
        return rows, slice(start, start + tensor.shape[0])

    def sampling_generator(self, device: torch.device) -> torch.Generator:
        """Seeded per process, so a run's decisions are reproducible."""
        if self._generator is None:
            self._generator = torch.Generator(device=device)
            self._generator.manual_seed(self.args.seed + self.args.process_index)
        return self._generator

    # ---------------------------------------------------------------- exact resume

    #: Written into every checkpoint: the frozen copies' weights (main process) and, per
    #: process, the sampling generator and the rollouts a ``num_iterations`` step will reuse.
    FROZEN_FILE = "grpo_frozen.safetensors"
    PROCESS_FILE = "grpo_process_{}.safetensors"

    def frozen_models(self) -> dict[str, torch.nn.Module]:
        return {name: module for name, module in (("ref_model", self.ref_model),
                                                  ("old_model", self.old_model)) if module is not None}

    def resume_metadata(self) -> dict[str, str]:
        """Scalar state beside the frozen weights (the hybrid adds its switch)."""
        return {}

    def restore_metadata(self, metadata: dict[str, str]) -> None:
        pass

    def save_resume_state(self, folder: Path) -> None:
        """The reference may have been reset (hybrid switch, ``sync_ref_model``) and the old policy
        synced since the run started: both are saved as they are, not rebuilt from the starting
        checkpoint. With the generator's state a resumed run samples what the whole run would."""
        if self.args.should_save:
            tensors = {f"{name}.{key}": value.detach().clone().contiguous()
                       for name, module in self.frozen_models().items()
                       for key, value in module.state_dict().items()}
            save_file(tensors, str(folder / self.FROZEN_FILE), metadata=self.resume_metadata())
        tensors, utt_ids = rollout_tensors(self._rollouts)
        if self._generator is not None:
            tensors["generator"] = self._generator.get_state()
        save_file(tensors, str(folder / self.PROCESS_FILE.format(self.args.process_index)),
                  metadata={"utt_ids": json.dumps(utt_ids)})

    def load_resume_state(self, folder: Path) -> None:
        frozen_path = folder / self.FROZEN_FILE
        process_path = folder / self.PROCESS_FILE.format(self.args.process_index)
        for path in (frozen_path, process_path):
            if not path.is_file():
                raise RlspoofError(f"{folder}: no {path.name}, so this GRPO run cannot resume exactly "
                                   "(checkpoints written before rlspoof saved the reference, old "
                                   "policy and sampler state); start the run again")
        tensors, metadata = read_safetensors(frozen_path)
        for name, module in self.frozen_models().items():
            prefix = f"{name}."
            module.load_state_dict({k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        self.restore_metadata(metadata)
        tensors, metadata = read_safetensors(process_path, device=str(self.args.device))
        utt_ids = json.loads(metadata.get("utt_ids", "{}"))
        if "generator" in tensors:
            self.sampling_generator(self.args.device).set_state(tensors.pop("generator").cpu())
        self._rollouts = rollouts_from_tensors(tensors, utt_ids)

    # ---------------------------------------------------------------- loss

    @property
    def samples_whole_step(self) -> bool:
        """Batch-level advantage statistics over every micro-batch of an optimizer step (TRL's
        generation batch) need every micro-batch's rewards before the first one's loss."""
        a = self.args
        return (a.batch_scope == "accumulation" and a.gradient_accumulation_steps > 1
                and "batch" in (a.advantage_center, a.scale_rewards))

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        """The Trainer prefetches an optimizer step's micro-batches; keep them for
        ``step_rollouts``."""
        batches, num_items = super().get_batch_samples(epoch_iterator, num_batches, device)
        self._step_batches = batches
        return batches, num_items

    def current_rollout(self, model, logits, inputs) -> Rollout:
        """A fresh rollout on the first of ``num_iterations`` visits of a batch, else the stored
        one; with ``samples_whole_step`` the step's first micro-batch samples them all."""
        position = self._micro_step % self.args.gradient_accumulation_steps
        iteration = self.state.global_step % self.args.num_iterations
        reuse = iteration > 0 or (position > 0 and self.samples_whole_step)
        if reuse and position in self._rollouts:
            stored = self._rollouts[position]
            if stored.utt_ids and stored.utt_ids != list(inputs.get("utt_id", [])):
                what = "num_iterations: the repeated batch" if iteration > 0 else "batch_scope: accumulation: the micro-batch"
                raise RuntimeError(f"{what} differs from the stored one")
            return stored
        if self.samples_whole_step:
            self._rollouts = dict(enumerate(self.step_rollouts(model, logits, inputs)))
            return self._rollouts[0]
        # Groups are per utterance, so group statistics stay on the rank holding the utterance;
        # only batch-level statistics (advantage_center / scale_rewards: batch) cross ranks.
        rollout = self.sample_rollout(logits, inputs, gather_rows=self.gather_rows)
        if self.args.num_iterations > 1:
            self._rollouts[position] = rollout
        return rollout

    def sample_rollout(self, logits, inputs, gather_rows=None, compute_advantages=True) -> Rollout:
        columns = {k: v for k, v in inputs.items() if k not in ("input_values", "attention_mask", "labels")}
        rollout_logits, old_logits = logits, None
        if self.old_model is not None:
            with torch.no_grad():
                old_logits = self.policy_logits(self.old_model, inputs)
            if self.args.rollout_policy == "old":  # PPO / TRL: the old policy takes the decisions
                rollout_logits, old_logits = old_logits, None
        return make_rollout(rollout_logits, inputs["labels"], self.args, self.reward_funcs,
                            self.reward_weights, self.sampling_generator(logits.device), columns,
                            gather_rows=gather_rows, old_logits=old_logits,
                            compute_advantages=compute_advantages)

    def step_rollouts(self, model, logits, inputs) -> list[Rollout]:
        """Every micro-batch of this optimizer step sampled now (the first from its own forward
        pass, the others from one extra no-grad pass each, at the same weights), and their
        advantages computed over all of them and, through ``gather_rows``, every process."""
        first = self._step_batches[0]
        if list(first.get("utt_id", [])) != list(inputs.get("utt_id", [])):
            raise RuntimeError("batch_scope: accumulation: the first micro-batch is not the prefetched one")
        rollouts = [self.sample_rollout(logits, inputs, compute_advantages=False)]
        with torch.no_grad():
            for batch in self._step_batches[1:]:
                batch = self._prepare_inputs(batch)
                rollouts.append(self.sample_rollout(self.policy_logits(model, batch), batch,
                                                    compute_advantages=False))
        rewards = torch.cat([r.rewards for r in rollouts])
        weights = None if rollouts[0].sample_weights is None else torch.cat([r.sample_weights for r in rollouts])
        advantages = rollout_advantages(rewards, weights, self.args, self.gather_rows)
        for rollout, rows in zip(rollouts, advantages.split([r.rewards.shape[0] for r in rollouts]), strict=True):
            rollout.advantages = rows
        return rollouts

    def grpo_loss(self, model, inputs, logits) -> torch.Tensor:
        args = self.args
        rollout = self.current_rollout(model, logits, inputs)
        logp = action_log_probs(logits, rollout.actions, args.temperature)
        fresh = args.num_iterations == 1 and self.old_model is None
        # TRL with num_iterations = 1: the old log-probs are the current ones, detached, so the
        # ratio is 1 in value and the gradient is the policy gradient (with use_clipping=false
        # this is exactly the published GRPO_s).
        old_logp = logp.detach() if fresh else rollout.old_logp
        sampling_logp = logp.detach() if fresh else rollout.sampling_logp
        ref_logp = None
        if self.ref_model is not None:
            with torch.no_grad():
                ref_logits = self.policy_logits(self.ref_model, inputs)
            ref_logp = action_log_probs(ref_logits, rollout.actions, args.temperature)
        # Always logged (TRL >= 1.0); differentiated only when it is a bonus in the loss.
        entropy_logits = logits if args.entropy_coef else logits.detach()
        entropy = torch.distributions.Categorical(logits=entropy_logits.float() / args.temperature).entropy()
        loss, metrics = grpo_loss(
            logp, old_logp, rollout.advantages, ref_logp=ref_logp, beta=args.beta,
            epsilon_low=args.epsilon, epsilon_high=args.epsilon_high,
            policy_loss="clipped" if args.use_clipping else "unclipped",
            sample_weights=rollout.sample_weights,
            entropy=entropy, entropy_coef=args.entropy_coef,
            use_bias_correction_kl=args.use_bias_correction_kl, sampling_logp=sampling_logp,
        )
        self.record_metrics(rollout, logits, inputs["labels"], metrics)
        return loss

    def training_loss(self, model, inputs, outputs) -> torch.Tensor:
        return self.grpo_loss(model, inputs, outputs["logits"])

    def training_step(self, *args, **kwargs):
        try:
            return super().training_step(*args, **kwargs)
        finally:
            self._micro_step += 1  # the position inside gradient accumulation, for rollout reuse

    # ---------------------------------------------------------------- logging

    def record_metrics(self, rollout: Rollout, logits, labels, loss_metrics: dict) -> None:
        """TRL >= 1.0's meanings: ``reward`` / ``reward_std`` and ``rewards/<f>/mean|std`` are the
        mean and the (unbiased) std over the batch's B x G rewards (policy-weighted population
        moments in exact mode); ``reward_std_within_group`` is the mean of the groups' stds,
        which is what ``scale_rewards: group`` divides by and what is 0 for a group without signal."""
        m = self._metrics
        weights = rollout.sample_weights
        series = [("reward", "reward_std", rollout.rewards)]
        series += [(f"rewards/{name}/mean", f"rewards/{name}/std", r)
                   for name, r in rollout.rewards_per_func.items()]
        flat_weights = None if weights is None else weights.reshape(1, -1) / weights.shape[0]
        for mean_key, std_key, rewards in series:  # the batch as one group
            mean, std = group_stats(rewards.reshape(1, -1), flat_weights)
            m[mean_key].append(mean.item())
            m[std_key].append(std.item())
        m["reward_std_within_group"].append(group_stats(rollout.rewards, weights)[1].mean().item())
        if rollout.sample_weights is None:
            m["frac_reward_zero_std"].append(zero_std_fraction(rollout.rewards))
        m["accuracy"].append((logits.detach().argmax(-1) == labels).float().mean().item())
        for key, value in loss_metrics.items():
            m[key].append(float(value))
