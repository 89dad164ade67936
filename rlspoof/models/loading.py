"""Loading an encoder checkpoint without trusting it: a local folder or a Hub id, safetensors
only unless pickles are allowed, its ``model_type`` one of rlspoof's families, its declared
size checked against its safetensors header before memory is taken, every weight loaded (or
an error naming what is missing) and finite."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError, safe_open
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    PretrainedConfig,
    PreTrainedModel,
)
from transformers.utils import cached_file

from rlspoof.errors import RlspoofError
from rlspoof.models.presets import ENCODER_FAMILIES

if TYPE_CHECKING:  # the loader reads an EncoderConfig; encoders imports the loader
    from rlspoof.models.encoders import EncoderConfig
from rlspoof.models.frontends import FRONT_END_KEY, install_front_end

#: Keys a checkpoint may lack without harm: the SpecAugment mask embedding (only used for
#: masking during pre-training / fine-tuning; absent from many exported checkpoints).
HARMLESS_MISSING_KEYS = (re.compile(r"(^|\.)masked_spec_embed$"),)


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


def load_checkpoint(cfg: EncoderConfig) -> PreTrainedModel:
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
    source = str(local) if is_local else name

    try:
        # Reads config.json only (a JSON file); nothing is imported.
        config_dict, _ = PretrainedConfig.get_config_dict(source)
    except (OSError, ValueError, KeyError) as exc:
        raise _not_found(name, is_local, exc) from exc
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
        raise _not_found(name, is_local, exc) from exc
    check_declared_size(build, config.to_dict(), files, where)
    if getattr(config, FRONT_END_KEY, None) is not None and not cfg.trust_remote_code:
        model = _load_with_front_end(build, files, name)
    else:
        model = _load_with_transformers(loader, source, config, cfg, is_local)
    check_finite(model.state_dict().items(), ", ".join(str(f) for f in files))
    return model


def _not_found(name: str, is_local: bool, exc: Exception) -> RlspoofError:
    """The error for a checkpoint that cannot be read: where it was looked for, and why."""
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if is_local:
        return RlspoofError(f"{name}: could not load the encoder checkpoint: {first}")
    return RlspoofError(
        f"{name}: encoder checkpoint could not be found locally (no such folder) or "
        f"downloaded from the Hugging Face Hub (offline, no network, or a wrong/private id): "
        f"{first}"
    )


def _load_with_transformers(loader: Any, source: str, config: PretrainedConfig,
                            cfg: EncoderConfig, is_local: bool) -> nn.Module:
    """``loader.from_pretrained`` (the family's class, or ``AutoModel`` with the caller's
    ``trust_remote_code``), every key loaded or an error naming what is missing."""
    name = str(cfg.name_or_path)
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
        raise _not_found(name, is_local, exc) from exc
    except Exception as exc:  # corrupt files (SafetensorError), shape mismatches, ...
        raise RlspoofError(
            f"{name}: the encoder's weights could not be loaded ({type(exc).__name__}): {exc}"
        ) from exc
    _check_loading_info(model, info, name)
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


def check_is_audio_encoder(model: nn.Module, where: str) -> None:
    if not hasattr(model, "_get_feat_extract_output_lengths"):
        mt = getattr(getattr(model, "config", None), "model_type", type(model).__name__)
        raise RlspoofError(
            f"{where}: model type {mt!r} is not a speech SSL encoder with a CNN front-end "
            f"(supported families: {', '.join(ENCODER_FAMILIES)})"
        )
