"""Convert fairseq wav2vec 2.0 / XLS-R / MMS / HuBERT checkpoints into transformers encoder folders.

Research recipes start from fairseq files (SSL_Anti-spoofing's ``xlsr2_300m.pt``, the
AntiDeepfake and GRPO-paper code); rlspoof loads encoders the transformers way. This module
turns such a ``.pt`` into a ``save_pretrained`` folder (safetensors) that any recipe can name
as ``model_name_or_path``, without fairseq: the checkpoint is read with
``torch.load(weights_only=True)``, which builds tensors and plain containers and never runs
code. Besides the built-ins it admits only inert data types that fairseq writes into its
files: ``argparse.Namespace`` (the ``args`` of pre-hydra checkpoints) and numpy scalars (in the
training state). Anything else (an omegaconf object, a fairseq class) is refused with the type
named: unpickling it would run code from the file.

transformers' own conversion scripts import fairseq and build its model to read the weights;
here the key layout is mapped directly (``_KEY_RULES``), so every key must be either mapped,
a known pre-training/fine-tuning head that an encoder does not keep (``_DROPPED``), or an error
that lists it; and every encoder weight must be filled, or an error lists what is missing.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import PretrainedConfig, PreTrainedModel, Wav2Vec2FeatureExtractor

from rlspoof.errors import RlspoofError
from rlspoof.models.loading import check_finite
from rlspoof.models.presets import ENCODER_FAMILIES

#: fairseq model names (``cfg.model._name`` / ``args.arch``) -> transformers family.
#: ``*_ctc`` / ``*_seq2seq`` are fine-tuned models: the encoder sits under ``w2v_encoder.w2v_model``.
FAIRSEQ_FAMILIES = {
    "wav2vec2": "wav2vec2", "wav2vec_ctc": "wav2vec2", "wav2vec_seq2seq": "wav2vec2",
    "hubert": "hubert", "hubert_ctc": "hubert", "hubert_seq2seq": "hubert",
}
FINETUNED_PREFIX = "w2v_encoder.w2v_model."

#: fairseq's ``Wav2Vec2Config`` / ``HubertConfig`` defaults for the fields read here: an old
#: checkpoint's ``args`` omits fields that were added (at their default) later.
FAIRSEQ_DEFAULTS: dict[str, Any] = {
    "extractor_mode": "default", "encoder_layers": 12, "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072, "encoder_attention_heads": 12, "activation_fn": "gelu",
    "layer_type": "transformer", "dropout": 0.1, "attention_dropout": 0.1,
    "activation_dropout": 0.0, "encoder_layerdrop": 0.0, "dropout_input": 0.0,
    "layer_norm_first": False, "conv_bias": False, "conv_pos": 128, "conv_pos_groups": 16,
    "pos_conv_depth": 1, "conv_pos_batch_norm": False,
    "conv_feature_layers": "[(512, 10, 5)] + [(512, 3, 2)] * 4 + [(512, 2, 2)] * 2",
}

#: fairseq activation names -> transformers ``hidden_act`` (fairseq's gelu is the exact erf form;
#: its gelu_accurate / gelu_fast are the tanh approximation).
ACTIVATIONS = {"gelu": "gelu", "relu": "relu", "gelu_accurate": "gelu_pytorch_tanh",
               "gelu_fast": "gelu_pytorch_tanh", "tanh": "tanh", "linear": "linear", "swish": "swish"}

#: (fairseq key pattern, transformers key template). The pos-conv weight norm is named by its
#: old ``weight_g``/``weight_v`` attributes here, renamed to the model's own names on load.
_KEY_RULES = [
    (r"feature_extractor\.conv_layers\.(\d+)\.0\.(weight|bias)", r"feature_extractor.conv_layers.\1.conv.\2"),
    # extractor_mode=layer_norm: Sequential(TransposeLast, LayerNorm, TransposeLast) at index 2
    (r"feature_extractor\.conv_layers\.(\d+)\.2\.1\.(weight|bias)", r"feature_extractor.conv_layers.\1.layer_norm.\2"),
    # extractor_mode=default: a GroupNorm at index 2 of the first block only
    (r"feature_extractor\.conv_layers\.0\.2\.(weight|bias)", r"feature_extractor.conv_layers.0.layer_norm.\1"),
    (r"layer_norm\.(weight|bias)", r"feature_projection.layer_norm.\1"),
    (r"post_extract_proj\.(weight|bias)", r"feature_projection.projection.\1"),
    (r"mask_emb", r"masked_spec_embed"),
    (r"encoder\.pos_conv\.0\.(weight_g|weight_v|bias)", r"encoder.pos_conv_embed.conv.\1"),
    (r"encoder\.layers\.(\d+)\.self_attn\.(k|q|v|out)_proj\.(weight|bias)", r"encoder.layers.\1.attention.\2_proj.\3"),
    (r"encoder\.layers\.(\d+)\.self_attn_layer_norm\.(weight|bias)", r"encoder.layers.\1.layer_norm.\2"),
    (r"encoder\.layers\.(\d+)\.fc1\.(weight|bias)", r"encoder.layers.\1.feed_forward.intermediate_dense.\2"),
    (r"encoder\.layers\.(\d+)\.fc2\.(weight|bias)", r"encoder.layers.\1.feed_forward.output_dense.\2"),
    (r"encoder\.layers\.(\d+)\.final_layer_norm\.(weight|bias)", r"encoder.layers.\1.final_layer_norm.\2"),
    (r"encoder\.layer_norm\.(weight|bias)", r"encoder.layer_norm.\1"),
]
_KEY_RULES_COMPILED = [(re.compile(pattern + r"$"), template) for pattern, template in _KEY_RULES]

#: Heads of pre-training (quantiser, projections, HuBERT's label embeddings) and of ASR
#: fine-tuning (the CTC projection, a seq2seq decoder): not part of the encoder, dropped.
_DROPPED = re.compile(r"(quantizer|input_quantizer|project_q|project_inp|final_proj|target_glu)\..*"
                      r"|label_embs_concat|w2v_encoder\.proj\..*|decoder\..*")

#: Inert types fairseq writes into checkpoints, admitted by the weights-only unpickler (see the
#: module docstring). numpy 1 pickles name the scalar constructor ``numpy.core.multiarray``.
_NUMPY_DTYPES = [getattr(np.dtypes, name) for name in (
    "Float64DType", "Float32DType", "Float16DType", "Int64DType", "Int32DType", "BoolDType")]
SAFE_GLOBALS: list[Any] = [
    argparse.Namespace, np.dtype, *_NUMPY_DTYPES,
    np._core.multiarray.scalar, (np._core.multiarray.scalar, "numpy.core.multiarray.scalar"),
]


@dataclass
class FairseqConversion:
    """What ``convert_fairseq`` wrote, for the CLI's report and the folder's README."""

    folder: Path
    family: str
    config: PretrainedConfig
    normalize: bool
    finetuned: bool
    dropped: list[str] = field(default_factory=list)
    sha256: str = ""


def _get(cfg: Any, name: str, default: Any = None) -> Any:
    """A field of a config that is a dict (hydra-era ``cfg``) or a Namespace (older ``args``)."""
    value = cfg.get(name, default) if isinstance(cfg, dict) else getattr(cfg, name, default)
    return default if value is None else value


def read_checkpoint(path: Path) -> dict:
    """The checkpoint's top-level dict, unpickled with ``weights_only=True`` (no code runs)."""
    if not path.is_file():
        raise RlspoofError(f"{path}: no such checkpoint file")
    try:
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        what = f"it needs {found.group(1)}" if found else str(exc).splitlines()[0]
        raise RlspoofError(f"{path}: refusing to load it: {what}, which only a full unpickle (one "
                           "that can run code from the file) could rebuild. rlspoof reads fairseq "
                           "checkpoints with torch.load(weights_only=True) only; re-save the "
                           "checkpoint's 'model' and 'cfg' as plain dicts in a trusted environment "
                           "to convert it") from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:
        raise RlspoofError(f"{path}: not a readable PyTorch checkpoint: {exc}") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise RlspoofError(f"{path}: not a fairseq checkpoint (no 'model' state dict)")
    return checkpoint


