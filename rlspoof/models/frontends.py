"""Encoder front ends in place of wav2vec 2.0's waveform CNN, named in the encoder's config.

Why this exists (issue 12, ``benchmarks/frontend_sweep.py``): trained from scratch on the
built-in corpus, the learned waveform CNN of the tiny preset stays near 38 % EER, and a tiny
transformer fed an exact log spectrogram frame by frame overfits (30 %). A log spectrogram
read by a few 2D convolutions (weights shared across frequency, the inductive bias of the
anti-spoofing CNNs), pooled over frequency into frames for the same transformer, reached
8-18 % on ``eval`` from random init (three seeds, 400 steps); keeping where in frequency each
map fired gave 9-13 %, and 3.6 % with twice the steps and training data
(``benchmarks/results/frontend_sweep.json``). transformers has no such front end for its SSL
encoders, so it is written here and installed as the encoder's ``feature_extractor``:
everything after it (feature projection, SpecAugment masking, positional convolution,
transformer, wav2vec 2.0 pre-training and its quantiser) is the family's own code.

The front end is part of the config (``rlspoof_front_end``, saved in ``config.json``), so a
saved encoder or policy rebuilds it; rlspoof's loaders install it before the weights load.
transformers alone does not know it: ``Wav2Vec2Model.from_pretrained`` of such a folder would
report its front-end weights as unexpected.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from rlspoof.errors import RlspoofError

#: Config attribute naming the front end: ``{"type": "logspec2d", "channels": 16}``.
FRONT_END_KEY = "rlspoof_front_end"


class LogSpecConv2d(nn.Module):
    """(B, L) waveform -> (B, 4c, floor(T/4)) frames.

    Log power spectrogram (512-point FFT of 400-sample Hann frames, 160 hop, not centred, so T
    frames are ``floor((L - 512) / 160) + 1``), shifted and scaled by constants (the built-in
    corpus' log power is about -7.5 +- 4.5; a per-utterance or per-frame normalisation lost the
    frame-energy cue of Griffin-Lim speech: 24 % EER on ``eval`` against 8 %), then three 3x3
    conv blocks (GELU; two 2x2 max-pools), then either the mean and the max over frequency
    (``frequency="pool"``) or, per frame, the maps over all frequencies through one linear
    layer (``"flatten"``, the tiny-logspec preset). No batch norm: GRPO scores the same input
    in train mode and in eval mode (its reference) and the two must agree. The geometry is
    that of a two-layer conv stack with kernels (512, 4) and strides (160, 4), which the
    encoder's config must declare (``front_end_geometry``) so that its frame counts and
    attention masks match.
    """

    N_FFT, WINDOW, HOP, TIME_POOL = 512, 400, 160, 4

    def __init__(self, channels: int = 16, log_offset: float = 7.5, log_scale: float = 4.5,
                 frequency: str = "pool"):
        super().__init__()
        if frequency not in ("pool", "flatten"):
            raise ValueError(f"frequency must be pool or flatten, got {frequency!r}")
        self.log_offset, self.log_scale, self.frequency = log_offset, log_scale, frequency
        c = channels
        self.conv = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.GELU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * c, 2 * c, 3, padding=1), nn.GELU(),
        )
        # "flatten": each frame's maps keep where in frequency they fired (the tones of
        # upsampling artifacts sit in particular bands) and a linear layer reads them into the
        # same 4c features as pooling gives (ESPnet's Conv2dSubsampling). Its output stays
        # small, which wav2vec 2.0's quantiser (weights drawn N(0, 1)) needs: the flattened
        # 2c * F/4 maps fed to it directly saturate its softmax and pre-training turns NaN.
        self.project = (nn.Linear(2 * c * ((self.N_FFT // 2 + 1) // 4), 4 * c)
                        if frequency == "flatten" else None)
        self._requires_grad = True  # what transformers' feature encoders carry (see apply_freeze)
        #: Samples of each row that are audio, not batch padding (set by :func:`valid_samples`).
        self.valid_samples: torch.Tensor | None = None
        #: Precision of the spectrogram. float32 in torch, whose FFT is accurate enough; an ONNX
        #: export sets float64 (see ``onnx_export.export_onnx``).
        self.stft_dtype = torch.float32

    def _freeze_parameters(self) -> None:
        """transformers' ``freeze_feature_encoder`` calls this."""
        for p in self.parameters():
            p.requires_grad_(False)
        self._requires_grad = False

    def compress(self, power: torch.Tensor) -> torch.Tensor:
        return (torch.log(power + 1e-8) + self.log_offset) / self.log_scale

    def _zero_padding(self, maps: torch.Tensor, frames: torch.Tensor | None) -> torch.Tensor:
        """Frames at or beyond each row's valid count set to zero, as the convolutions' own
        zero padding is for a clip scored alone."""
        if frames is None:
            return maps
        keep = torch.arange(maps.shape[-1], device=maps.device) < frames[:, None]
        return maps * keep[:, None, None, :].to(maps.dtype)

    def forward(self, input_values: torch.Tensor) -> torch.Tensor:
        # Computed here rather than kept as a buffer: a buffer would be created on the meta
        # device when transformers builds the model empty and never receive a value.
        window = torch.hann_window(self.WINDOW, device=input_values.device, dtype=self.stft_dtype)
        power = torch.stft(input_values.to(self.stft_dtype), self.N_FFT, self.HOP, self.WINDOW, window,
                           center=False, return_complex=True).abs().pow(2)
        spec = self.compress(power)  # (B, F, T)
        # Batch padding must not change a clip's score: the 3x3 convolutions and the pools
        # would read the padded frames beside the last real ones (up to 0.95 log-odds apart
        # between batch sizes 1 and 64 on the demo corpus), so each stage's input is cut to
        # the row's own frame count.
        frames = None
        if self.valid_samples is not None:
            frames = torch.div(self.valid_samples.to(spec.device) - self.N_FFT, self.HOP,
                               rounding_mode="floor").clamp(min=0) + 1
        maps = spec.to(self.conv[0].weight.dtype).unsqueeze(1)
        for layer in self.conv:
            if isinstance(layer, nn.Conv2d):
                maps = self._zero_padding(maps, frames)
            maps = layer(maps)
            if isinstance(layer, nn.MaxPool2d) and frames is not None:
                frames = frames // 2
        # maps: (B, 2c, F/4, T/4); frames past each row's count are masked downstream
        if self.project is not None:
            return self.project(maps.permute(0, 3, 1, 2).flatten(2)).transpose(1, 2)
        return torch.cat([maps.mean(2), maps.amax(2)], dim=1)


