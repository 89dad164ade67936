"""``MLDGConfig``: the recipe keys of meta-learning domain generalisation over attack families."""

from __future__ import annotations

from dataclasses import dataclass, field

from rlspoof.errors import ConfigError
from rlspoof.trainers.sft_config import SFTConfig


@dataclass
class MLDGConfig(SFTConfig):
    """Meta-learning domain generalisation (MLDG, Li et al. 2018) with attack families as domains,
    usually on LoRA adapters (``use_peft``): each step holds out some of the batch's families as
    meta-test. ``balance_labels`` with ``mix_by: attack`` keeps every family in most batches."""

    method: str = field(default="mldg", metadata={"help": "Training method (mldg)."})
    meta_test_domains: int = field(
        default=1, metadata={"help": "Domains held out as meta-test in each step."})
    meta_lr: float = field(default=1e-3, metadata={"help": "alpha: learning rate of the inner (virtual) step."})
    meta_test_weight: float = field(default=1.0, metadata={"help": "Weight of the meta-test loss (Li et al.'s beta)."})
    first_order: bool = field(
        default=False, metadata={"help": "Drop the second-order term (the inner gradient is a constant)."})

    def __post_init__(self) -> None:
        if self.meta_test_domains < 1:
            raise ConfigError(f"meta_test_domains must be >= 1, got {self.meta_test_domains}")
        if self.meta_lr <= 0:
            raise ConfigError(f"meta_lr must be > 0, got {self.meta_lr}")
        if self.meta_test_weight < 0:
            raise ConfigError(f"meta_test_weight must be >= 0, got {self.meta_test_weight}")
        super().__post_init__()
