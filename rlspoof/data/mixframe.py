"""Mix-frame perturbation: training clips whose spans come from an utterance of the other class.

Supervised post-training on whole utterances lets an encoder lean on global cues (speaker,
channel, prosody). Splicing (or blending) short spans of a spoofed utterance into a bonafide one,
and the reverse, with a label for every sample, gives a frame-level head something only local
artifacts can explain (Supervised Post-training of Speech Foundation Models, seed 002). The
splice edges are cross-faded and the donor is matched in loudness to the host, so neither a
click nor a level step marks a span.

Label convention: 1 = spoof (``LABEL2ID``). A sample inside a spliced span takes the donor's
label; inside a blended span it is spoof if either source is; the utterance is spoof if any
sample is (a partially spoofed clip is a spoof).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from rlspoof.data.dataset import SpoofDataset
from rlspoof.data.manifest import LABEL2ID, LABELS
from rlspoof.errors import RlspoofError

MIX_MODES = ("splice", "blend")
_SPOOF = LABEL2ID["spoof"]


def draw_spans(n_samples: int, rng: np.random.Generator, span_samples: tuple[int, int],
               max_spans: int) -> list[tuple[int, int]]:
    """Up to ``max_spans`` disjoint, sorted [start, end) spans, each ``span_samples`` long at
    most (at least one span; shorter only where the clip is shorter)."""
    low, high = span_samples
    if not 1 <= low <= high:
        raise RlspoofError(f"span lengths must satisfy 1 <= min <= max, got {span_samples}")
    spans: list[tuple[int, int]] = []
    for _ in range(int(rng.integers(1, max_spans + 1))):
        length = min(int(rng.integers(low, high + 1)), n_samples)
        start = int(rng.integers(0, n_samples - length + 1))
        if all(start >= end or start + length <= begin for begin, end in spans):
            spans.append((start, start + length))
    return sorted(spans)


def span_mask(n_samples: int, spans: list[tuple[int, int]], crossfade: int = 0) -> np.ndarray:
    """1 inside the spans, 0 outside, with linear ramps of ``crossfade`` samples inside each edge."""
    mask = np.zeros(n_samples, dtype=np.float32)
    for start, end in spans:
        mask[start:end] = 1.0
        ramp = min(crossfade, (end - start) // 2)
        if ramp > 0:
            up = np.linspace(0.0, 1.0, ramp + 2, dtype=np.float32)[1:-1]
            mask[start:start + ramp] = up
            mask[end - ramp:end] = up[::-1]
    return mask


def mix_frames(host: np.ndarray, donor: np.ndarray, host_label: int, donor_label: int,
               spans: list[tuple[int, int]], mode: str = "splice", blend_weight: float = 0.5,
               crossfade: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """The mixed waveform and its per-sample labels (float32, 1 = spoof); same length as host."""
    if mode not in MIX_MODES:
        raise RlspoofError(f"mix-frame mode must be one of {', '.join(MIX_MODES)}, got {mode!r}")
    if host.shape != donor.shape:
        raise RlspoofError(f"host and donor must have the same length, got {host.shape} and {donor.shape}")
    host_rms, donor_rms = np.sqrt(np.mean(host**2)), np.sqrt(np.mean(donor**2))
    donor = donor * (host_rms / donor_rms) if donor_rms > 0 and host_rms > 0 else donor
    weight = 1.0 if mode == "splice" else float(blend_weight)
    mask = weight * span_mask(host.size, spans, crossfade)
    wave = (host + mask * (donor - host)).astype(np.float32)
    inside = max(host_label, donor_label) if mode == "blend" else donor_label
    labels = np.full(host.size, float(host_label), dtype=np.float32)
    for start, end in spans:
        labels[start:end] = float(inside)
    return wave, labels


def frame_targets(sample_labels: torch.Tensor, num_frames: int,
                  geometry: tuple[int, int] | None = None) -> torch.Tensor:
    """Per-frame spoof fraction (B x T) from per-sample labels (B x N).

    ``geometry`` = (receptive field, stride) in samples of the encoder's convolutional front-end:
    frame t then sees samples [t * stride, t * stride + field), exactly as the encoder does.
    Without it (or if it does not give ``num_frames`` frames) the frames tile the clip evenly.
    """
    labels = sample_labels.float()
    if geometry is not None:
        field, stride = geometry
        if labels.shape[1] >= field:
            windows = labels.unfold(1, field, stride).mean(-1)
            if windows.shape[1] == num_frames:
                return windows
    return F.adaptive_avg_pool1d(labels.unsqueeze(1), num_frames).squeeze(1)


class MixFrameDataset(SpoofDataset):
    """A training ``SpoofDataset`` whose items are mix-frame perturbed with probability ``prob``.

    Every item carries ``sample_labels`` (float32, one per sample); a mixed item's donor is a
    random training utterance of the other class, cropped like any training item. The draw
    depends on (seed, epoch, index), like the crops.
    """

    def __init__(self, *args, prob: float = 0.5, span_seconds: tuple[float, float] = (0.1, 0.5),
                 max_spans: int = 2, mode: str = "splice", blend_weight: float = 0.5,
                 crossfade_seconds: float = 0.005, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.train:
            raise RlspoofError("mix-frame perturbation is for training sets")
        if not 0 <= prob <= 1:
            raise RlspoofError(f"mixframe_prob must be in [0, 1], got {prob}")
        if mode not in MIX_MODES:
            raise RlspoofError(f"mixframe_mode must be one of {', '.join(MIX_MODES)}, got {mode!r}")
        if max_spans < 1:
            raise RlspoofError(f"mixframe_max_spans must be >= 1, got {max_spans}")
        self.prob, self.max_spans, self.mode, self.blend_weight = prob, max_spans, mode, blend_weight
        if not 0 < span_seconds[0] <= span_seconds[1]:
            raise RlspoofError(f"mixframe_span_seconds must be [min, max] with 0 < min <= max, "
                               f"got {list(span_seconds)}")
        self.span_samples = tuple(max(1, round(s * self.sample_rate)) for s in span_seconds)
        self.crossfade = round(crossfade_seconds * self.sample_rate)
        self.rows_by_label = {
            label: np.flatnonzero([row.label == name for row in self.manifest])
            for label, name in enumerate(LABELS)
        }

    def __getitem__(self, index: int) -> dict:
        item = super().__getitem__(index)
        host_label = int(item["labels"])
        wave = item["input_values"].numpy()
        labels = np.full(wave.size, float(host_label), dtype=np.float32)
        rng = np.random.default_rng([self.seed, self.epoch, index, 1])
        donors = self.rows_by_label[1 - host_label]
        if donors.size and rng.random() < self.prob:
            donor_index = int(donors[rng.integers(donors.size)])
            donor = super().__getitem__(donor_index)
            spans = draw_spans(wave.size, rng, self.span_samples, self.max_spans)
            wave, labels = mix_frames(wave, donor["input_values"].numpy(), host_label, 1 - host_label,
                                      spans, self.mode, self.blend_weight, self.crossfade)
            if host_label != _SPOOF:
                item["attack"] = donor["attack"]
            item["input_values"] = torch.from_numpy(wave)
            item["labels"] = int(labels.max() >= 0.5)
        item["sample_labels"] = torch.from_numpy(labels)
        return item


__all__ = ["MIX_MODES", "MixFrameDataset", "draw_spans", "frame_targets", "mix_frames",
           "span_mask"]
