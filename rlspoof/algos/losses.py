"""The GRPO objective for classifier policies, as small pure pieces registered by name.

Shapes: ``B`` utterances, ``G`` sampled decisions each (one label per utterance), so every
per-decision tensor is ``(B, G)``. The formulas are TRL 1.16's ``GRPOTrainer._compute_loss``::

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

The ``"unclipped"`` policy loss, ``-ratio * A``, with ``old_logp = logp.detach()`` is the
paper's ``GRPO_s`` (value ``-A``, gradient ``-A * grad logp``: REINFORCE with a group baseline).

Aggregation. TRL's four ``loss_type`` values (grpo, bnpo, dr_grpo, dapo) differ only in how
they average tokens of unequal-length completions; with one decision per utterance they all
are the mean over the ``B x G`` decisions, so there is one aggregation here: a weighted mean.

Exact mode. With two actions the expectation over the policy is a two-term sum, so instead of
sampling ``G`` labels one may score every action once (``all_actions``), weight the advantages
(``group_advantages(weights=mu_probs)``) and weight each action's loss by its sampling-policy
probability (``sample_weights=mu_probs``). The gradient is then the ``G -> infinity`` limit
of the sampled estimator, without its variance. Note that with group centring the sampled
estimator's expectation is ``(1 - 1/G)`` times that limit (the group mean includes the draw
itself); the tests check both facts.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = [
    "LOSS_TYPES",
    "POLICY_LOSSES",
    "clip_fractions",
    "decision_weights",
    "exact_kl",
    "grpo_loss",
    "k3_kl",
    "register_policy_loss",
]

#: TRL's ``loss_type`` names, accepted by ``GRPOConfig``: all equal here (see the module doc).
LOSS_TYPES: tuple[str, ...] = ("grpo", "bnpo", "dr_grpo", "dapo")

PolicyLoss = Callable[[torch.Tensor, torch.Tensor, float, float], torch.Tensor]
#: name -> ``fn(ratio, advantages, epsilon_low, epsilon_high) -> (B, G)`` per-decision loss.
POLICY_LOSSES: dict[str, PolicyLoss] = {}


def register_policy_loss(name: str) -> Callable[[PolicyLoss], PolicyLoss]:
    """Add a per-decision policy loss under ``name`` (verl's ``register_policy_loss``)."""

    def register(fn: PolicyLoss) -> PolicyLoss:
        if name in POLICY_LOSSES:
            raise ValueError(f"policy loss {name!r} is already registered")
        POLICY_LOSSES[name] = fn
        return fn

    return register


@register_policy_loss("clipped")
def clipped_surrogate(ratio, advantages, epsilon_low, epsilon_high) -> torch.Tensor:
    """PPO's pessimistic bound, ``-min(r A, clip(r, 1 - eps_low, 1 + eps_high) A)``: ``(B, G)``."""
    clipped = torch.clamp(ratio, 1.0 - epsilon_low, 1.0 + epsilon_high) * advantages
    return -torch.min(ratio * advantages, clipped)


@register_policy_loss("unclipped")
def unclipped_surrogate(ratio, advantages, epsilon_low, epsilon_high) -> torch.Tensor:
    """``-r A`` (the clip range is unused): the published ``GRPO_s``. ``(B, G)``."""
    return -ratio * advantages


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor,
          sampling_logp: torch.Tensor | None = None) -> torch.Tensor:
    """Schulman's k3 estimate of ``KL(pi || pi_ref)`` per decision, ``(B, G)``; times
    ``pi / mu`` when ``sampling_logp`` (``log mu``, the sampler's) is given (see module doc)."""
    delta = ref_logp.detach().to(logp.dtype) - logp
    kl = torch.exp(delta) - delta - 1.0
    if sampling_logp is not None:
        kl = torch.exp(logp - sampling_logp.detach().to(logp.dtype)) * kl
    return kl


def decision_weights(shape: torch.Size, sample_weights: torch.Tensor | None = None,
                     dtype=torch.float32, device=None) -> torch.Tensor:
    """Each decision's weight in the loss and in every metric, ``(B, G)``, summing to 1.

    Sampled decisions weigh ``1 / (B G)`` (the mean); in exact mode, decision ``(b, g)`` weighs
    ``w_bg / B``, ``w`` the sampling policy's probabilities (rows summing to 1), so the loss is
    ``mean_b sum_g w_bg l_bg``, the policy expectation."""
    batch, num_gen = shape
    if sample_weights is None:
        return torch.full((batch, num_gen), 1.0 / (batch * num_gen), dtype=dtype, device=device)
    return sample_weights.detach().to(dtype) / batch


def clip_fractions(ratio, advantages, epsilon_low, epsilon_high, weights) -> dict[str, float]:
    """TRL's clip metrics: the weighted share of decisions whose ratio the clip holds back
    (below ``1 - eps_low`` with ``A < 0``, above ``1 + eps_high`` with ``A > 0``)."""
    low = (ratio < 1.0 - epsilon_low) & (advantages < 0)
    high = (ratio > 1.0 + epsilon_high) & (advantages > 0)
    share = lambda mask: float((mask.to(weights.dtype) * weights).sum())  # noqa: E731
    return {"clip_ratio/low_mean": share(low), "clip_ratio/high_mean": share(high),
            "clip_ratio/region_mean": share(low | high)}


