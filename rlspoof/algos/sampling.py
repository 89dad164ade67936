"""Sampling a group of decisions from a classifier policy, and their log-probabilities.

A binary detector is a one-step policy: one forward pass gives logits over the actions
(index 0 bonafide, index 1 spoof) and the *group* of an utterance is ``G`` labels drawn with
replacement from ``softmax(logits / temperature)`` (the published recipe draws 64; TRL's
``num_generations`` defaults to 8). Unlike a language model, no generation loop is needed, so
sampling and scoring are separate, cheap tensor functions.

Shapes: the documented case is utterance-level logits ``(B, A)`` and actions ``(B, G)``. For
segment-level decisions (frame logits ``(B, T, A)``) the same functions accept extra middle
dimensions: logits ``(B, *S, A)`` <-> actions ``(B, G, *S)``, i.e. the group axis always comes
right after the batch axis, as the losses expect.
"""

from __future__ import annotations

import torch

__all__ = ["action_log_probs", "all_actions", "sample_actions"]


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:  # also rejects NaN
        raise ValueError(f"temperature must be > 0, got {temperature!r}")


def _check_logits(logits: torch.Tensor) -> None:
    if logits.dim() < 2:
        raise ValueError(
            f"logits must have shape (B, A) or (B, *S, A), got shape {tuple(logits.shape)}"
        )
    if logits.size(-1) < 1:
        raise ValueError("logits must have at least one action (last dimension is empty)")


def action_log_probs(
    logits: torch.Tensor, actions: torch.Tensor, temperature: float = 1.0
) -> torch.Tensor:
    """Log-probabilities ``log softmax(logits / temperature)[actions]``, differentiable.

    Args:
        logits: ``(B, A)`` (or ``(B, *S, A)``) policy logits of one forward pass.
        actions: ``(B, G)`` (or ``(B, G, *S)``) integer actions; column ``g`` is the ``g``-th
            draw of the group.
        temperature: the sampling temperature. Scoring with the same temperature as sampling
            keeps the importance ratio exact (TRL divides the logits the same way).

    Returns:
        ``(B, G)`` (or ``(B, G, *S)``) log-probabilities in float32 (low-precision logits are
        upcast first: log-softmax in fp16/bf16 loses the small differences the ratio needs).
    """
    _check_temperature(temperature)
    _check_logits(logits)
    if actions.dtype == torch.bool or actions.is_floating_point() or actions.is_complex():
        raise ValueError(f"actions must be an integer tensor, got dtype {actions.dtype}")
    expected = (logits.size(0), *logits.shape[1:-1])
    got = (actions.size(0), *actions.shape[2:]) if actions.dim() >= 2 else None
    if actions.dim() != logits.dim() or got != expected:
        raise ValueError(
            f"actions must have shape (B, G, *S) = ({logits.size(0)}, G"
            f"{''.join(f', {s}' for s in logits.shape[1:-1])}) for logits of shape "
            f"{tuple(logits.shape)}, got {tuple(actions.shape)}"
        )
    logp_all = torch.log_softmax(logits.float() / temperature, dim=-1)  # (B, *S, A)
    num_gen = actions.size(1)
    logp_all = logp_all.unsqueeze(1).expand(logp_all.size(0), num_gen, *logp_all.shape[1:])
    return logp_all.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)


@torch.no_grad()
def sample_actions(
    logits: torch.Tensor,
    num_generations: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Draw ``num_generations`` i.i.d. actions per row from ``softmax(logits / temperature)``.

    Draws are with replacement (the group is a sample of the policy, not a set of distinct
    labels) and carry no gradient: the policy gradient flows through
    :func:`action_log_probs`, never through the sampling itself.

    Args:
        logits: ``(B, A)`` (or ``(B, *S, A)``) policy logits.
        num_generations: ``G >= 1``, the group size.
        temperature: ``> 0``; below 1 sharpens the distribution, above 1 flattens it.
        generator: makes the draw reproducible; must live on ``logits``' device.

    Returns:
        ``(B, G)`` (or ``(B, G, *S)``) int64 actions.
    """
    if isinstance(num_generations, bool) or int(num_generations) != num_generations:
        raise ValueError(f"num_generations must be an integer >= 1, got {num_generations!r}")
    if num_generations < 1:
        raise ValueError(f"num_generations must be >= 1, got {num_generations}")
    _check_temperature(temperature)
    _check_logits(logits)
    num_actions = logits.size(-1)
    probs = torch.softmax(logits.detach().float() / temperature, dim=-1)
    flat = probs.reshape(-1, num_actions)  # torch.multinomial takes at most 2-D input
    if flat.size(0) == 0:
        return torch.empty(
            (logits.size(0), int(num_generations), *logits.shape[1:-1]),
            dtype=torch.long,
            device=logits.device,
        )
    drawn = torch.multinomial(flat, int(num_generations), replacement=True, generator=generator)
    drawn = drawn.reshape(*probs.shape[:-1], int(num_generations))  # (B, *S, G)
    return drawn.movedim(-1, 1).contiguous()  # (B, G, *S)


def all_actions(
    batch_size: int, num_actions: int = 2, device: torch.device | str | None = None
) -> torch.Tensor:
    """Every action once per row, ``(B, A)`` int64: ``[[0, 1, ..., A-1], ...]``.

    With only two actions the expectation over the policy can be taken exactly instead of
    sampled ("exact mode"): score every action once and weight it by its probability (see
    ``group_advantages(weights=...)`` and ``grpo_loss(sample_weights=...)``).
    """
    if batch_size < 0:
        raise ValueError(f"batch_size must be >= 0, got {batch_size}")
    if num_actions < 1:
        raise ValueError(f"num_actions must be >= 1, got {num_actions}")
    return torch.arange(num_actions, device=device).repeat(batch_size, 1)
