"""Import transformers audio classifiers (``*ForSequenceClassification``) as rlspoof policies.

Most public deepfake detectors are such checkpoints, used with
``pipeline("audio-classification")``. Their architecture is an rlspoof policy's: the SSL
encoder, the last hidden state (or a softmax-weighted sum of all of them), a linear
``projector``, a mean over valid frames and a linear ``classifier``. Since the mean is linear,
projecting then pooling equals pooling then projecting, so the head imports exactly as a
two-layer head with no activation (``head_activation: none``) over mean pooling. Their
feature extractor's ``do_normalize`` becomes the policy's ``normalize_input``.

Their label maps differ (``{0: "fake", 1: "real"}``, ``bonafide/spoof``, ``Bona-fide``,
``human/AI``, ...): the classifier's rows are reordered to rlspoof's (bonafide, spoof) from
``config.id2label``, matching known real/fake words case- and punctuation-insensitively. An
unknown vocabulary is an error that lists the labels, never a guess.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch
from safetensors import safe_open

from rlspoof.errors import RlspoofError
from rlspoof.models.checkpoint import CONFIG_NAME, WEIGHTS_NAME

#: Label words, lower-cased with everything but letters and digits removed.
BONAFIDE_WORDS = frozenset({"bonafide", "bona", "real", "genuine", "human", "authentic", "original",
                            "natural", "live", "true", "humanvoice", "realvoice", "realspeech"})
SPOOF_WORDS = frozenset({"spoof", "spoofed", "spoofing", "fake", "deepfake", "synthetic", "synthesized",
                         "synthesised", "generated", "ai", "aigenerated", "machine", "tts", "vc", "false",
                         "attack", "fakevoice", "fakespeech", "cloned"})
CLASSIFIER_SUFFIX = "ForSequenceClassification"


def _word(label: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(label).lower())


def label_order(id2label: dict, where: str) -> tuple[int, int]:
    """(row of bonafide, row of spoof) in the checkpoint's classifier."""
    labels = {int(i): str(name) for i, name in id2label.items()}
    how = ("name them in config.json's id2label with one real word (e.g. bonafide, real, "
           "genuine, human) and one fake word (e.g. spoof, fake, deepfake, synthetic, AI)")
    if sorted(labels) != [0, 1]:
        raise RlspoofError(f"{where}: a detector needs exactly 2 classes, id2label has "
                           f"{len(labels)}: {labels}; {how}")
    bona = [i for i, name in labels.items() if _word(name) in BONAFIDE_WORDS]
    spoof = [i for i, name in labels.items() if _word(name) in SPOOF_WORDS]
    if len(bona) != 1 or len(spoof) != 1:
        raise RlspoofError(f"{where}: cannot tell which label is bonafide and which is spoof in "
                           f"id2label {labels}; {how}")
    return bona[0], spoof[0]


def _config(folder: Path) -> dict | None:
    path = folder / CONFIG_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def is_hf_classifier_folder(folder: str | Path) -> bool:
    """A local folder holding a transformers ``*ForSequenceClassification`` checkpoint."""
    config = _config(Path(folder))
    archs = (config or {}).get("architectures") or []
    return any(isinstance(a, str) and a.endswith(CLASSIFIER_SUFFIX) for a in archs)


def hf_policy_config(folder: Path, config: dict, trust_remote_code: bool = False):
    """The PolicyConfig that reproduces the checkpoint's forward pass."""
    from rlspoof.models.encoders import EncoderConfig
    from rlspoof.models.policy import PolicyConfig

    extractor_path = folder / "preprocessor_config.json"
    extractor = json.loads(extractor_path.read_text()) if extractor_path.is_file() else {}
    return PolicyConfig(
        encoder=EncoderConfig(name_or_path=str(folder), freeze="none", trust_remote_code=trust_remote_code,
                              layer="weighted" if config.get("use_weighted_layer_sum") else "last"),
        pooling="mean", head_hidden=int(config.get("classifier_proj_size", 256)),
        head_activation="none", normalize_input=bool(extractor.get("do_normalize", False)),
        sample_rate=int(extractor.get("sampling_rate", 16000)),
    )


