"""The GRPO objective for classifier policies, with TRL's loss aggregations and metrics.

Per decision (a "token": one utterance-level label, or one segment/frame label) the loss is
PPO's clipped surrogate plus an optional KL penalty, with the formulas of TRL 1.16's
``GRPOTrainer._compute_loss``::

    ratio = exp(logp - old_logp)
    l     = -min(ratio * A, clip(ratio, 1 - eps_low, 1 + eps_high) * A) + beta * kl
    k3    = exp(ref - logp) - (ref - logp) - 1
    kl    = (pi / mu) * k3   if use_bias_correction_kl (TRL's default), else k3

where ``mu`` is the policy that drew the actions (``sampling_logp``; by default the old
policy, as in TRL). Which KL that estimates, for actions ``a ~ mu``:

* ``use_bias_correction_kl=True``: ``E_mu[(pi/mu) k3] = KL(pi || pi_ref)`` (the reverse KL)
  for any ``mu``, and, the ratio being differentiable, its gradient is the unbiased gradient of
  ``KL(pi || pi_ref)`` (DeepSeek-V3.2, arXiv 2512.02556). In exact mode it *is* that KL.
* ``use_bias_correction_kl=False`` (plain k3, the published AntiDeepfake code): the value is an
  unbiased estimate of ``KL(pi || pi_ref)`` only when ``mu = pi`` (on-policy), and even then
  its gradient, ``E_pi[(1 - pi_ref/pi) grad log pi]``, is the gradient of the *forward*
  ``KL(pi_ref || pi)``, not of the KL it estimates. Off-policy (``mu = pi_old != pi``) the
  value estimates ``E_mu[k3]``, which is neither.

``clip=False`` gives ``-ratio * A``: with ``old_logp = logp.detach()`` that is the paper's
``GRPO_s`` (value ``-A``, gradient ``-A * grad logp``, i.e. REINFORCE with a group baseline).

Exact mode. With two actions the expectation over the policy is a two-term sum, so instead of
sampling ``G`` labels one may score every action once (``all_actions``), weight the advantages
(``group_advantages(weights=mu_probs)``) and weight each action's loss by its sampling-policy
probability (``sample_weights=mu_probs``). The gradient is then the ``G -> infinity`` limit
of the sampled estimator, without its variance. Note that with group centring the sampled
estimator's expectation is ``(1 - 1/G)`` times that limit (the group mean includes the draw
itself); the tests check both facts.
"""

from __future__ import annotations

import torch

__all__ = ["LOSS_TYPES", "exact_kl", "grpo_loss"]

LOSS_TYPES: tuple[str, ...] = ("grpo", "bnpo", "dr_grpo", "dapo")