def encoder_config(checkpoint: dict, where: Path) -> tuple[str, Any, Any, bool]:
    """(family, model cfg, task cfg, fine-tuned) of the encoder inside a fairseq checkpoint.

    A fine-tuned checkpoint keeps its pre-trained encoder's config in ``w2v_args``."""
    cfg = checkpoint.get("cfg")
    if cfg is not None:
        model, task = _get(cfg, "model"), _get(cfg, "task", {})
    elif checkpoint.get("args") is not None:
        model = task = checkpoint["args"]
    else:
        raise RlspoofError(f"{where}: the checkpoint has no config ('cfg' or 'args')")
    name = _get(model, "_name") or _get(model, "arch")
    if name not in FAIRSEQ_FAMILIES:
        raise RlspoofError(f"{where}: fairseq model {name!r} is not one rlspoof converts "
                           f"(supported: {', '.join(FAIRSEQ_FAMILIES)})")
    finetuned = name.endswith(("_ctc", "_seq2seq"))
    if finetuned:  # the fine-tuning task's ``normalize`` is the pre-training one (fairseq checks)
        inner = _get(model, "w2v_args")
        if inner is None:
            raise RlspoofError(f"{where}: this fine-tuned checkpoint does not include its encoder's "
                               f"config (w2v_args is empty); convert the pre-trained checkpoint it "
                               f"started from ({_get(model, 'w2v_path', 'w2v_path')}) instead")
        model = _get(inner, "model") if isinstance(inner, dict) else inner
    return FAIRSEQ_FAMILIES[name], model, task, finetuned


