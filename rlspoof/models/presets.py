"""Encoder families and named architectures (presets): what ``encoder_preset`` and a
checkpoint's ``model_type`` may name, each a registry whose unknown names are errors listing
the valid ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from transformers import (
    Data2VecAudioConfig,
    Data2VecAudioModel,
    HubertConfig,
    HubertModel,
    PretrainedConfig,
    PreTrainedModel,
    Wav2Vec2Config,
    Wav2Vec2Model,
    WavLMConfig,
    WavLMModel,
)

from rlspoof.errors import RlspoofError
from rlspoof.models.frontends import FRONT_END_KEY, front_end_geometry

#: transformers ``model_type`` -> (config class, model class without a task head).
ENCODER_FAMILIES: dict[str, tuple[type[PretrainedConfig], type[PreTrainedModel]]] = {
    "wav2vec2": (Wav2Vec2Config, Wav2Vec2Model),
    "hubert": (HubertConfig, HubertModel),
    "wavlm": (WavLMConfig, WavLMModel),
    "data2vec-audio": (Data2VecAudioConfig, Data2VecAudioModel),
}


# Sizes of the tiny test/demo encoder (~0.15-0.7M parameters depending on the family).
# The CNN front-end differs from real wav2vec 2.0 on purpose: one wide 25 ms / 10 ms-hop kernel
# (400/160 samples, 100 frames/s) followed by a 1x1 mixing layer. Real checkpoints learn
# frequency-selective filters from thousands of hours with a 512-channel stack of short kernels;
# a 32-channel stack of 10-sample kernels trained for minutes on CPU cannot resolve the spectral
# artifacts of the built-in corpus and stays at chance (measured 2026-11-25, SFT from random
# init on the small corpus, 300 steps of 16 x 1.5 s: dev EER 0.50-0.53 with the old 32-channel
# 10/8/8 stack, 0.39-0.41 with this front-end), and it is 2x slower. A layer-normalised CNN (``feat_extract_norm="layer"``) makes padded and unpadded
# inputs give the same frames, which keeps batch scoring exact.
_TINY_COMMON: dict[str, Any] = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 128,
    "conv_dim": (128, 64),
    "conv_kernel": (400, 1),
    "conv_stride": (160, 1),
    "conv_bias": True,
    "feat_extract_norm": "layer",
    "layerdrop": 0.0,
    "mask_time_length": 5,
}


# Family-specific parameter names for the tiny positional convolution.
_TINY_FAMILY: dict[str, dict[str, Any]] = {
    "wav2vec2": {"num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4},
    "hubert": {"num_conv_pos_embeddings": 16, "num_conv_pos_embedding_groups": 4},
    "wavlm": {
        "num_conv_pos_embeddings": 16,
        "num_conv_pos_embedding_groups": 4,
        "num_buckets": 32,
        "max_bucket_distance": 100,
    },
    "data2vec-audio": {
        "num_conv_pos_embeddings": 2,  # here: number of positional conv layers
        "conv_pos_kernel_size": 7,
        "num_conv_pos_embedding_groups": 4,
    },
}


# The large (300M) architecture of wav2vec 2.0 large / XLS-R 300M / MMS-300M.
_LARGE: dict[str, Any] = {
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "intermediate_size": 4096,
    "feat_extract_norm": "layer",
    "do_stable_layer_norm": True,
    "conv_bias": True,
}


def family_classes(family: str) -> tuple[type[PretrainedConfig], type[PreTrainedModel]]:
    if not isinstance(family, str) or family not in ENCODER_FAMILIES:
        raise RlspoofError(
            f"unknown encoder family {family!r} (valid: {', '.join(ENCODER_FAMILIES)})"
        )
    return ENCODER_FAMILIES[family]


def tiny_encoder_config(family: str = "wav2vec2", **overrides: Any) -> PretrainedConfig:
    """A tiny random-init config of ``family`` (hidden 64, 2 layers, 2 heads, 3 CNN layers)."""
    config_cls, _ = family_classes(family)
    kwargs = {**_TINY_COMMON, **_TINY_FAMILY.get(family, {}), **overrides}
    return config_cls(**kwargs)


_LOGSPEC_FRONT_END = {"type": "logspec2d", "channels": 16, "frequency": "flatten"}


#: The demo's detector (issue 12): the tiny transformer, widened to 128, over a 2D-conv log
#: spectrogram front end (``rlspoof.models.frontends``; 0.48 M parameters, 25 frames/s) whose
#: maps keep their frequency axis (``frequency: flatten``: each frame's maps over all bins
#: through one linear layer; see benchmarks/results/frontend_sweep.json).
_TINY_LOGSPEC: dict[str, Any] = {
    "hidden_size": 128, "intermediate_size": 256, "num_attention_heads": 4,
    FRONT_END_KEY: _LOGSPEC_FRONT_END, **front_end_geometry(_LOGSPEC_FRONT_END),
}


#: Preset name -> function(family, overrides) -> transformers config (random init, no download).
PRESETS: dict[str, Callable[..., PretrainedConfig]] = {
    "tiny": lambda family, **o: tiny_encoder_config(family, **o),
    "tiny-logspec": lambda family, **o: tiny_encoder_config(family, **{**_TINY_LOGSPEC, **o}),
    # Each family's default config is its base size (wav2vec2-base: 95M parameters).
    "base": lambda family, **o: family_classes(family)[0](**o),
    "large": lambda family, **o: family_classes(family)[0](**{**_LARGE, **o}),
    "xlsr-300m": lambda family, **o: family_classes(family)[0](**{**_LARGE, **o}),
}


def preset_config(preset: str, family: str | None = None, **overrides: Any) -> PretrainedConfig:
    if preset not in PRESETS:
        raise RlspoofError(f"unknown encoder preset {preset!r} (valid: {', '.join(PRESETS)})")
    return PRESETS[preset](family or "wav2vec2", **overrides)
