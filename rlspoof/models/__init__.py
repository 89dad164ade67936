"""Models: SSL encoders (transformers), pooling and heads, and the SpoofPolicy built on them."""

from rlspoof.models.encoders import (
    ENCODER_FAMILIES,
    PRESETS,
    EncoderConfig,
    count_parameters,
    load_encoder,
    tiny_encoder_config,
)
from rlspoof.models.heads import POOLINGS, ClassifierHead, LayerWeights, build_pooling
from rlspoof.models.policy import PolicyConfig, SpoofPolicy, build_policy

__all__ = [
    "ENCODER_FAMILIES",
    "PRESETS",
    "POOLINGS",
    "EncoderConfig",
    "PolicyConfig",
    "SpoofPolicy",
    "ClassifierHead",
    "LayerWeights",
    "build_policy",
    "build_pooling",
    "count_parameters",
    "load_encoder",
    "tiny_encoder_config",
]
