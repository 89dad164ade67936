"""``PostTrainConfig``: the recipe keys of supervised post-training (AntiDeepfake; mix-frame)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rlspoof.errors import ConfigError
from rlspoof.trainers.sft_config import SFTConfig


@dataclass
class PostTrainConfig(SFTConfig):
    """Supervised post-training (AntiDeepfake; mix-frame): cross-entropy on the utterance, plus
    a frame-level cross-entropy on mix-frame clips. The data mixture (mix_by, mix_weights,
    balance_labels) and the perturbation (mixframe_*) are data keys, so any method can use them."""

    method: str = field(default="posttrain", metadata={"help": "Training method (posttrain)."})
    frame_loss_weight: float = field(
        default=0.0, metadata={"help": "Weight of the frame-level loss (needs frame_head; 0: utterance "
                                       "loss only, the AntiDeepfake recipe)."})

    def __post_init__(self) -> None:
        if self.frame_loss_weight < 0:
            raise ConfigError(f"frame_loss_weight must be >= 0, got {self.frame_loss_weight}")
        super().__post_init__()