def load_hf_classifier(folder: str | Path, trust_remote_code: bool = False):
    """A new policy (train mode) whose encoder and head are the checkpoint's."""
    from rlspoof.models.policy import build_policy

    folder = Path(folder)
    config = _config(folder) or {}
    where = str(folder / CONFIG_NAME)
    bona, spoof = label_order(config.get("id2label") or {}, where)
    policy = build_policy(hf_policy_config(folder, config, trust_remote_code))
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise RlspoofError(f"{folder}: no {WEIGHTS_NAME} (rlspoof reads safetensors only)")
    with safe_open(str(weights), framework="pt") as f:
        keys = set(f.keys())
        needed = ["projector.weight", "projector.bias", "classifier.weight", "classifier.bias"]
        if policy.layer_weights is not None:
            needed.append("layer_weights")
        missing = [k for k in needed if k not in keys]
        if missing:
            raise RlspoofError(f"{weights}: the classifier's head is incomplete (missing {', '.join(missing)})")
        head = {k: f.get_tensor(k) for k in needed}
    order = torch.tensor([bona, spoof])
    projector, classifier = policy.head.net[1], policy.head.net[-1]
    with torch.no_grad():
        for layer, prefix, rows in ((projector, "projector", None), (classifier, "classifier", order)):
            for name in ("weight", "bias"):
                tensor = head[f"{prefix}.{name}"]
                tensor = tensor if rows is None else tensor[rows]
                if tensor.shape != getattr(layer, name).shape:
                    raise RlspoofError(f"{weights}: {prefix}.{name} has shape {tuple(tensor.shape)}, "
                                       f"expected {tuple(getattr(layer, name).shape)}")
                getattr(layer, name).copy_(tensor)
        if policy.layer_weights is not None:
            policy.layer_weights.weights.copy_(head["layer_weights"])
    if not all(torch.isfinite(t).all() for t in head.values()):
        raise RlspoofError(f"{weights}: the classifier's head has NaN/Inf weights")
    policy.metadata = {"imported_from": str(folder), "id2label": config.get("id2label")}
    return policy


#: rlspoof family (``model_type``) -> transformers class-name prefix of its classifier.
CLASSIFIER_PREFIX = {"wav2vec2": "Wav2Vec2", "hubert": "Hubert", "wavlm": "WavLM", "data2vec-audio": "Data2VecAudio"}


def hf_export_blockers(policy) -> list[str]:
    """What keeps ``policy`` from being a transformers ``*ForSequenceClassification``."""
    from rlspoof.models.frontends import FRONT_END_KEY

    cfg, enc = policy.config, policy.encoder.config
    blockers = []
    if getattr(enc, FRONT_END_KEY, None) is not None:
        blockers.append(f"its encoder's front end ({FRONT_END_KEY}: {getattr(enc, FRONT_END_KEY)['type']}) "
                        "is rlspoof's, not a transformers module")
    if enc.model_type not in CLASSIFIER_PREFIX:
        blockers.append(f"encoder family {enc.model_type!r} has no audio classifier in transformers")
    if cfg.pooling != "mean":
        blockers.append(f"pooling {cfg.pooling!r} (transformers classifiers mean-pool)")
    if cfg.head_hidden and cfg.head_activation != "none":
        blockers.append(f"a head with a {cfg.head_activation} activation (transformers' projector -> "
                        "classifier has none)")
    if not isinstance(cfg.encoder.layer, str):
        blockers.append(f"encoder layer {cfg.encoder.layer} (transformers uses the last layer or a "
                        "weighted sum of all)")
    if cfg.encoder.lora is not None:
        blockers.append("unmerged LoRA adapters")
    return blockers


def export_hf_classifier(policy, out: str | Path) -> Path:
    """Write ``policy`` as a transformers audio-classification folder (model, config with
    ``id2label`` {0: bonafide, 1: spoof}, feature-extractor config) that
    ``pipeline("audio-classification")`` scores as rlspoof does. A linear head becomes an
    identity projector; a frame head, used only in post-training, is left out."""
    import transformers

    blockers = hf_export_blockers(policy)
    if blockers:
        raise RlspoofError("this policy cannot be written as a transformers audio classifier: "
                           + "; ".join(blockers))
    enc = policy.encoder
    prefix = CLASSIFIER_PREFIX[enc.config.model_type]
    head = policy.head.net
    proj_size = policy.config.head_hidden or policy.pooling.out_dim
    config = getattr(transformers, f"{prefix}Config")(**{
        **enc.config.to_dict(), "architectures": [f"{prefix}ForSequenceClassification"],
        "id2label": {0: "bonafide", 1: "spoof"}, "label2id": {"bonafide": 0, "spoof": 1},
        "classifier_proj_size": proj_size, "use_weighted_layer_sum": policy.config.encoder.layer == "weighted"})
    model = getattr(transformers, f"{prefix}ForSequenceClassification")(config).eval()
    with torch.no_grad():
        getattr(model, model.base_model_prefix).load_state_dict(enc.state_dict())
        if policy.config.head_hidden:
            model.projector.load_state_dict(head[1].state_dict())
        else:  # a linear head: identity projector, then the head's own layer
            model.projector.weight.copy_(torch.eye(proj_size))
            model.projector.bias.zero_()
        model.classifier.load_state_dict(head[-1].state_dict())
        if policy.layer_weights is not None:
            model.layer_weights.copy_(policy.layer_weights.weights)
    out = Path(out)
    model.save_pretrained(out)
    transformers.Wav2Vec2FeatureExtractor(
        sampling_rate=policy.sample_rate, do_normalize=policy.config.normalize_input,
        return_attention_mask=config.feat_extract_norm == "layer").save_pretrained(out)
    return out
