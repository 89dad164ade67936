"""Group-relative advantages: how much better a sampled decision was than its alternatives.

GRPO replaces a learned value function by statistics of the rewards themselves. Two published
conventions exist and both are offered, independently for the centre and the scale:

* TRL (``GRPOTrainer``): subtract the mean of the utterance's own group, divide by the group
  std (``scale_rewards="group"``), by the std over the whole batch (``"batch"``) or not at all
  (``"none"``, Dr. GRPO); ``eps = 1e-4``.
* The published deepfake-detection GRPO: ``(r - mean) / (std + 1e-5)`` with mean and std over
  the *whole batch* of ``B x G`` samples; its ablation uses the raw 0/1 reward (no centring,
  no scaling, hence no negative advantage).

Std convention (mirrors TRL): sample statistics use the **unbiased** (Bessel-corrected) std,
as ``torch.std`` and TRL's ``nanstd`` do; a group (or batch) with a single sample has std 0,
as TRL sets it, so its advantage is ``(r - mean) / eps``. In exact mode (``weights`` given)
the statistics are expectations under the policy, so they are **population** (biased)
moments: that is the limit of the sample statistics as ``G -> infinity``.

Advantages are constants of the policy-gradient loss, so the result is always detached.
"""

from __future__ import annotations

import torch

__all__ = ["CENTERS", "SCALES", "group_advantages", "group_stats", "zero_std_fraction"]

CENTERS: tuple[str, ...] = ("group", "batch", "none")
SCALES: tuple[str, ...] = ("group", "batch", "none")


def _check_weights(weights: torch.Tensor, rewards: torch.Tensor) -> torch.Tensor:
    if weights.shape != rewards.shape:
        raise ValueError(
            f"weights must have the shape of rewards {tuple(rewards.shape)}, "
            f"got {tuple(weights.shape)}"
        )
    weights = weights.detach().to(rewards.dtype)
    if not torch.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("weights must be finite and non-negative (probabilities)")
    row_sums = weights.sum(dim=1)
    if not torch.allclose(row_sums, torch.ones_like(row_sums), atol=1e-3, rtol=0.0):
        raise ValueError(
            "weights must sum to 1 in every row (the old policy's action probabilities), "
            f"got row sums in [{row_sums.min().item():.6g}, {row_sums.max().item():.6g}]"
        )
    return weights


def group_stats(
    rewards: torch.Tensor, weights: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each group's mean and std, ``(B, 1)`` each, with the module's std convention: unbiased
    for sampled groups (0 for a lone sample), the policy-weighted population std with
    ``weights``. Shared by the advantages and by the trainer's ``reward``/``reward_std`` logs."""
    r = rewards.detach()
    if not r.is_floating_point():
        r = r.float()
    return _group_stats(r, None if weights is None else _check_weights(weights, r))


def _group_stats(r: torch.Tensor, w: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    if w is not None:
        mean = (w * r).sum(dim=1, keepdim=True)
        return mean, ((w * (r - mean) ** 2).sum(dim=1, keepdim=True)).sqrt()
    mean = r.mean(dim=1, keepdim=True)
    if r.size(1) > 1:
        return mean, r.std(dim=1, keepdim=True)  # unbiased, like TRL's nanstd
    return mean, torch.zeros_like(mean)  # TRL: a lone sample has std 0


def group_advantages(
    rewards: torch.Tensor,
    *,
    center: str = "group",
    scale: str = "group",
    eps: float = 1e-4,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Normalise ``(B, G)`` rewards into advantages, ``(r - centre) / (std + eps)``.

    Args:
        rewards: ``(B, G)``: row ``b`` holds the rewards of utterance ``b``'s group. For
            segment-level rewards reshape ``(B, G, T)`` to ``(B * T, G)`` first if each frame
            is its own group.
        center: ``"group"`` subtracts each row's mean (TRL); ``"batch"`` the mean over all
            ``B x G`` rewards (the published paper); ``"none"`` keeps raw rewards (the paper's
            raw-reward ablation).
        scale: ``"group"`` divides by each row's std (TRL ``scale_rewards="group"``);
            ``"batch"`` by the std over all ``B x G`` rewards (TRL ``"batch"`` and the paper);
            ``"none"`` does not divide (TRL ``"none"``, Dr. GRPO). Each std is taken around
            its own mean (group std around the group mean, batch std around the batch mean),
            whatever ``center`` is, as TRL does.
        eps: added to the std before dividing: TRL uses ``1e-4`` (default), the paper ``1e-5``.
        weights: exact mode. ``(B, G)`` probabilities summing to 1 per row; then column ``g``
            is an action (not a draw), ``rewards[b, g]`` its reward and ``weights[b, g]`` the
            old policy's probability of it. Means become ``sum_g w r``, stds population stds
            ``sqrt(sum_g w (r - mean)^2)``; the batch statistics weight every utterance
            equally (``mean_b sum_g w r``). Without weights every draw counts ``1 / G``.

    Returns:
        ``(B, G)`` float advantages, detached.
    """
    if center not in CENTERS:
        raise ValueError(f"center must be one of {', '.join(CENTERS)}; got {center!r}")
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {', '.join(SCALES)}; got {scale!r}")
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    if rewards.dim() != 2:
        raise ValueError(f"rewards must have shape (B, G), got {tuple(rewards.shape)}")
    r = rewards.detach()
    if not r.is_floating_point():
        r = r.float()
    w = None if weights is None else _check_weights(weights, r)
    group_mean, group_std = _group_stats(r, w)
    batch_mean = group_mean.mean() if r.numel() else r.new_zeros(())

    if center == "group":
        centered = r - group_mean
    elif center == "batch":
        centered = r - batch_mean
    else:
        centered = r
    if scale == "none":
        return centered

    if scale == "group":
        std = group_std
    else:  # batch
        if w is not None:
            std = (
                (w * (r - batch_mean) ** 2).sum(dim=1).mean().sqrt()
                if r.numel()
                else r.new_zeros(())
            )
        elif r.numel() > 1:
            std = r.std()
        else:
            std = r.new_zeros(())
    return centered / (std + eps)


def zero_std_fraction(rewards: torch.Tensor, eps: float = 1e-8) -> float:
    """Fraction of groups (rows) whose rewards are all equal, within ``eps``.

    Such a group gets zero advantage under group centring and teaches nothing: with 0/1
    rewards it is an utterance the policy already always gets right (or always wrong). TRL logs
    it as ``frac_reward_zero_std``; a value near 1 means the batch carries no signal.
    """
    if rewards.dim() != 2:
        raise ValueError(f"rewards must have shape (B, G), got {tuple(rewards.shape)}")
    if rewards.size(0) == 0:
        return 0.0
    if rewards.size(1) == 0:
        return 1.0
    r = rewards.detach().float()
    spread = r.max(dim=1).values - r.min(dim=1).values
    return float((spread <= eps).float().mean().item())
