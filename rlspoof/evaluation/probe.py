"""A linear probe of a (pre-trained) encoder: how well a logistic regression on its pooled
features separates bonafide from spoof, the standard check that SSL pre-training learned
something useful (against a randomly initialised encoder of the same shape)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import extract_model_from_parallel
from transformers.models.wav2vec2.modeling_wav2vec2 import Wav2Vec2ForPreTraining

from rlspoof.data.audio import DEFAULT_SAMPLE_RATE, load_audio
from rlspoof.data.manifest import BONAFIDE, Manifest, read_manifest
from rlspoof.errors import ConfigError, DataError
from rlspoof.metrics import compute_eer
from rlspoof.models.encoders import EncoderConfig, load_encoder
from rlspoof.models.inference import run_batched

#: Pooled features for the probe: mean over time of the last hidden state, or of the average
#: of all hidden states (the transformer input plus every layer's output).
PROBE_FEATURES = ("all_layers", "last")


def _load_encoder(encoder):
    if isinstance(encoder, (str, Path)):
        # The policy's loader: safetensors only, no remote code, missing weights are errors.
        return load_encoder(EncoderConfig(name_or_path=str(encoder), freeze="all"))[0]
    encoder = extract_model_from_parallel(encoder)
    return encoder.wav2vec2 if isinstance(encoder, Wav2Vec2ForPreTraining) else encoder


def _as_manifest(manifest, split: str | None) -> Manifest:
    if not isinstance(manifest, Manifest):
        manifest = read_manifest(manifest)
    if split is not None:
        manifest = manifest.filter(split=split)
    if len(manifest) == 0:
        raise DataError(f"no rows{f' with split {split!r}' if split else ''}", manifest.origin)
    return manifest


def _pool(encoder, values: torch.Tensor, attention: torch.Tensor | None, features: str) -> torch.Tensor:
    out = encoder(values, attention_mask=attention, output_hidden_states=features == "all_layers")
    states = out.last_hidden_state if features == "last" else torch.stack(out.hidden_states).mean(dim=0)
    if attention is None:
        return states.mean(dim=1)
    frames = encoder._get_feature_vector_attention_mask(states.shape[1], attention).to(states.dtype)
    return (states * frames[..., None]).sum(dim=1) / frames.sum(dim=1, keepdim=True).clamp(min=1)


def extract_features(encoder, manifest: Manifest, features: str = "all_layers",
                     sample_rate: int = DEFAULT_SAMPLE_RATE, max_seconds: float | None = None,
                     batch_size: int = 16, bucket_seconds: float = 0.5) -> np.ndarray:
    """One pooled vector per utterance (whole clip, or its first ``max_seconds``), shape (N, H).

    Encoders with a layer-normalised CNN (``feat_extract_norm="layer"``, the tiny preset and
    wav2vec 2.0 large / XLS-R) see batches zero-padded to a multiple of ``bucket_seconds`` with
    an attention mask, and pool over real frames only: the same numbers as one clip at a time,
    with few distinct shapes (oneDNN re-plans convolutions for every new input shape, which
    made clip-by-clip extraction 20x slower). Group-normalised CNNs (wav2vec2-base), whose
    frames depend on padding, get one clip at a time.
    """
    if features not in PROBE_FEATURES:
        raise ConfigError(f"unknown probe features {features!r}; choose one of: {', '.join(PROBE_FEATURES)}")
    limit = None if max_seconds is None else int(max_seconds * sample_rate)
    waves = []
    for row in manifest:
        wave = load_audio(manifest.audio_path(row), sample_rate)
        waves.append(wave[:limit] if limit is not None else wave)
    if getattr(encoder.config, "feat_extract_norm", "group") == "layer":
        return run_batched(encoder, waves, lambda x, mask: _pool(encoder, x, mask, features),
                           batch_size=batch_size, pad_multiple=max(1, int(bucket_seconds * sample_rate)))
    return run_batched(encoder, waves, lambda x, mask: _pool(encoder, x, None, features), batch_size=1)


def fit_logistic(x: np.ndarray, y: np.ndarray, C: float = 1.0, max_iter: int = 500):
    """L2 logistic regression with LBFGS on standardised features; ``score(x)`` = logit of y=1.

    ``C`` is scikit-learn's inverse regularisation strength; classes are weighted to balance.
    """
    xt = torch.as_tensor(x, dtype=torch.float64)
    yt = torch.as_tensor(y, dtype=torch.float64)
    mean, std = xt.mean(0), xt.std(0).clamp(min=1e-8)
    z = (xt - mean) / std
    n_pos, n = float(yt.sum()), yt.numel()
    if n_pos in (0, n):
        raise ValueError("the probe needs both classes in its training set")
    weights = torch.where(yt > 0, n / (2 * n_pos), n / (2 * (n - n_pos)))
    w = torch.zeros(z.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        logits = z @ w + b
        loss = (weights * torch.nn.functional.binary_cross_entropy_with_logits(
            logits, yt, reduction="none")).sum() + 0.5 / C * w.dot(w)
        loss = loss / n
        loss.backward()
        return loss

    opt.step(closure)
    w, b = w.detach(), b.detach()

    def score(features: np.ndarray) -> np.ndarray:
        zf = (torch.as_tensor(features, dtype=torch.float64) - mean) / std
        return (zf @ w + b).numpy()

    return score


def _eer(scores: np.ndarray, manifest: Manifest) -> float:
    bona = np.array([r.label == BONAFIDE for r in manifest])
    return float(compute_eer(scores[bona], scores[~bona])[0])


def linear_probe(encoder_dir_or_model, train_manifest, eval_manifest, *, train_split: str | None = None,
                 eval_split: str | None = None, features: str = "all_layers",
                 sample_rate: int = DEFAULT_SAMPLE_RATE, max_seconds: float | None = None,
                 C: float = 1.0) -> dict:
    """EER of a logistic regression on frozen encoder features (higher score = more bonafide).

    ``encoder_dir_or_model`` is a saved encoder folder, an encoder module or a
    ``Wav2Vec2ForPreTraining``. Manifests are paths or ``Manifest`` objects (filtered by the
    split arguments); ``eval_manifest`` may also be a mapping ``name -> manifest`` to score
    several sets with one fitted probe. Features: ``all_layers`` (default: time-mean of the
    average of all hidden states; lower layers carry the acoustic detail artefacts live in)
    or ``last`` (time-mean of the last hidden state).

    Returns ``eer`` (first eval set), ``eer_by_set``, ``train_eer``, ``n_train``,
    ``n_eval_by_set``, ``features`` and ``feature_dim``.
    """
    encoder = _load_encoder(encoder_dir_or_model)
    train = _as_manifest(train_manifest, train_split)
    evals = eval_manifest if isinstance(eval_manifest, Mapping) else {"eval": eval_manifest}
    evals = {name: _as_manifest(m, eval_split) for name, m in evals.items()}

    def feats(m: Manifest) -> np.ndarray:
        return extract_features(encoder, m, features, sample_rate, max_seconds)

    x_train = feats(train)
    y_train = np.array([r.label == BONAFIDE for r in train], dtype=np.float64)
    score = fit_logistic(x_train, y_train, C=C)
    eer_by_set = {name: round(_eer(score(feats(m)), m), 4) for name, m in evals.items()}
    return {
        "eer": next(iter(eer_by_set.values())),
        "eer_by_set": eer_by_set,
        "train_eer": round(_eer(score(x_train), train), 4),
        "n_train": len(train),
        "n_eval_by_set": {name: len(m) for name, m in evals.items()},
        "features": features,
        "feature_dim": int(x_train.shape[1]),
    }


__all__ = ["PROBE_FEATURES", "extract_features", "fit_logistic", "linear_probe"]
