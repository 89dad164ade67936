"""Reward functions for GRPO on a two-action (bonafide / spoof) policy.

Why these are plain functions: the trainer, like TRL's ``reward_funcs``, samples a group of
``G`` actions per utterance and asks each reward function to score them. Keeping a reward a pure
function of tensors makes it trivially testable, composable (weighted sums) and replaceable by a
user's own function named in a recipe.

Interface (every reward function, built-in or user-supplied)::

    fn(actions: LongTensor (B, G), labels: LongTensor (B,), **kwargs) -> FloatTensor (B, G)

* ``actions[b, g]`` is the ``g``-th sampled action for utterance ``b``; ``labels[b]`` its true
  class. Both use the head's order, :data:`rlspoof.data.manifest.LABELS`: **0 = bonafide,
  1 = spoof**.
* ``kwargs`` may hold ``probs`` (FloatTensor (B, 2), the policy's detached action probabilities)
  and batch columns such as ``attack`` (list[str]) and ``utt_id``. A reward function must accept
  and ignore keyword arguments it does not use, so that the trainer can pass everything it has.
* The result is float32, on the device of ``actions``, finite.

Settings (``wrong``/``right``, costs, ...) are keyword-only parameters; :func:`bind_reward` binds
them once (a recipe's ``reward_kwargs``) and keeps the function's ``__name__`` for logging.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

import torch

from rlspoof.metrics.dcf import DCFParams

__all__ = [
    "RewardFunc",
    "BONAFIDE_ACTION",
    "SPOOF_ACTION",
    "correctness_reward",
    "cost_weighted_reward",
    "confidence_reward",
    "bind_reward",
]

#: ``fn(actions (B, G), labels (B,), **kwargs) -> rewards (B, G)``.
RewardFunc = Callable[..., torch.Tensor]

#: Action indices, as in :data:`rlspoof.data.manifest.LABELS`.
BONAFIDE_ACTION = 0
SPOOF_ACTION = 1

_DCF = DCFParams()


def _check_inputs(actions: torch.Tensor, labels: torch.Tensor, who: str) -> None:
    """Shape/value checks shared by all built-ins: a wrong layout would silently broadcast."""
    if not isinstance(actions, torch.Tensor) or not isinstance(labels, torch.Tensor):
        raise TypeError(f"{who}: actions and labels must be tensors")
    if actions.dim() != 2:
        raise ValueError(f"{who}: actions must have shape (B, G), got {tuple(actions.shape)}")
    if labels.dim() != 1 or labels.shape[0] != actions.shape[0]:
        raise ValueError(
            f"{who}: labels must have shape (B,) = ({actions.shape[0]},), got {tuple(labels.shape)}"
        )
    for what, t in (("actions", actions), ("labels", labels)):
        if t.numel() and not bool(((t == BONAFIDE_ACTION) | (t == SPOOF_ACTION)).all()):
            bad = t[(t != BONAFIDE_ACTION) & (t != SPOOF_ACTION)][0].item()
            raise ValueError(f"{who}: {what} must be 0 (bonafide) or 1 (spoof), got {bad}")


def correctness_reward(
    actions: torch.Tensor,
    labels: torch.Tensor,
    *,
    wrong: float = 0.0,
    right: float = 1.0,
    **_: Any,
) -> torch.Tensor:
    """``right`` where the sampled action equals the label, else ``wrong``.

    This is the reward of the published GRPO detector (1 / 0). After the trainer's
    normalisation, wrong samples get a negative advantage, which the paper credits for most of
    the gain over SFT; ``wrong=-1`` makes that sign explicit before normalisation.

    >>> import torch
    >>> actions = torch.tensor([[0, 1, 0], [1, 1, 0]])  # B=2 utterances, G=3 samples each
    >>> labels = torch.tensor([0, 1])                      # bonafide, spoof
    >>> correctness_reward(actions, labels).tolist()
    [[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]]
    >>> correctness_reward(actions, labels, wrong=-1.0).tolist()
    [[1.0, -1.0, 1.0], [1.0, 1.0, -1.0]]
    """
    _check_inputs(actions, labels, "correctness_reward")
    if not (math.isfinite(wrong) and math.isfinite(right)):
        raise ValueError(f"correctness_reward: wrong/right must be finite, got {wrong}, {right}")
    correct = actions == labels.unsqueeze(1)
    out = torch.full(actions.shape, float(wrong), dtype=torch.float32, device=actions.device)
    return out.masked_fill(correct, float(right))


def _validate_cost_settings(
    c_miss: float = _DCF.c_miss,
    c_fa: float = _DCF.c_fa,
    p_spoof: float = _DCF.p_spoof,
    data_p_spoof: float | None = None,
    **_: Any,
) -> DCFParams:
    params = DCFParams(p_spoof=float(p_spoof), c_miss=float(c_miss), c_fa=float(c_fa))
    if data_p_spoof is not None and not 0.0 < float(data_p_spoof) < 1.0:
        raise ValueError(f"data_p_spoof must be in (0, 1) or None, got {data_p_spoof}")
    return params


def cost_weighted_reward(
    actions: torch.Tensor,
    labels: torch.Tensor,
    *,
    c_miss: float = _DCF.c_miss,
    c_fa: float = _DCF.c_fa,
    p_spoof: float = _DCF.p_spoof,
    data_p_spoof: float | None = None,
    **_: Any,
) -> torch.Tensor:
    """Minus the per-decision share of the normalised detection cost (DCF); 0 when correct.

    Why: accuracy treats both errors alike, but a deployed countermeasure is judged by the DCF
    (:mod:`rlspoof.metrics.dcf`), whose two errors cost differently. This reward makes the
    policy optimise that cost directly. Defaults are :class:`~rlspoof.metrics.dcf.DCFParams`'
    (ASVspoof 5: ``c_miss=1, c_fa=10, p_spoof=0.05``).

    Convention, as in the ASVspoof DCF (bonafide is the *target* class):

    * **miss** = rejecting a bonafide trial: action 1 (spoof) on label 0 (bonafide),
      costs ``c_miss``;
    * **false alarm** = accepting a spoof: action 0 (bonafide) on label 1 (spoof), costs ``c_fa``.

    Reward of one decision (``norm = min(c_miss*(1-p_spoof), c_fa*p_spoof)``, the DCF's
    normaliser, and ``f_bona``/``f_spoof`` the class fractions of the data the reward is
    averaged over)::

        correct      ->  0
        miss         -> -c_miss * (1 - p_spoof) / (norm * f_bona)
        false alarm  -> -c_fa   *      p_spoof  / (norm * f_spoof)

    Dividing by the class fraction turns the DCF's class-conditional rates (FRR, FAR) into a
    per-decision average, so the **mean reward over all B x G decisions is exactly minus the
    normalised DCF of those decisions**, whatever the class balance of the batch; and the
    expected reward under the policy is minus the DCF of its soft decisions. With
    ``data_p_spoof=None`` the fractions are this batch's label fractions; pass a number (e.g. the
    training set's spoof fraction) to keep the reward scale fixed across batches. A class absent
    from the batch contributes nothing, as in a DCF restricted to the classes present.

    Note: with per-group reward normalisation (TRL ``scale_rewards="group"``) a single binary
    reward's scale cancels inside each group (all ``G`` samples share one label), so this reward
    then trains like :func:`correctness_reward`; the costs matter with ``"batch"`` or ``"none"``
    scaling, or when combined with other rewards.

    >>> import torch
    >>> actions = torch.tensor([[0, 1], [0, 1]])
    >>> labels = torch.tensor([0, 1])  # balanced batch: f_bona = f_spoof = 0.5
    >>> r = cost_weighted_reward(actions, labels, c_miss=1, c_fa=1, p_spoof=0.5)
    >>> r.tolist()  # miss on the bonafide row, false alarm on the spoof row
    [[0.0, -2.0], [-2.0, 0.0]]
    >>> float(r.mean())  # FRR = FAR = 0.5 -> normalised DCF = (0.5*0.5 + 0.5*0.5) / 0.5 = 1
    -1.0
    >>> round(float(cost_weighted_reward(actions, labels).mean()), 4)  # ASVspoof 5 costs
    -1.45
    """
    _check_inputs(actions, labels, "cost_weighted_reward")
    params = _validate_cost_settings(c_miss, c_fa, p_spoof, data_p_spoof)
    if data_p_spoof is None:
        f_spoof = labels.to(torch.float64).mean().item() if labels.numel() else 0.5
    else:
        f_spoof = float(data_p_spoof)
    f_bona = 1.0 - f_spoof
    # A class with fraction 0 has no decisions to weight; any finite weight will do.
    miss_w = params.c_miss * (1.0 - params.p_spoof) / params.normaliser / (f_bona or 1.0)
    fa_w = params.c_fa * params.p_spoof / params.normaliser / (f_spoof or 1.0)
    lab = labels.unsqueeze(1)
    miss = (lab == BONAFIDE_ACTION) & (actions == SPOOF_ACTION)
    false_alarm = (lab == SPOOF_ACTION) & (actions == BONAFIDE_ACTION)
    out = torch.zeros(actions.shape, dtype=torch.float32, device=actions.device)
    return out.masked_fill(miss, -miss_w).masked_fill(false_alarm, -fa_w)


cost_weighted_reward.validate_settings = _validate_cost_settings  # type: ignore[attr-defined]


def confidence_reward(
    actions: torch.Tensor,
    labels: torch.Tensor,
    *,
    probs: torch.Tensor | None = None,
    **_: Any,
) -> torch.Tensor:
    """``+p(action)`` for a correct sample, ``-p(action)`` for a wrong one (needs ``probs``).

    Why: a 0/1 reward says nothing about how sure the policy was. Here a sampled wrong action
    the policy was confident in costs most (down to -1), a lucky wrong guess costs little, and a
    correct answer earns its confidence. Under the policy the expected reward is
    ``p_c**2 - (1 - p_c)**2 = 2*p_c - 1`` (``p_c`` = probability of the true class), an affine
    map of the expected accuracy: the optimum is unchanged, only the per-sample signal is
    reshaped. ``probs`` is the trainer's detached (B, 2) action distribution.

    >>> import torch
    >>> actions = torch.tensor([[0, 1], [0, 1]])
    >>> labels = torch.tensor([0, 1])
    >>> probs = torch.tensor([[0.75, 0.25], [0.5, 0.5]])
    >>> confidence_reward(actions, labels, probs=probs).tolist()
    [[0.75, -0.25], [-0.5, 0.5]]
    """
    _check_inputs(actions, labels, "confidence_reward")
    if probs is None:
        raise ValueError(
            "confidence_reward needs probs=FloatTensor (B, 2), the policy's action probabilities; "
            "the trainer passes it as a keyword argument"
        )
    if not isinstance(probs, torch.Tensor) or tuple(probs.shape) != (actions.shape[0], 2):
        shape = tuple(probs.shape) if isinstance(probs, torch.Tensor) else type(probs).__name__
        raise ValueError(
            f"confidence_reward: probs must have shape ({actions.shape[0]}, 2), got {shape}"
        )
    p = probs.detach().to(device=actions.device, dtype=torch.float32)
    if not bool(torch.isfinite(p).all()) or bool((p < 0).any()) or bool((p > 1).any()):
        raise ValueError("confidence_reward: probs must be finite and in [0, 1]")
    p_action = p.gather(1, actions.long())
    correct = actions == labels.unsqueeze(1)
    return torch.where(correct, p_action, -p_action)


def _check_settings(fn: Callable[..., Any], settings: dict[str, Any], name: str) -> None:
    """Reject settings the function would silently swallow in its ``**kwargs``.

    A setting must be a named parameter other than the first two (actions, labels). A function
    with no named parameters beyond those but a ``**kwargs`` gets any setting (it reads them from
    ``kwargs`` itself). Raises ``ValueError`` naming the bad key and the valid ones.
    """
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins / C callables: nothing to check
        return
    params = list(sig.parameters.values())
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    skip = {p.name for p in positional[:2]}
    named = [
        p.name
        for p in params
        if p.name not in skip and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    ]
    has_var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    if not named and has_var_kw:
        return
    unknown = sorted(set(settings) - set(named))
    if unknown:
        valid = ", ".join(named) or "(none)"
        raise ValueError(f"reward {name!r} has no setting(s) {', '.join(unknown)}; valid: {valid}")


def bind_reward(fn: RewardFunc, name: str | None = None, **settings: Any) -> RewardFunc:
    """``fn`` with ``settings`` bound as keyword arguments, keeping ``__name__`` for logging.

    Why: recipes configure rewards by name (``reward_kwargs: {cost_weighted: {c_fa: 10}}``);
    the trainer then only ever calls ``fn(actions, labels, **batch)``. Settings the function does
    not declare raise ``ValueError`` (its ``**kwargs`` would otherwise swallow a typo), and a
    function may validate values early through a ``validate_settings(**settings)`` attribute.
    Without settings ``fn`` itself is returned.

    >>> import torch
    >>> strict = bind_reward(correctness_reward, wrong=-1.0)
    >>> strict.__name__
    'correctness_reward'
    >>> strict(torch.tensor([[0, 1]]), torch.tensor([1])).tolist()
    [[-1.0, 1.0]]
    """
    label = name or getattr(fn, "__name__", repr(fn))
    if not settings:
        return fn
    _check_settings(fn, settings, label)
    validate = getattr(fn, "validate_settings", None)
    if callable(validate):
        try:
            validate(**settings)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"reward {label!r}: {exc}") from exc
    bound = functools.partial(fn, **settings)
    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        if hasattr(fn, attr):
            setattr(bound, attr, getattr(fn, attr))
    return bound
