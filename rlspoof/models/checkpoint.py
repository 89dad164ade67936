"""A saved policy folder: what it holds, how it is written, and how it is read without trusting it.

The folder (``SpoofPolicy.save_pretrained``), all readable without unpickling anything:

* ``config.json``: ``rlspoof_format``, ``rlspoof_version``, label map, sample rate, crop
  length, the ``PolicyConfig`` (``policy``), the encoder's own transformers config
  (``encoder``: ``model_type`` + config dict) and free-form ``metadata`` (e.g. ``recipe``).
* ``model.safetensors``: the full state dict of the policy (encoder + layer weights + pooling
  + head). With LoRA the adapters are saved **unmerged** (``...base_layer.weight`` plus
  ``...lora_A/lora_B``), so training can continue; ``from_pretrained`` re-injects LoRA from
  the stored config before loading.

``from_pretrained`` rebuilds the encoder from the stored config (random init, offline, never
from the Hub or the original checkpoint) and then loads every key strictly. A policy folder is
data, never code: the encoder must be a family rlspoof builds with its own classes, a stored
``trust_remote_code`` is ignored (and no longer written), the size the config declares is
checked against the safetensors header before anything is allocated, and NaN/Inf weights are
refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from rlspoof import __version__
from rlspoof.data.manifest import LABEL2ID
from rlspoof.errors import RlspoofError
from rlspoof.models.encoders import check_finite, config_to_dict

if TYPE_CHECKING:  # the policy saves and loads itself through this module
    from rlspoof.models.policy import SpoofPolicy

__all__ = ["CONFIG_NAME", "POLICY_FORMAT", "WEIGHTS_NAME", "is_policy_folder", "load_policy_weights",
           "policy_config_json", "read_policy_folder", "write_policy"]

POLICY_FORMAT = "rlspoof-spoof-policy"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
PICKLE_SUFFIXES = {".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"}


def is_policy_folder(path: str | Path) -> bool:
    """Whether ``path`` holds a saved rlspoof policy (rather than an encoder to wrap)."""
    config = Path(path) / CONFIG_NAME
    if not config.is_file():
        return False
    try:
        return json.loads(config.read_text()).get("rlspoof_format") == POLICY_FORMAT
    except (OSError, json.JSONDecodeError):
        return False



def policy_config_json(policy: SpoofPolicy, metadata: dict) -> dict:
    """The ``config.json`` content (see the module docstring)."""
    enc_cfg = policy.encoder.config
    return {
        "rlspoof_format": POLICY_FORMAT,
        "rlspoof_version": __version__,
        "label2id": dict(LABEL2ID),
        "id2label": {str(i): label for label, i in LABEL2ID.items()},
        "score": "logit[bonafide] - logit[spoof] (log-odds; higher = more bonafide)",
        "sample_rate": policy.sample_rate,
        "crop_length": policy.crop_length,
        "weights": (
            f"{WEIGHTS_NAME}: full state dict"
            + ("; LoRA adapters unmerged" if policy.config.encoder.lora is not None else "")
        ),
        # trust_remote_code is the loading user's decision, never the folder's: not saved.
        "policy": _without_trust(policy.config.to_dict()),
        "encoder": {"model_type": enc_cfg.model_type, "config": config_to_dict(enc_cfg)},
        "metadata": dict(metadata),
    }


def _without_trust(policy_dict: dict) -> dict:
    """The policy config as saved: without the encoder's ``trust_remote_code``."""
    encoder = {k: v for k, v in policy_dict["encoder"].items() if k != "trust_remote_code"}
    return {**policy_dict, "encoder": encoder}


def write_policy(save_directory: str | Path, config: dict,
                 state_dict: dict[str, torch.Tensor]) -> Path:
    """``config.json`` and ``model.safetensors`` in ``save_directory``; returns the folder."""
    folder = Path(save_directory)
    folder.mkdir(parents=True, exist_ok=True)
    try:
        text = json.dumps(config, indent=2)
    except TypeError as exc:
        raise RlspoofError(f"{folder}: metadata is not JSON-serialisable: {exc}") from exc
    state, seen = {}, set()
    for key, tensor in state_dict.items():
        t = tensor.detach().to("cpu").contiguous()
        ptr = (t.untyped_storage().data_ptr(), t.storage_offset())
        if ptr in seen:  # safetensors refuses tensors that share memory
            t = t.clone()
        seen.add(ptr)
        state[key] = t
    save_file(state, str(folder / WEIGHTS_NAME),
              metadata={"format": "pt", "rlspoof_version": __version__})
    (folder / CONFIG_NAME).write_text(text + "\n", encoding="utf-8")
    return folder


def read_policy_folder(folder: str | Path) -> tuple[dict, Path, Path]:
    """``(config.json's content, its path, the weights' path)`` of a policy folder, or an error
    naming what is wrong: no folder, pickled weights only, no config, not an rlspoof policy, or
    another label map."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RlspoofError(f"{folder}: policy folder does not exist")
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        pickles = sorted(p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            raise RlspoofError(
                f"{folder}: only pickled weights ({', '.join(pickles)}), no {WEIGHTS_NAME}; "
                "rlspoof never unpickles checkpoints (pickles can execute code)"
            )
        raise RlspoofError(f"{folder}: no {WEIGHTS_NAME} in the policy folder")
    config_path = folder / CONFIG_NAME
    if not config_path.is_file():
        raise RlspoofError(f"{folder}: no {CONFIG_NAME} in the policy folder")
    try:
        data = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RlspoofError(f"{config_path}: unreadable config: {exc}") from exc
    if not isinstance(data, dict) or data.get("rlspoof_format") != POLICY_FORMAT:
        raise RlspoofError(
            f"{folder}: not an rlspoof policy checkpoint (config.json lacks "
            f"rlspoof_format={POLICY_FORMAT!r}); to start from a transformers encoder "
            "checkpoint, set encoder.name_or_path instead"
        )
    if data.get("label2id", dict(LABEL2ID)) != dict(LABEL2ID):
        raise RlspoofError(
            f"{folder}: label map {data.get('label2id')} differs from rlspoof's {dict(LABEL2ID)}"
        )
    return data, config_path, weights


def load_policy_weights(policy: torch.nn.Module, weights: Path) -> None:
    """Every tensor of ``weights`` into ``policy``, strictly: unreadable files, NaN/Inf values,
    shape mismatches and missing or unexpected keys are errors naming the folder."""
    folder = weights.parent
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as exc:
        raise RlspoofError(f"{weights}: unreadable safetensors file: {exc}") from exc
    check_finite(state.items(), str(weights))
    try:
        result = policy.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches: one line per tensor; show the first
        lines = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
        first = lines[0] if lines else str(exc)
        more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
        raise RlspoofError(f"{folder}: weights do not fit the stored config: {first}{more}") from exc
    problems = []
    if result.missing_keys:
        problems.append(f"missing {result.missing_keys[:8]} ({len(result.missing_keys)} in all)")
    if result.unexpected_keys:
        problems.append(
            f"unexpected {result.unexpected_keys[:8]} ({len(result.unexpected_keys)} in all)")
    if problems:
        raise RlspoofError(f"{folder}: weights do not match the policy: " + "; ".join(problems))
