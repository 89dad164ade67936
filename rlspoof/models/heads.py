"""What sits on top of the SSL encoder: layer weighting, pooling over frames, the classifier.

    hidden states (L+1 tensors of B x T x D)  --LayerWeights-->  B x T x D
    --pooling (masked: padded frames never count)-->  B x P  --ClassifierHead-->  B x 2 logits

Poolings are registered by name in ``POOLINGS`` (name -> class taking ``dim``; each has an
``out_dim``); ``build_pooling`` raises an error listing the valid names.
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from rlspoof.errors import RlspoofError

__all__ = [
    "LayerWeights",
    "MeanPooling",
    "AttentiveStatsPooling",
    "POOLINGS",
    "build_pooling",
    "ClassifierHead",
    "frame_mask_from_samples",
]


class LayerWeights(nn.Module):
    """Learnable softmax-weighted sum of the encoder's hidden states (SUPERB / S3PRL style).

    Weights start equal (zeros before the softmax), so an untrained policy averages all layers.
    """

    def __init__(self, num_layers: int):
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.num_layers = int(num_layers)
        self.weights = nn.Parameter(torch.zeros(self.num_layers))

    def forward(self, hidden_states: tuple[torch.Tensor, ...] | list[torch.Tensor]) -> torch.Tensor:
        if len(hidden_states) != self.num_layers:
            raise ValueError(
                f"LayerWeights expects {self.num_layers} hidden states, got {len(hidden_states)} "
                "(LayerDrop must be off when layers are weighted)"
            )
        stacked = torch.stack(tuple(hidden_states), dim=0)  # L x B x T x D
        w = torch.softmax(self.weights, dim=0).to(stacked.dtype)
        return torch.einsum("l,lbtd->btd", w, stacked)


def frame_mask_from_samples(
    encoder: nn.Module,
    attention_mask: torch.Tensor | None,
    num_frames: int,
    add_adapter: bool | None = False,
) -> torch.Tensor | None:
    """Frame-level boolean mask (B x num_frames) from a sample-level mask (B x samples).

    Uses the encoder's own ``_get_feat_extract_output_lengths`` (the CNN's length formula), so
    a frame is valid exactly when the encoder itself attends to it. ``add_adapter`` only
    matters for wav2vec2 models with an adapter on top (``last_hidden_state`` then has fewer
    frames than the hidden states).
    """
    if attention_mask is None:
        return None
    lengths = attention_mask.to(torch.long).sum(-1)
    fn = encoder._get_feat_extract_output_lengths
    if "add_adapter" in inspect.signature(fn).parameters:
        frames = fn(lengths, add_adapter=add_adapter)
    else:  # families without adapters (HuBERT)
        frames = fn(lengths)
    frames = torch.as_tensor(frames, device=attention_mask.device).to(torch.long)
    frames = frames.clamp(min=0, max=num_frames)
    positions = torch.arange(num_frames, device=attention_mask.device)
    return positions[None, :] < frames[:, None]


def _masked_weights(frame_mask: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """B x T x 1 float weights, 1 on valid frames (all ones when there is no mask)."""
    if frame_mask is None:
        return torch.ones(like.shape[0], like.shape[1], 1, dtype=like.dtype, device=like.device)
    return frame_mask.to(like.dtype).unsqueeze(-1)


class MeanPooling(nn.Module):
    """Mean over valid frames; padded frames never count."""

    def __init__(self, dim: int):
        super().__init__()
        self.out_dim = int(dim)

    def forward(self, hidden: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        w = _masked_weights(frame_mask, hidden)
        return (hidden * w).sum(1) / w.sum(1).clamp(min=1.0)


class AttentiveStatsPooling(nn.Module):
    """Attentive statistics pooling (Okabe et al., 2018): per-frame attention weights
    ``softmax_t(v . tanh(W h_t + b))`` over valid frames, then the weighted mean and weighted
    standard deviation, concatenated (``out_dim = 2 * dim``)."""

    def __init__(self, dim: int, attention_dim: int = 128, eps: float = 1e-5):
        super().__init__()
        self.out_dim = 2 * int(dim)
        self.eps = eps
        self.attention = nn.Sequential(
            nn.Linear(dim, attention_dim), nn.Tanh(), nn.Linear(attention_dim, 1)
        )

    def forward(self, hidden: torch.Tensor, frame_mask: torch.Tensor | None = None) -> torch.Tensor:
        scores = self.attention(hidden).squeeze(-1)  # B x T
        if frame_mask is not None:
            scores = scores.masked_fill(~frame_mask, torch.finfo(scores.dtype).min)
        alpha = torch.softmax(scores.float(), dim=1).to(hidden.dtype)
        if frame_mask is not None:  # exact zeros on padding, also for all-masked rows
            alpha = alpha * frame_mask.to(alpha.dtype)
        alpha = alpha.unsqueeze(-1)
        mean = (alpha * hidden).sum(1)
        var = (alpha * (hidden - mean.unsqueeze(1)) ** 2).sum(1)
        std = torch.sqrt(var.clamp(min=self.eps))
        return torch.cat([mean, std], dim=-1)


#: Pooling name -> class taking the frame feature size; each instance has ``out_dim``.
POOLINGS: dict[str, type[nn.Module]] = {
    "mean": MeanPooling,
    "attentive_stats": AttentiveStatsPooling,
}


def build_pooling(name: str, dim: int) -> nn.Module:
    if name not in POOLINGS:
        raise RlspoofError(f"unknown pooling {name!r} (valid: {', '.join(sorted(POOLINGS))})")
    return POOLINGS[name](dim)


#: Activations between the head's two layers. "none" is transformers' audio classifiers'
#: projector -> classifier (two linear maps), kept so that their heads import exactly.
HEAD_ACTIVATIONS = {"gelu": nn.GELU, "none": nn.Identity}


class ClassifierHead(nn.Module):
    """``Linear(in_dim, num_labels)``, or an MLP with one hidden layer when ``hidden`` is set:
    dropout -> Linear -> activation (GELU, or none) -> dropout -> Linear."""

    def __init__(
        self, in_dim: int, hidden: int | None = None, dropout: float = 0.0, num_labels: int = 2,
        activation: str = "gelu",
    ):
        super().__init__()
        if hidden is not None and int(hidden) < 1:
            raise RlspoofError(f"head_hidden must be a positive integer or None, got {hidden!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise RlspoofError(f"head_dropout must be in [0, 1), got {dropout!r}")
        if activation not in HEAD_ACTIVATIONS:
            raise RlspoofError(f"head_activation must be one of {', '.join(HEAD_ACTIVATIONS)}, "
                               f"got {activation!r}")
        self.in_dim, self.hidden, self.num_labels = int(in_dim), hidden, int(num_labels)
        if hidden:
            self.net = nn.Sequential(
                nn.Dropout(dropout),
                nn.Linear(in_dim, int(hidden)),
                HEAD_ACTIVATIONS[activation](),
                nn.Dropout(dropout),
                nn.Linear(int(hidden), num_labels),
            )
        else:
            self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, num_labels))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.net(pooled)