def conv_layers(spec: str, where: Path) -> list[tuple[int, int, int]]:
    """fairseq's ``conv_feature_layers`` string, e.g. ``"[(512, 10, 5)] + [(512, 3, 2)] * 4"``.

    Evaluated over the syntax tree (lists, tuples, integers, ``+`` and ``*`` only): it comes
    from the file, and ``eval`` would run whatever it says."""
    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [value(item) for item in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mult)):
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Mult) and not (isinstance(right, int) and 0 <= right <= 1000):
                raise ValueError("a list may only be repeated 0-1000 times")
            return left + right if isinstance(node.op, ast.Add) else left * right
        raise ValueError(ast.dump(node))

    try:
        layers = value(ast.parse(str(spec), mode="eval").body)
        if not layers or not all(isinstance(t, tuple) and len(t) == 3 for t in layers):
            raise ValueError("not a list of (dim, kernel, stride)")
    except (SyntaxError, ValueError, TypeError) as exc:
        raise RlspoofError(f"{where}: cannot read conv_feature_layers {spec!r}: {exc}") from None
    return layers


def hf_config(family: str, model: Any, where: Path) -> PretrainedConfig:
    """The transformers config of the same architecture; what it cannot express is an error."""
    def get(name: str) -> Any:
        return _get(model, name, FAIRSEQ_DEFAULTS[name])

    unsupported = [problem for problem, present in (
        (f"layer_type={get('layer_type')!r} (only 'transformer')", get("layer_type") != "transformer"),
        (f"pos_conv_depth={get('pos_conv_depth')} (only 1)", get("pos_conv_depth") != 1),
        ("conv_pos_batch_norm", bool(get("conv_pos_batch_norm"))),
        (f"activation_fn={get('activation_fn')!r}", get("activation_fn") not in ACTIVATIONS),
    ) if present]
    if unsupported:
        raise RlspoofError(f"{where}: the checkpoint's architecture has what transformers' {family} "
                           f"model does not: {', '.join(unsupported)}")
    layers = conv_layers(get("conv_feature_layers"), where)
    config_cls, _ = ENCODER_FAMILIES[family]
    return config_cls(
        conv_dim=[d for d, _, _ in layers], conv_kernel=[k for _, k, _ in layers],
        conv_stride=[s for _, _, s in layers], conv_bias=bool(get("conv_bias")),
        feat_extract_norm="layer" if get("extractor_mode") == "layer_norm" else "group",
        hidden_size=get("encoder_embed_dim"), intermediate_size=get("encoder_ffn_embed_dim"),
        num_hidden_layers=get("encoder_layers"), num_attention_heads=get("encoder_attention_heads"),
        hidden_act=ACTIVATIONS[get("activation_fn")], do_stable_layer_norm=bool(get("layer_norm_first")),
        num_conv_pos_embeddings=get("conv_pos"), num_conv_pos_embedding_groups=get("conv_pos_groups"),
        hidden_dropout=get("dropout"), attention_dropout=get("attention_dropout"),
        activation_dropout=get("activation_dropout"), feat_proj_dropout=get("dropout_input"),
        layerdrop=get("encoder_layerdrop"), layer_norm_eps=1e-5,  # fairseq's LayerNorm eps
    )


def _listed(keys: list[str], most: int = 12) -> str:
    return ", ".join(keys[:most]) + (", ..." if len(keys) > most else "")


def map_keys(state: dict[str, torch.Tensor], where: Path) -> tuple[dict[str, torch.Tensor], list[str]]:
    """fairseq keys -> transformers keys (weight-norm names still ``weight_g``/``weight_v``), and
    the dropped head keys. A key neither mapped nor a known head is an error listing them all."""
    if any(key.startswith(FINETUNED_PREFIX) for key in state):
        state = {key.removeprefix(FINETUNED_PREFIX): value for key, value in state.items()}
    mapped, dropped, unknown = {}, [], []
    for key, value in state.items():
        target = next((rule.sub(template, key) for rule, template in _KEY_RULES_COMPILED
                       if rule.match(key)), None)
        if target is not None:
            mapped[target] = value
        elif _DROPPED.fullmatch(key):
            dropped.append(key)
        else:
            unknown.append(key)
    if unknown:
        raise RlspoofError(f"{where}: {len(unknown)} weights rlspoof does not know where to put: "
                           f"{_listed(sorted(unknown))}")
    return mapped, dropped


