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

import json
from pathlib import Path

import torch
from safetensors.torch import save_file
from trl.trainer.callbacks import SyncRefModelCallback
from trl.trainer.utils import RepeatSampler

from rlspoof.algos import (
    action_log_probs,
    group_stats,
    grpo_loss,
    zero_std_fraction,
)
from rlspoof.errors import ConfigError, RlspoofError
from rlspoof.rewards import resolve_rewards
from rlspoof.trainers.base import SpoofTrainer
from rlspoof.trainers.frozen import (
    SyncOldPolicy,
    check_frozen_copies_fit,
    disable_stochastic_layers,
    frozen_copy,
)
from rlspoof.trainers.rollouts import (
    Rollout,
    make_rollout,
    read_safetensors,
    rollout_advantages,
    rollout_tensors,
    rollouts_from_tensors,
)


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