def set_spectrogram_dtype(model: nn.Module, dtype: torch.dtype) -> None:
    """The STFT precision of every log-spectrogram front end in ``model`` (``stft_dtype``)."""
    for module in model.modules():
        if isinstance(module, LogSpecConv2d):
            module.stft_dtype = dtype


def normalize_waveforms(input_values: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """Each clip to zero mean and unit variance over its own samples, padding left at zero:
    what transformers' ``Wav2Vec2FeatureExtractor(do_normalize=True)`` does before a model
    that was trained on such input (most wav2vec 2.0 / XLS-R fine-tunes)."""
    x = input_values.float()
    if attention_mask is None:
        mask = torch.ones_like(x)
    else:
        mask = attention_mask.to(x.dtype).reshape(x.shape)
    n = mask.sum(-1, keepdim=True).clamp(min=1.0)
    mean = (x * mask).sum(-1, keepdim=True) / n
    var = (((x - mean) * mask) ** 2).sum(-1, keepdim=True) / n
    return ((x - mean) / torch.sqrt(var + 1e-7) * mask).to(input_values.dtype)


@contextmanager
def valid_samples(encoder: nn.Module, attention_mask: torch.Tensor | None) -> Iterator[None]:
    """Tell the encoder's front end, for one call, how many samples of each row are audio.

    transformers' encoders call their feature extractor with the waveform alone, so the
    attention mask is handed over here; the family's own CNN ignores it, as it always has.
    """
    front_end = getattr(encoder, "feature_extractor", None)
    if attention_mask is None or not isinstance(front_end, LogSpecConv2d):
        yield
        return
    front_end.valid_samples = attention_mask.sum(-1)
    try:
        yield
    finally:
        front_end.valid_samples = None


#: ``rlspoof_front_end`` type -> module class (the mapping's other keys are its arguments).
FRONT_ENDS: dict[str, type[nn.Module]] = {"logspec2d": LogSpecConv2d}


def front_end_geometry(spec: dict[str, Any]) -> dict[str, Any]:
    """The conv fields an encoder config needs for front end ``spec`` (frame counts, masks,
    the feature projection's input size)."""
    channels = int(spec.get("channels", 16))
    return {"conv_dim": (LogSpecConv2d.N_FFT // 2 + 1, 4 * channels),
            "conv_kernel": (LogSpecConv2d.N_FFT, LogSpecConv2d.TIME_POOL),
            "conv_stride": (LogSpecConv2d.HOP, LogSpecConv2d.TIME_POOL)}


def conv_geometry(kernels: list[int], strides: list[int]) -> tuple[int, int]:
    """(receptive field, total stride) in samples of a stack of 1-D convolutions.

    >>> conv_geometry([10, 3, 3, 3, 3, 2, 2], [5, 2, 2, 2, 2, 2, 2])  # wav2vec 2.0
    (400, 320)
    """
    field, jump = 1, 1
    for kernel, stride in zip(kernels, strides, strict=True):
        field += (kernel - 1) * jump
        jump *= stride
    return field, jump


def build_front_end(config: Any) -> nn.Module | None:
    """The front end ``config`` names (None: the family's own CNN). A config whose conv fields
    disagree with the front end is an error naming both."""
    spec = getattr(config, FRONT_END_KEY, None)
    if spec is None:
        return None
    if not isinstance(spec, dict) or spec.get("type") not in FRONT_ENDS:
        raise RlspoofError(f"{FRONT_END_KEY} must be a mapping with type one of "
                           f"{', '.join(FRONT_ENDS)}; got {spec!r}")
    kwargs = {k: v for k, v in spec.items() if k != "type"}
    try:
        module = FRONT_ENDS[spec["type"]](**kwargs)
    except TypeError as exc:
        raise RlspoofError(f"{FRONT_END_KEY} {spec!r}: {exc}") from None
    for name, want in front_end_geometry(spec).items():
        if tuple(getattr(config, name, ())) != tuple(want):
            raise RlspoofError(f"{FRONT_END_KEY} {spec['type']} needs {name}={list(want)}, the config "
                               f"has {list(getattr(config, name, ()))}")
    return module


def install_front_end(model: nn.Module) -> nn.Module:
    """Replace ``model.feature_extractor`` by the front end its config names, if any."""
    front_end = build_front_end(model.config)
    if front_end is not None:
        model.feature_extractor = front_end
    return model
