"""Rewards for GRPO fine-tuning: TRL-style reward functions, their registry and combination.

A reward function maps sampled actions ``(B, G)`` and labels ``(B,)`` (0 = bonafide,
1 = spoof) plus keyword batch columns to rewards ``(B, G)``; see
:mod:`rlspoof.rewards.functions` for the interface and :mod:`rlspoof.rewards.registry` for
names, weights and settings as a recipe gives them.
"""

from __future__ import annotations

from rlspoof.rewards.functions import (
    BONAFIDE_ACTION,
    SPOOF_ACTION,
    RewardFunc,
    bind_reward,
    confidence_reward,
    correctness_reward,
    cost_weighted_reward,
)
from rlspoof.rewards.registry import (
    REWARD_FUNCS,
    compute_rewards,
    get_reward_func,
    make_reward,
    register_reward,
    resolve_rewards,
)

__all__ = [
    "RewardFunc",
    "BONAFIDE_ACTION",
    "SPOOF_ACTION",
    "correctness_reward",
    "cost_weighted_reward",
    "confidence_reward",
    "bind_reward",
    "REWARD_FUNCS",
    "register_reward",
    "get_reward_func",
    "make_reward",
    "resolve_rewards",
    "compute_rewards",
]
