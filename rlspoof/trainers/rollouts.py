"""A batch's rollout: the G decisions sampled per utterance from one forward pass (or, in exact
mode, both actions weighted by their probabilities), their rewards and group-relative
advantages; and its saved form, so that a resumed run reuses it exactly.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open

from rlspoof.algos import (
    action_log_probs,
    all_actions,
    group_advantages,
    sample_actions,
)
from rlspoof.rewards import compute_rewards


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