def _as_3d(x: torch.Tensor, seq_level: bool) -> torch.Tensor:
    """Give ``(B, G)`` inputs a trailing token axis so one code path serves both levels."""
    return x.unsqueeze(-1) if seq_level else x


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    *,
    ref_logp: torch.Tensor | None = None,
    beta: float = 0.0,
    epsilon_low: float = 0.2,
    epsilon_high: float | None = None,
    loss_type: str = "dapo",
    clip: bool = True,
    mask: torch.Tensor | None = None,
    sample_weights: torch.Tensor | None = None,
    num_items: int | float | torch.Tensor | None = None,
    entropy: torch.Tensor | None = None,
    entropy_coef: float = 0.0,
    use_bias_correction_kl: bool = True,
    sampling_logp: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """GRPO loss for ``G`` sampled decisions per utterance; returns ``(loss, metrics)``.

    Args:
        logp: current policy log-probabilities of the taken actions, ``(B, G)`` for
            utterance-level decisions or ``(B, G, T)`` for segment-level decisions.
        old_logp: same shape, from the policy that sampled the actions (no gradient needed;
            pass ``logp.detach()`` when sampling and updating happen on the same weights).
        advantages: ``(B, G)`` (one per decision sequence, broadcast over ``T``) or the shape
            of ``logp``.
        ref_logp: reference-policy log-probabilities, shape of ``logp``; needed when
            ``beta > 0``, and used for the ``"kl"`` metric whenever given.
        beta: weight of the KL penalty (TRL default 0; the paper 0.04).
        epsilon_low / epsilon_high: clip range ``[1 - eps_low, 1 + eps_high]``;
            ``epsilon_high=None`` means ``epsilon_low`` (DAPO suggests 0.28).
        loss_type: how per-token losses become a scalar, as TRL does it:

            * ``"grpo"``: mean over sequences of (sum over its tokens / its token count);
            * ``"bnpo"``: sum over all tokens / number of valid tokens in this local batch;
            * ``"dr_grpo"``: sum / ``(B * G * T)``, ``T`` the padded length of the tensor (TRL
              uses ``max_completion_length``: pad to a fixed length to match it);
            * ``"dapo"`` (default): sum / ``num_items``.

            With utterance-level decisions (``T = 1``, no mask) all four coincide (the mean
            over the ``B x G`` decisions); they differ for segment-level decisions with a
            ragged mask.
        clip: ``False`` drops the clipping and the ``min`` (``-ratio * A``).
        mask: valid tokens, shape of ``logp`` or broadcastable to it (e.g. ``(B, 1, T)`` when
            every draw of an utterance has the same frames). Default: all valid.
        sample_weights: exact mode, ``(B, G)`` old-policy probabilities of each action
            (rows sum to 1), replacing the implicit ``1 / G``. Implemented by scaling every
            token of sequence ``(b, g)`` by ``G * w_bg`` before the aggregation above, so
            uniform weights reproduce the unweighted loss and for ``T = 1`` the loss is
            exactly ``mean_b sum_g w_bg l_bg`` (for ``"dapo"`` when ``num_items`` is the
            local count). The metrics are weighted the same way (policy expectations).
        num_items: ``"dapo"`` only: the number of valid tokens the loss is normalised by.
            ``None`` uses the local count (then ``"dapo"`` equals ``"bnpo"``). Under DDP,
            gradients are averaged over processes, so pass ``global_count / world_size`` to
            get the global per-token mean, as TRL does with ``num_items_in_batch``.
        entropy: optional policy entropy, ``(B,)`` or ``(B, G)`` (any shape is averaged);
            ``loss -= entropy_coef * entropy.mean()``: an exploration bonus that keeps the
            policy from collapsing onto one label.
        entropy_coef: weight of the entropy bonus.
        use_bias_correction_kl: multiply k3 by ``pi / mu`` (TRL 1.16's option of that name and
            default): see the module docstring for which KL each choice estimates.
        sampling_logp: log-probabilities under ``mu``, the policy that drew the actions, when
            it is not the one of ``old_logp`` (e.g. the published rule: the current policy
            samples, the old one only enters the ratio). Default: ``old_logp`` (TRL).

    Returns:
        ``(loss, metrics)``: the scalar loss and detached floats ``"kl"`` (the mean per-token
        KL term as penalised, i.e. with the correction when it is on, as TRL logs it; absent
        without ``ref_logp``), ``"clip_ratio/low_mean"`` (fraction of tokens with ``ratio < 1 -
        eps_low`` and ``A < 0``), ``"clip_ratio/high_mean"`` (``ratio > 1 + eps_high`` and
        ``A > 0``), ``"clip_ratio/region_mean"`` (either), ``"ratio_mean"`` and, if given,
        ``"entropy"``. The clip fractions are 0 when ``clip=False`` (clipping never engages).
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {', '.join(LOSS_TYPES)}; got {loss_type!r}")
    if epsilon_high is None:
        epsilon_high = epsilon_low
    if epsilon_low < 0 or epsilon_high < 0:
        raise ValueError(
            f"epsilon_low and epsilon_high must be >= 0, got {epsilon_low}, {epsilon_high}"
        )
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if beta > 0 and ref_logp is None:
        raise ValueError("beta > 0 needs ref_logp (the reference policy's log-probabilities)")
    if logp.dim() not in (2, 3):
        raise ValueError(f"logp must have shape (B, G) or (B, G, T), got {tuple(logp.shape)}")
    if old_logp.shape != logp.shape:
        raise ValueError(
            f"old_logp must have the shape of logp {tuple(logp.shape)}, got {tuple(old_logp.shape)}"
        )
    if sampling_logp is not None and sampling_logp.shape != logp.shape:
        raise ValueError(f"sampling_logp must have the shape of logp {tuple(logp.shape)}, "
                         f"got {tuple(sampling_logp.shape)}")
    if ref_logp is not None and ref_logp.shape != logp.shape:
        raise ValueError(
            f"ref_logp must have the shape of logp {tuple(logp.shape)}, got {tuple(ref_logp.shape)}"
        )
    batch, num_gen = logp.shape[:2]
    if advantages.shape not in (logp.shape[:2], logp.shape):
        raise ValueError(
            f"advantages must have shape (B, G) = {tuple(logp.shape[:2])} or the shape of logp "
            f"{tuple(logp.shape)}, got {tuple(advantages.shape)}"
        )

    seq_level = logp.dim() == 2
    lp = _as_3d(logp, seq_level)
    old = _as_3d(old_logp, seq_level).detach().to(lp.dtype)
    adv = advantages.detach().to(lp.dtype)
    if adv.dim() == 2:
        adv = adv.unsqueeze(-1)  # per-sequence advantage, broadcast over tokens

    if mask is None:
        m = torch.ones_like(lp)
    else:
        m_in = mask.unsqueeze(-1) if (seq_level and mask.dim() == 2) else mask
        try:
            if m_in.dim() != lp.dim():  # a (B, G) mask must not silently align with (G, T)
                raise RuntimeError
            m = m_in.to(lp.dtype).expand_as(lp)
        except RuntimeError as err:
            raise ValueError(
                f"mask of shape {tuple(mask.shape)} does not broadcast to logp {tuple(logp.shape)}"
            ) from err

    if sample_weights is None:
        sw = torch.ones((batch, num_gen, 1), dtype=lp.dtype, device=lp.device)
    else:
        if sample_weights.shape != (batch, num_gen):
            raise ValueError(
                f"sample_weights must have shape (B, G) = {(batch, num_gen)}, "
                f"got {tuple(sample_weights.shape)}"
            )
        sw = (sample_weights.detach().to(lp.dtype) * num_gen).unsqueeze(-1)

    ratio = torch.exp(lp - old)
    surrogate = ratio * adv
    if clip:
        clipped = torch.clamp(ratio, 1.0 - epsilon_low, 1.0 + epsilon_high) * adv
        per_token = -torch.min(surrogate, clipped)
    else:
        per_token = -surrogate

    kl = None
    if ref_logp is not None:
        ref = _as_3d(ref_logp, seq_level).detach().to(lp.dtype)
        kl = torch.exp(ref - lp) - (ref - lp) - 1.0  # k3
        if use_bias_correction_kl:
            mu = old if sampling_logp is None else _as_3d(sampling_logp, seq_level).detach().to(lp.dtype)
            kl = torch.exp(lp - mu) * kl
        if beta > 0:
            per_token = per_token + beta * kl

    weighted = per_token * m * sw
    if loss_type == "grpo":
        per_seq = weighted.sum(-1) / m.sum(-1).clamp(min=1.0)
        loss = per_seq.mean()
    elif loss_type == "bnpo":
        loss = weighted.sum() / m.sum().clamp(min=1.0)
    elif loss_type == "dr_grpo":
        loss = weighted.sum() / max(lp.numel(), 1)
    else:  # dapo
        if num_items is None:
            denom = m.sum()
        else:
            denom = torch.as_tensor(num_items, dtype=lp.dtype, device=lp.device)
        loss = weighted.sum() / denom.clamp(min=1.0)

    metrics: dict[str, float] = {}
    if entropy is not None:
        ent_mean = entropy.float().mean()
        if entropy_coef != 0.0:
            loss = loss - entropy_coef * ent_mean
        metrics["entropy"] = float(ent_mean.detach().item())

    with torch.no_grad():
        mw = m * sw  # token weights of the metrics: valid tokens, exact-mode probabilities
        total = mw.sum().clamp(min=torch.finfo(mw.dtype).tiny)

        def wmean(x: torch.Tensor) -> float:
            return float(((x.to(mw.dtype) * mw).sum() / total).item())

        if kl is not None:
            metrics["kl"] = wmean(kl)
        if clip:
            is_low = (ratio < 1.0 - epsilon_low) & (adv < 0)
            is_high = (ratio > 1.0 + epsilon_high) & (adv > 0)
            metrics["clip_ratio/low_mean"] = wmean(is_low)
            metrics["clip_ratio/high_mean"] = wmean(is_high)
            metrics["clip_ratio/region_mean"] = wmean(is_low | is_high)
        else:
            metrics["clip_ratio/low_mean"] = 0.0
            metrics["clip_ratio/high_mean"] = 0.0
            metrics["clip_ratio/region_mean"] = 0.0
        metrics["ratio_mean"] = wmean(ratio)
    return loss, metrics


def exact_kl(probs: torch.Tensor, ref_probs: torch.Tensor) -> torch.Tensor:
    """Exact ``KL(pi || pi_ref) = sum_a pi(a) (log pi(a) - log pi_ref(a))`` per row, ``(B,)``.

    With two actions the KL needs no estimator; exact mode can log (or penalise) it directly.
    ``0 log 0 = 0``; an action with ``pi > 0`` and ``pi_ref = 0`` gives ``inf``, as it should.
    """
    if probs.shape != ref_probs.shape or probs.dim() != 2:
        raise ValueError(
            f"probs and ref_probs must both have shape (B, A), got {tuple(probs.shape)} and "
            f"{tuple(ref_probs.shape)}"
        )
    return (torch.special.xlogy(probs, probs) - torch.special.xlogy(probs, ref_probs)).sum(-1)
