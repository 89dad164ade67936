"""The frozen copies GRPO compares against: the reference policy of the KL and the old policy
of the ratio, made deterministic (no dropout, masking or LayerDrop), synced every K steps,
and checked to fit where weights are sharded.
"""

from __future__ import annotations

import copy

import torch
from transformers import TrainerCallback
from trl.trainer.callbacks import SyncRefModelCallback
from trl.trainer.utils import disable_dropout_in_model

from rlspoof.errors import ConfigError


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