def load_mapped(model: PreTrainedModel, mapped: dict[str, torch.Tensor], where: Path) -> None:
    """Fill every weight of ``model`` from ``mapped``; missing or mis-shaped ones are an error."""
    expected = model.state_dict()
    norm_names = {"weight_g": "parametrizations.weight.original0", "weight_v": "parametrizations.weight.original1"}
    renamed = {}
    for key, value in mapped.items():
        stem, _, last = key.rpartition(".")
        if last in norm_names and key not in expected:
            key = f"{stem}.{norm_names[last]}"
        renamed[key] = value.float()
    if "masked_spec_embed" in expected and "masked_spec_embed" not in renamed:
        renamed["masked_spec_embed"] = expected["masked_spec_embed"]  # only SpecAugment uses it
    missing = sorted(set(expected) - set(renamed))
    extra = sorted(set(renamed) - set(expected))
    shapes = sorted(f"{k} {tuple(renamed[k].shape)} vs {tuple(v.shape)}"
                    for k, v in expected.items() if k in renamed and renamed[k].shape != v.shape)
    problems = [f"{label}: {_listed(items)}"
                for label, items in (("missing from the checkpoint", missing),
                                     ("not in the transformers model", extra),
                                     ("with another shape than its config says", shapes)) if items]
    if problems:
        raise RlspoofError(f"{where}: the weights do not fill the encoder its config describes; "
                           + "; ".join(problems))
    check_finite(renamed.items(), str(where))
    model.load_state_dict(renamed, strict=True)


def convert_fairseq(checkpoint_path: Path, out: Path) -> FairseqConversion:
    """Write ``out``: config.json, model.safetensors, preprocessor_config.json and a README."""
    checkpoint = read_checkpoint(checkpoint_path)
    family, model_cfg, task_cfg, finetuned = encoder_config(checkpoint, checkpoint_path)
    config = hf_config(family, model_cfg, checkpoint_path)
    mapped, dropped = map_keys(checkpoint["model"], checkpoint_path)
    _, model_cls = ENCODER_FAMILIES[family]
    model = model_cls(config).eval()
    load_mapped(model, mapped, checkpoint_path)
    # fairseq normalises waveforms in the task (``normalize``), not the model: layer-norm
    # extractors (large / XLS-R / MMS) are trained on normalised input.
    normalize = bool(_get(task_cfg, "normalize", config.feat_extract_norm == "layer"))
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=int(_get(task_cfg, "sample_rate", 16000)),
                             padding_value=0.0, do_normalize=normalize,
                             return_attention_mask=config.feat_extract_norm == "layer").save_pretrained(out)
    digest = hashlib.sha256()
    with checkpoint_path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    result = FairseqConversion(out, family, config, normalize, finetuned, dropped, digest.hexdigest())
    (out / "README.md").write_text(conversion_card(result, checkpoint_path), encoding="utf-8")
    return result


def conversion_card(result: FairseqConversion, source: Path) -> str:
    """The folder's README: where the weights came from and how to use them."""
    cfg = result.config
    facts = {
        "source": f"{source.name} (sha256 {result.sha256})",
        "family": f"{result.family} ({cfg.num_hidden_layers} layers, hidden {cfg.hidden_size}, "
                  f"{'stable' if cfg.do_stable_layer_norm else 'post'}-layer-norm transformer, "
                  f"{cfg.feat_extract_norm}-norm CNN)",
        "fine-tuned checkpoint": "yes (its ASR head dropped)" if result.finetuned else "no",
        "dropped heads": ", ".join(sorted({k.split(".")[0] for k in result.dropped})) or "none",
        "normalised input": "yes: set normalize_input: true in a recipe" if result.normalize else "no",
    }
    lines = [f"- **{k}**: {v}" for k, v in facts.items()]
    return ("# fairseq encoder converted by rlspoof\n\n" + "\n".join(lines) + "\n\n"
            "An SSL encoder without a classifier head: name this folder as `model_name_or_path` "
            "of an rlspoof recipe (or `EncoderConfig(name_or_path=...)`) to build a detector on it.\n")
