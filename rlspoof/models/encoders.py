"""SSL speech encoders (wav2vec 2.0 / XLS-R / MMS, HuBERT, WavLM, data2vec-audio) from
transformers, with freezing, gradient checkpointing and LoRA.

An encoder comes either from a checkpoint (``name_or_path``: a local ``save_pretrained``
folder or a Hub id) or from a named architecture with random weights (``preset``), never
silently from both: a checkpoint that cannot be found or whose weights do not all load is an
error naming it, not a randomly initialised model. Checkpoints are read with safetensors only
unless ``allow_pickle`` is set (``.bin`` files are pickles and can run code when loaded).

Nothing from a checkpoint runs and nothing is allocated on a checkpoint's word alone: its
``model_type`` must be one of ``ENCODER_FAMILIES`` (built with rlspoof's own classes; an
``auto_map`` in its config is never followed unless the *caller* sets ``trust_remote_code``,
which a checkpoint cannot), the size its config declares is checked against the tensors its
safetensors header lists before any memory is taken, and NaN/Inf weights are refused.

Families are a registry (``ENCODER_FAMILIES``: name = transformers ``model_type`` -> (config
class, model class)); presets too (``PRESETS``). Unknown names are errors listing valid ones.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
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
from transformers.utils import cached_file

from rlspoof.errors import RlspoofError
from rlspoof.models.frontends import FRONT_END_KEY, front_end_geometry, install_front_end

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

#: transformers ``model_type`` -> (config class, model class without a task head).
ENCODER_FAMILIES: dict[str, tuple[type[PretrainedConfig], type[PreTrainedModel]]] = {
    "wav2vec2": (Wav2Vec2Config, Wav2Vec2Model),
    "hubert": (HubertConfig, HubertModel),
    "wavlm": (WavLMConfig, WavLMModel),
    "data2vec-audio": (Data2VecAudioConfig, Data2VecAudioModel),
}

#: Keys a checkpoint may lack without harm: the SpecAugment mask embedding (only used for
#: masking during pre-training / fine-tuning; absent from many exported checkpoints).
HARMLESS_MISSING_KEYS = (re.compile(r"(^|\.)masked_spec_embed$"),)

DEFAULT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
DEFAULT_LORA = {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0}

#: ``freeze`` values; ``layers:N`` = feature extractor + the first N transformer layers.
FREEZE_MODES = ("none", "feature_extractor", "all", "layers:N")
LAYER_MODES = ("weighted", "last", "<int index into the hidden states>")

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


def _family_entry(family: str) -> tuple[type[PretrainedConfig], type[PreTrainedModel]]:
    if not isinstance(family, str) or family not in ENCODER_FAMILIES:
        raise RlspoofError(
            f"unknown encoder family {family!r} (valid: {', '.join(ENCODER_FAMILIES)})"
        )
    return ENCODER_FAMILIES[family]


def tiny_encoder_config(family: str = "wav2vec2", **overrides: Any) -> PretrainedConfig:
    """A tiny random-init config of ``family`` (hidden 64, 2 layers, 2 heads, 3 CNN layers)."""
    config_cls, _ = _family_entry(family)
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
    "base": lambda family, **o: _family_entry(family)[0](**o),
    "large": lambda family, **o: _family_entry(family)[0](**{**_LARGE, **o}),
    "xlsr-300m": lambda family, **o: _family_entry(family)[0](**{**_LARGE, **o}),
}


def preset_config(preset: str, family: str | None = None, **overrides: Any) -> PretrainedConfig:
    if preset not in PRESETS:
        raise RlspoofError(f"unknown encoder preset {preset!r} (valid: {', '.join(PRESETS)})")
    return PRESETS[preset](family or "wav2vec2", **overrides)


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
            _family_entry(self.family)
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


# --------------------------------------------------------------------------- loading

_LOCAL_PREFIXES = ("/", "./", "../", "~", ".\\", "..\\")
_SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
_PICKLE_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json")


def _looks_local(name: str) -> bool:
    """A path that cannot be a Hub id (``org/name``) is meant as a local folder."""
    return (
        name.startswith(_LOCAL_PREFIXES)
        or name.count("/") > 1
        or "\\" in name
        or (os.sep != "/" and os.sep in name)
    )


def _check_local_folder(path: Path, allow_pickle: bool) -> None:
    if not path.is_dir():
        raise RlspoofError(f"{path}: encoder checkpoint folder is not a directory")
    if not (path / "config.json").is_file():
        raise RlspoofError(f"{path}: no config.json; not a transformers save_pretrained folder")
    has_safe = any((path / f).is_file() for f in _SAFE_WEIGHTS)
    has_pickle = any((path / f).is_file() for f in _PICKLE_WEIGHTS)
    if has_safe or (has_pickle and allow_pickle):
        return
    if has_pickle:
        raise RlspoofError(
            f"{path}: only pickled weights (pytorch_model.bin) found; pickles can execute code "
            "when loaded. Convert them to model.safetensors, or set allow_pickle: true if you "
            "trust this checkpoint"
        )
    raise RlspoofError(f"{path}: no model weights (model.safetensors) in the folder")


def _check_loading_info(model: nn.Module, info: dict, where: str) -> None:
    missing = sorted(
        k
        for k in info.get("missing_keys", ())
        if not any(p.search(k) for p in HARMLESS_MISSING_KEYS)
    )
    problems = []
    if missing:
        shown = ", ".join(missing[:8]) + (
            f", ... ({len(missing)} in all)" if len(missing) > 8 else ""
        )
        problems.append(f"weights missing from the checkpoint: {shown}")
    if info.get("mismatched_keys"):
        problems.append(
            f"weights with the wrong shape: {sorted(map(str, info['mismatched_keys']))[:8]}"
        )
    if info.get("error_msgs"):
        problems.append("; ".join(map(str, info["error_msgs"]))[:500])
    if problems:
        raise RlspoofError(
            f"{where}: the encoder's weights did not load completely (refusing a partly random "
            f"model): " + "; ".join(problems)
        )


def supported_family(
    model_type: Any, where: str
) -> tuple[type[PretrainedConfig], type[PreTrainedModel]]:
    """(config class, model class) of a checkpoint's ``model_type``. Only the audio encoder
    families rlspoof builds with its own classes are accepted: any other type would be built
    by transformers' auto classes, the route to a checkpoint's own code (``auto_map``)."""
    if not isinstance(model_type, str) or model_type not in ENCODER_FAMILIES:
        raise RlspoofError(
            f"{where}: model_type {model_type!r} is not an audio encoder family rlspoof supports "
            f"(supported: {', '.join(ENCODER_FAMILIES)})"
        )
    return ENCODER_FAMILIES[model_type]


# A config may declare a little more than its weights hold (the harmless missing keys above,
# rounding); anything beyond this is a config that lies about the model's size.
_SIZE_SLACK_FACTOR = 1.25
_SIZE_SLACK = 1_000_000


def weights_shapes(files: list[Path]) -> dict[str, tuple[int, ...]]:
    """Tensor name -> shape from safetensors headers (read via ``safe_open``, which maps the
    file and checks the header against its size; no tensor is loaded)."""
    shapes: dict[str, tuple[int, ...]] = {}
    for path in files:
        try:
            with safe_open(str(path), framework="pt") as f:
                for key in f.keys():
                    shapes[key] = tuple(f.get_slice(key).get_shape())
        except (SafetensorError, OSError) as exc:
            raise RlspoofError(f"{path}: unreadable safetensors file: {exc}") from exc
    return shapes


def check_declared_size(
    build: Callable[[], nn.Module], config: dict, files: list[Path], where: str
) -> None:
    """Refuse a config that declares far more parameters than its weights files hold, before
    anything is allocated: a config.json is a few bytes, but "hidden size 65536, 48 layers"
    would take tens of GiB before a single weight is compared.

    ``build`` makes the module that ``config`` (the encoder's config dict) describes; it runs
    on the ``meta`` device (shapes, no memory). Safetensors files are sized by their headers;
    other (pickled) files by their length in bytes, an upper bound on the number of values they
    can hold. A layer count beyond the number of tensors held is refused first, so that a
    config cannot make even the meta build create millions of (empty) modules. Errors from
    building are config errors.
    """
    safe = [f for f in files if f.suffix == ".safetensors"]
    shapes = weights_shapes(safe)
    held = sum(math.prod(shape) for shape in shapes.values())
    held += sum(f.stat().st_size for f in files if f.suffix != ".safetensors")
    names = ", ".join(str(f) for f in files)
    layers = config.get("num_hidden_layers", 0)
    if not isinstance(layers, int) or layers < 0 or (shapes and layers > len(shapes)):
        raise RlspoofError(
            f"{where}: the config declares num_hidden_layers={layers!r}, but {names} holds only "
            f"{len(shapes)} tensors"
        )
    try:
        with torch.device("meta"):
            module = build()
    except RlspoofError:
        raise
    except Exception as exc:  # the config's values are the input here: invalid ones end here
        raise RlspoofError(
            f"{where}: invalid encoder config ({type(exc).__name__}): {exc}"
        ) from exc
    need = sum(t.numel() for t in module.parameters()) + sum(t.numel() for t in module.buffers())
    if need > _SIZE_SLACK_FACTOR * held + _SIZE_SLACK:
        raise RlspoofError(
            f"{where}: the config declares a model of {need:,} parameters "
            f"({need * 4 / 2**30:.1f} GiB in float32; hidden_size="
            f"{config.get('hidden_size', '?')}, num_hidden_layers={layers}) but {names} "
            f"holds only {held:,}; refusing to allocate it"
        )


def check_finite(tensors: Any, where: str) -> None:
    """Refuse NaN/Inf weights (``tensors``: name -> tensor): they give NaN scores, which would
    otherwise be reported as decisions."""
    bad = [
        name
        for name, t in tensors
        if t.is_floating_point() and t.device.type != "meta" and not torch.isfinite(t).all()
    ]
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise RlspoofError(f"{where}: tensor {bad[0]!r}{more} holds NaN or Inf values")


def _weight_files(source: str, is_local: bool, allow_pickle: bool) -> list[Path]:
    """The local weights files ``from_pretrained`` will read (downloaded first for a Hub id),
    so that their headers can be checked before the model is built."""
    names = _SAFE_WEIGHTS + (_PICKLE_WEIGHTS if allow_pickle else ())
    for name in names:
        if is_local:
            found = Path(source) / name
            found = found if found.is_file() else None
        else:
            hit = cached_file(source, name, _raise_exceptions_for_missing_entries=False)
            found = Path(hit) if hit else None
        if found is None:
            continue
        if not name.endswith(".index.json"):
            return [found]
        try:
            index = json.loads(found.read_text(encoding="utf-8"))
            shards = sorted(set(index["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RlspoofError(f"{found}: unreadable weights index: {exc}") from exc
        files = []
        for shard in shards:
            if not isinstance(shard, str) or Path(shard).name != shard:
                raise RlspoofError(f"{found}: shard {shard!r} is not a file name in the folder")
            if is_local:
                files.append(found.parent / shard)
            else:
                files.append(Path(cached_file(source, shard)))
        return files
    raise RlspoofError(
        f"{source}: no safetensors weights (model.safetensors)"
        + ("" if allow_pickle else "; pickled .bin weights are read only with allow_pickle: true")
    )


def _load_checkpoint(cfg: EncoderConfig) -> PreTrainedModel:
    """Load an encoder checkpoint: family check, size check, then the weights (checked finite).

    With ``trust_remote_code`` off (the default; only the caller can turn it on) the model is
    built with rlspoof's own family classes, which never look at an ``auto_map``.
    """
    name = str(cfg.name_or_path)
    local = Path(name).expanduser()
    is_local = local.exists() or _looks_local(name)
    if is_local:
        if not local.exists():
            raise RlspoofError(f"{name}: encoder checkpoint folder does not exist")
        _check_local_folder(local, cfg.allow_pickle)
        source = str(local)
    else:
        source = name

    def not_found(exc: Exception) -> RlspoofError:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if is_local:
            return RlspoofError(f"{name}: could not load the encoder checkpoint: {first}")
        return RlspoofError(
            f"{name}: encoder checkpoint could not be found locally (no such folder) or "
            f"downloaded from the Hugging Face Hub (offline, no network, or a wrong/private id): "
            f"{first}"
        )

    try:
        # Reads config.json only (a JSON file); nothing is imported.
        config_dict, _ = PretrainedConfig.get_config_dict(source)
    except (OSError, ValueError, KeyError) as exc:
        raise not_found(exc) from exc
    where = f"{name} (config.json)"
    if not isinstance(config_dict, dict):
        raise RlspoofError(f"{where}: not a transformers config (a JSON object)")
    config_cls, model_cls = supported_family(config_dict.get("model_type"), where)
    try:
        if cfg.trust_remote_code:  # the caller asked for the checkpoint's own code
            config = AutoConfig.from_pretrained(source, trust_remote_code=True)
            loader: Any = AutoModel

            def build() -> nn.Module:
                return AutoModel.from_config(config, trust_remote_code=True)
        else:
            config = config_cls.from_pretrained(source)
            loader = model_cls

            def build() -> nn.Module:
                return install_front_end(model_cls(config))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RlspoofError(f"{where}: invalid encoder config: {exc}") from exc
    try:
        files = _weight_files(source, is_local, cfg.allow_pickle)
    except OSError as exc:
        raise not_found(exc) from exc
    check_declared_size(build, config.to_dict(), files, where)
    if getattr(config, FRONT_END_KEY, None) is not None and not cfg.trust_remote_code:
        model = _load_with_front_end(build, files, name)
    else:
        kwargs = {"trust_remote_code": True} if cfg.trust_remote_code else {}
        try:
            model, info = loader.from_pretrained(
                source,
                config=config,
                # allow_pickle: prefer safetensors, fall back to .bin; otherwise safetensors only.
                use_safetensors=None if cfg.allow_pickle else True,
                dtype=torch.float32,
                output_loading_info=True,
                **kwargs,
            )
        except OSError as exc:
            raise not_found(exc) from exc
        except Exception as exc:  # corrupt files (SafetensorError), shape mismatches, ...
            raise RlspoofError(
                f"{name}: the encoder's weights could not be loaded ({type(exc).__name__}): {exc}"
            ) from exc
        _check_loading_info(model, info, name)
    check_finite(model.state_dict().items(), ", ".join(str(f) for f in files))
    return model


def _load_with_front_end(build: Callable[[], nn.Module], files: list[Path], name: str) -> nn.Module:
    """An encoder with an rlspoof front end: ``from_pretrained`` would build the family's CNN
    and drop the front end's weights as unexpected, so the model is built here (front end
    installed) and its safetensors state loaded with the same missing-weight checks."""
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for path in files:
        if path.suffix != ".safetensors":
            raise RlspoofError(f"{path}: an encoder with {FRONT_END_KEY} loads from safetensors only")
        try:
            state.update(load_file(str(path)))
        except (SafetensorError, OSError) as exc:
            raise RlspoofError(f"{path}: unreadable safetensors file: {exc}") from exc
    model = build()
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shapes that do not match the config
        raise RlspoofError(f"{name}: the encoder's weights could not be loaded: "
                           f"{str(exc).splitlines()[-1].strip()}") from None
    _check_loading_info(model, {"missing_keys": result.missing_keys}, name)
    return model.eval()


def _check_is_audio_encoder(model: nn.Module, where: str) -> None:
    if not hasattr(model, "_get_feat_extract_output_lengths"):
        mt = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
        raise RlspoofError(
            f"{where}: model type {mt!r} is not a speech SSL encoder with a CNN front-end "
            f"(supported families: {', '.join(ENCODER_FAMILIES)})"
        )


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
    _check_is_audio_encoder(model, cfg.name_or_path or f"preset {cfg.preset!r}")
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
        _, model_cls = _family_entry(cfg.family or "wav2vec2")
        model = install_front_end(model_cls(config))
    else:
        if cfg.family is not None:
            logger.info("encoder family %r ignored: the checkpoint's config decides", cfg.family)
        model = _load_checkpoint(cfg)
    model = prepare_encoder(model, cfg)
    return model, int(model.config.hidden_size), int(model.config.num_hidden_layers) + 1


def config_to_dict(config: PretrainedConfig) -> dict:
    """JSON-safe dict of a transformers config (what ``save_pretrained`` would write)."""
    return json.loads(config.to_json_string(use_diff=False))