def grpo_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    *,
    ref_logp: torch.Tensor | None = None,
    beta: float = 0.0,
    epsilon_low: float = 0.2,
    epsilon_high: float | None = None,
    policy_loss: str = "clipped",
    sample_weights: torch.Tensor | None = None,
    entropy: torch.Tensor | None = None,
    entropy_coef: float = 0.0,
    use_bias_correction_kl: bool = True,
    sampling_logp: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """GRPO loss for ``G`` sampled decisions per utterance; returns ``(loss, metrics)``.

    Args:
        logp: ``(B, G)`` current-policy log-probabilities of the taken actions.
        old_logp: ``(B, G)``, from the policy that sampled them (detached here; pass
            ``logp.detach()`` when sampling and updating happen on the same weights).
        advantages: ``(B, G)``.
        ref_logp: ``(B, G)`` reference-policy log-probabilities; needed when ``beta > 0``, and
            used for the ``"kl"`` metric whenever given.
        beta: weight of the KL penalty (TRL default 0; the paper 0.04).
        epsilon_low / epsilon_high: clip range ``[1 - eps_low, 1 + eps_high]``;
            ``epsilon_high=None`` means ``epsilon_low`` (DAPO suggests 0.28).
        policy_loss: a name in ``POLICY_LOSSES``: ``"clipped"`` (TRL) or ``"unclipped"``.
        sample_weights: exact mode, ``(B, G)`` sampling-policy probabilities of each action
            (rows sum to 1), replacing the implicit ``1 / G`` (``decision_weights``).
        entropy: optional policy entropy, any shape, averaged; ``loss -= entropy_coef * mean``:
            an exploration bonus that keeps the policy from collapsing onto one label.
        use_bias_correction_kl: multiply k3 by ``pi / mu`` (TRL 1.16's option and default).
        sampling_logp: ``(B, G)`` log-probabilities under ``mu``, the policy that drew the
            actions, when it is not the one of ``old_logp`` (the published rule: the current
            policy samples, the old one only enters the ratio). Default: ``old_logp`` (TRL).

    Returns:
        ``(loss, metrics)``: the scalar loss and detached floats, each a weighted mean over
        decisions: ``"kl"`` (as penalised, with the correction when it is on, as TRL logs it;
        absent without ``ref_logp``), the ``clip_fractions`` (0 for ``"unclipped"``: the clip
        never engages), ``"ratio_mean"`` and, if given, ``"entropy"``.
    """
    if policy_loss not in POLICY_LOSSES:
        raise ValueError(f"policy_loss must be one of {', '.join(POLICY_LOSSES)}; got {policy_loss!r}")
    if beta > 0 and ref_logp is None:
        raise ValueError("beta > 0 needs ref_logp (the reference policy's log-probabilities)")
    if logp.dim() != 2:
        raise ValueError(f"logp must have shape (B, G), got {tuple(logp.shape)}")
    for name, tensor in [("old_logp", old_logp), ("advantages", advantages),
                         ("ref_logp", ref_logp), ("sample_weights", sample_weights),
                         ("sampling_logp", sampling_logp)]:
        if tensor is not None and tensor.shape != logp.shape:
            raise ValueError(f"{name} must have the shape of logp (B, G) = {tuple(logp.shape)}, "
                             f"got {tuple(tensor.shape)}")
    epsilon_high = epsilon_low if epsilon_high is None else epsilon_high
    weights = decision_weights(logp.shape, sample_weights, logp.dtype, logp.device)
    ratio = torch.exp(logp - old_logp.detach().to(logp.dtype))
    adv = advantages.detach().to(logp.dtype)
    per_decision = POLICY_LOSSES[policy_loss](ratio, adv, epsilon_low, epsilon_high)

    metrics: dict[str, float] = {}
    if ref_logp is not None:
        sampler = None
        if use_bias_correction_kl:
            sampler = old_logp if sampling_logp is None else sampling_logp
        kl = k3_kl(logp, ref_logp, sampler)
        if beta > 0:
            per_decision = per_decision + beta * kl
        metrics["kl"] = float((kl.detach() * weights).sum())
    loss = (per_decision * weights).sum()
    if entropy is not None:
        entropy_mean = entropy.float().mean()
        if entropy_coef:
            loss = loss - entropy_coef * entropy_mean
        metrics["entropy"] = float(entropy_mean.detach())

    ratio = ratio.detach()
    clip_metrics = clip_fractions(ratio, adv, epsilon_low, epsilon_high, weights)
    if policy_loss != "clipped":  # reported as TRL does: the clip never engages
        clip_metrics = dict.fromkeys(clip_metrics, 0.0)
    metrics.update(clip_metrics)
    metrics["ratio_mean"] = float((ratio * weights).sum())
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
