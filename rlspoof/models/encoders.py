"""SSL speech encoders (wav2vec 2.0 / XLS-R / MMS, HuBERT, WavLM, data2vec-audio) from
transformers, with freezing, gradient checkpointing and LoRA.

An encoder comes either from a checkpoint (``name_or_path``: a local ``save_pretrained``
folder or a Hub id) or from a named architecture with random weights (``preset``), never
silently from both: a checkpoint that cannot be found or whose weights do not all load is an
error naming it, not a randomly initialised model. How a checkpoint is read without trusting it
(safetensors only unless ``allow_pickle``; its family, size and weights checked first) is
:mod:`rlspoof.models.loading`; the families and presets are :mod:`rlspoof.models.presets`.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
from dataclasses import asdict, dataclass, field, fields

from torch import nn
from transformers import (
    PretrainedConfig,
    PreTrainedModel,
)

from rlspoof.errors import RlspoofError
from rlspoof.models.frontends import install_front_end
from rlspoof.models.loading import (
    check_declared_size,
    check_finite,
    check_is_audio_encoder,
    load_checkpoint,
    supported_family,
    weights_shapes,
)
from rlspoof.models.presets import (
    ENCODER_FAMILIES,
    PRESETS,
    family_classes,
    preset_config,
    tiny_encoder_config,
)

__all__ = [
    "EncoderConfig",
    "ENCODER_FAMILIES",
    "PRESETS",
    "FREEZE_MODES",
    "DEFAULT_LORA_TARGETS",
    "load_encoder",
    "encoder_from_config",
    "prepare_encoder",
    "enable_checkpointing",
    "tiny_encoder_config",
    "preset_config",
    "count_parameters",
    "supported_family",
    "check_declared_size",
    "check_finite",
    "weights_shapes",
]

logger = logging.getLogger(__name__)


DEFAULT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
DEFAULT_LORA = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0}

#: ``freeze`` values; ``layers:N`` = feature extractor + the first N transformer layers.
FREEZE_MODES = ("none", "feature_extractor", "all", "layers:N")
LAYER_MODES = ("weighted", "last", "<int index into the hidden states>")


@dataclass
class EncoderConfig:
    """Where the encoder comes from and how it is adapted.

    ``layer``: ``"weighted"`` (learnable softmax-weighted sum of all hidden states, from the
    projected CNN features to the last layer), ``"last"``, or an int index into the hidden
    states (0 = input of the first transformer layer, k = output of layer k, -1 = last).
    ``freeze``: ``none`` | ``feature_extractor`` | ``all`` | ``layers:N`` (the CNN feature
    extractor plus the first N transformer layers). With ``lora`` set, every encoder weight
    except the LoRA adapters is frozen whatever ``freeze`` says.
    """

    name_or_path: str | None = field(
        default=None, metadata={"help": "Hub id or local save_pretrained folder of the SSL encoder"}
    )
    preset: str | None = field(
        default=None, metadata={"help": f"random-init architecture by name: {', '.join(PRESETS)}"}
    )
    family: str | None = field(
        default=None,
        metadata={"help": f"family of a preset: {', '.join(ENCODER_FAMILIES)} (default wav2vec2)"},
    )
    layer: str | int = field(default="weighted", metadata={"help": "weighted | last | int index"})
    freeze: str = field(
        default="feature_extractor", metadata={"help": "none | feature_extractor | all | layers:N"}
    )
    gradient_checkpointing: bool = field(
        default=False, metadata={"help": "trade compute for memory"}
    )
    lora: dict | None = field(
        default=None,
        metadata={"help": "peft LoraConfig kwargs (r, lora_alpha, lora_dropout, target_modules)"},
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={
            "help": "run code shipped with the encoder checkpoint (auto_map); only the caller "
            "can set it: it is never read from a checkpoint or policy folder"
        },
    )
    allow_pickle: bool = field(
        default=False, metadata={"help": "allow pickled (.bin) weights; they can execute code"}
    )

    def __post_init__(self) -> None:
        if isinstance(self.layer, str) and re.fullmatch(r"-?\d+", self.layer.strip()):
            self.layer = int(self.layer)
        if (
            isinstance(self.layer, bool)
            or not isinstance(self.layer, (str, int))
            or (isinstance(self.layer, str) and self.layer not in ("weighted", "last"))
        ):
            raise RlspoofError(
                f"encoder layer must be one of {', '.join(LAYER_MODES)}; got {self.layer!r}"
            )
        parse_freeze(self.freeze)
        if self.family is not None:
            family_classes(self.family)
        if self.lora is not None and not isinstance(self.lora, dict):
            raise RlspoofError(
                f"encoder lora must be a dict of LoraConfig kwargs, got {self.lora!r}"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> EncoderConfig:
        return cls(**checked_fields(cls, data, "encoder"))


def checked_fields(cls: type, data: dict, what: str) -> dict:
    """Unknown keys are errors naming the key and the closest valid one."""
    if not isinstance(data, dict):
        raise RlspoofError(f"{what} config must be a mapping, got {type(data).__name__}")
    valid = [f.name for f in fields(cls)]
    for key in data:
        if key not in valid:
            close = difflib.get_close_matches(str(key), valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (valid: {', '.join(valid)})"
            raise RlspoofError(f"unknown {what} config key {key!r}{hint}")
    return dict(data)


def parse_freeze(freeze: str) -> tuple[str, int]:
    """``freeze`` -> (mode, n_layers); raises listing the valid values."""
    if freeze in ("none", "feature_extractor", "all"):
        return freeze, 0
    m = re.fullmatch(r"layers:(\d+)", str(freeze).strip())
    if m:
        return "layers", int(m.group(1))
    raise RlspoofError(f"unknown freeze mode {freeze!r} (valid: {', '.join(FREEZE_MODES)})")


def count_parameters(module: nn.Module) -> tuple[int, int]:
    """(trainable, total) number of parameters."""
    trainable = total = 0
    for p in module.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    return trainable, total


def encoder_from_config(
    model_type: str, config_dict: dict, cfg: EncoderConfig, where: str = "encoder config"
) -> PreTrainedModel:
    """Rebuild an encoder architecture (random weights) from a stored config dict, offline,
    and adapt it as ``cfg`` says (freezing, LoRA, ...). Never touches the Hub and never runs
    code: ``model_type`` must be a supported family (built with rlspoof's own classes) and an
    ``auto_map`` in the dict is dropped. Invalid config values are errors naming ``where``."""
    config_cls, model_cls = supported_family(model_type, where)
    if not isinstance(config_dict, dict):
        raise RlspoofError(f"{where}: encoder config must be a mapping, got {config_dict!r}")
    config_dict = {k: v for k, v in config_dict.items() if k not in ("model_type", "auto_map")}
    try:
        model = install_front_end(model_cls(config_cls.from_dict(config_dict)))
    except RlspoofError:
        raise
    except Exception as exc:  # the stored values are the input here
        raise RlspoofError(f"{where}: invalid encoder config ({type(exc).__name__}): {exc}") from exc
    return prepare_encoder(model, cfg)


def apply_freeze(model: nn.Module, freeze: str) -> None:
    mode, n = parse_freeze(freeze)
    for p in model.parameters():
        p.requires_grad_(mode != "all")
    if mode in ("feature_extractor", "layers"):
        for p in model.feature_extractor.parameters():
            p.requires_grad_(False)
    if mode == "layers":
        layers = model.encoder.layers
        if n > len(layers):
            raise RlspoofError(
                f"freeze {freeze!r}: the encoder has only {len(layers)} transformer layers"
            )
        for layer in list(layers)[:n]:
            for p in layer.parameters():
                p.requires_grad_(False)
    # transformers' feature encoder marks its input as needing gradients while its own flag
    # says it trains, so a frozen CNN would still be back-propagated through every step
    # (about 5 % of a 300M SFT step, benchmarks/gpu_step.py); keep the flag with the weights.
    feature_extractor = getattr(model, "feature_extractor", None)
    if feature_extractor is not None and hasattr(feature_extractor, "_requires_grad"):
        feature_extractor._requires_grad = any(
            p.requires_grad for p in feature_extractor.parameters())


def apply_lora(model: nn.Module, lora: dict) -> nn.Module:
    from peft import LoraConfig, inject_adapter_in_model

    kwargs = {**DEFAULT_LORA, "target_modules": list(DEFAULT_LORA_TARGETS), **lora}
    try:
        lora_config = LoraConfig(**kwargs)
    except (TypeError, ValueError) as exc:
        raise RlspoofError(f"invalid encoder lora settings {lora!r}: {exc}") from exc
    try:
        # Injects lora_A / lora_B next to each target Linear and freezes everything else.
        return inject_adapter_in_model(lora_config, model)
    except ValueError as exc:
        raise RlspoofError(f"could not add LoRA to the encoder: {exc}") from exc


def enable_checkpointing(
    model: PreTrainedModel,
    kwargs: dict | None = None,
    every_n_layers: int = 1,
    offload: bool = False,
) -> None:
    """Activation (gradient) checkpointing on the encoder's layers. Default non-reentrant: it
    works when the inputs of a checkpointed block need no grad (frozen CNN)."""
    kwargs = kwargs or {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x name
        model.activation_checkpointing_enable(
            activation_checkpointing_kwargs=kwargs, every_n_layers=every_n_layers, offload=offload
        )
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def prepare_encoder(model: PreTrainedModel, cfg: EncoderConfig) -> PreTrainedModel:
    """Freeze, (LoRA), gradient checkpointing, LayerDrop off where hidden states are needed."""
    check_is_audio_encoder(model, cfg.name_or_path or f"preset {cfg.preset!r}")
    if cfg.layer != "last" and getattr(model.config, "layerdrop", 0.0):
        # Skipped layers would drop hidden states and break layer weighting / indexing.
        logger.info(
            "LayerDrop %.2f turned off: layer=%r needs every hidden state",
            model.config.layerdrop,
            cfg.layer,
        )
        model.config.layerdrop = 0.0
    num_hidden_states = model.config.num_hidden_layers + 1
    if isinstance(cfg.layer, int) and not -num_hidden_states <= cfg.layer < num_hidden_states:
        raise RlspoofError(
            f"encoder layer {cfg.layer} out of range: the encoder has {num_hidden_states} hidden "
            f"states (indices {-num_hidden_states}..{num_hidden_states - 1})"
        )
    apply_freeze(model, cfg.freeze)
    if cfg.lora is not None:
        model = apply_lora(model, cfg.lora)
    if cfg.gradient_checkpointing:
        if not getattr(model, "supports_gradient_checkpointing", False):
            raise RlspoofError(f"{type(model).__name__} does not support gradient checkpointing")
        enable_checkpointing(model)
    trainable, total = count_parameters(model)
    if not any(p.is_meta for p in model.parameters()):  # not a size estimate (meta device)
        logger.info(
            "encoder %s: %d / %d parameters trainable", type(model).__name__, trainable, total
        )
    return model


def load_encoder(cfg: EncoderConfig) -> tuple[PreTrainedModel, int, int]:
    """(model, hidden_size, num_hidden_states) for an ``EncoderConfig``.

    ``num_hidden_states`` = transformer layers + 1 (the projected CNN features).
    """
    if (cfg.name_or_path is None) == (cfg.preset is None):
        raise RlspoofError(
            "encoder: set exactly one of name_or_path (a checkpoint: Hub id or local folder) and "
            f"preset (random init: {', '.join(PRESETS)}); got name_or_path={cfg.name_or_path!r}, "
            f"preset={cfg.preset!r}"
        )
    if cfg.preset is not None:
        config = preset_config(cfg.preset, cfg.family)
        _, model_cls = family_classes(cfg.family or "wav2vec2")
        model = install_front_end(model_cls(config))
    else:
        if cfg.family is not None:
            logger.info("encoder family %r ignored: the checkpoint's config decides", cfg.family)
        model = load_checkpoint(cfg)
    model = prepare_encoder(model, cfg)
    return model, int(model.config.hidden_size), int(model.config.num_hidden_layers) + 1


def config_to_dict(config: PretrainedConfig) -> dict:
    """JSON-safe dict of a transformers config (what ``save_pretrained`` would write)."""
    return json.loads(config.to_json_string(use_diff=False))
