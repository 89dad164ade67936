"""Pure tensor building blocks of GRPO for classifier policies (no models, no trainers).

* :mod:`~rlspoof.algos.sampling`: draw a group of labels from one forward pass and score them;
* :mod:`~rlspoof.algos.advantages`: group/batch reward normalisation (TRL and the paper);
* :mod:`~rlspoof.algos.losses`: the GRPO loss from registered pieces: policy losses (clipped
  surrogate or not), the k3 KL (plain, or importance-weighted as TRL 1.16 by default), the
  per-decision weights of the mean and the clip metrics.

Kept free of models so every convention can be checked against hand-computed values.
"""

from __future__ import annotations

from rlspoof.algos.advantages import (
    CENTERS,
    SCALES,
    group_advantages,
    group_stats,
    zero_std_fraction,
)
from rlspoof.algos.losses import (
    LOSS_TYPES,
    POLICY_LOSSES,
    clip_fractions,
    decision_weights,
    exact_kl,
    grpo_loss,
    k3_kl,
    register_policy_loss,
)
from rlspoof.algos.sampling import action_log_probs, all_actions, sample_actions

__all__ = [
    "CENTERS",
    "LOSS_TYPES",
    "POLICY_LOSSES",
    "SCALES",
    "action_log_probs",
    "all_actions",
    "clip_fractions",
    "decision_weights",
    "exact_kl",
    "group_advantages",
    "group_stats",
    "grpo_loss",
    "k3_kl",
    "register_policy_loss",
    "sample_actions",
    "zero_std_fraction",
]
