"""The one batched inference loop: scoring, embeddings, drift and the linear probe all run it.

Clips of different lengths are read in length order, so that a batch pads little, zero-padded
at the end with an attention mask, run in eval mode without gradients, and put back in input
order; the module's train/eval mode is restored afterwards, whatever happens.

What a scorer does before and after its forward passes (the inputs it accepts, the repeat-pad of
clips shorter than the encoder's receptive field, the refusal of non-finite scores) is here too,
so that ``SpoofPolicy.score`` and the ONNX runner (``onnx_export.OnnxDetector``) cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from rlspoof.data.audio import crop_or_pad
from rlspoof.errors import RlspoofError

__all__ = ["NonFiniteScoreError", "Scorer", "as_wave_list", "check_finite_scores", "run_batched",
           "scoring_inputs"]

#: forward(values (B, L) float, attention_mask (B, L) long) -> (B, ...) tensor
BatchForward = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def run_batched(module: nn.Module, waves: Sequence[np.ndarray], forward: BatchForward, *,
                batch_size: int = 16, pad_multiple: int = 1,
                progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """``forward`` over ``waves`` (1-D float arrays) in batches; float64 (N, ...) in input order.

    ``module`` gives the device, the floating dtype the values are cast to, and the mode to
    switch to eval. ``pad_multiple`` rounds each batch's length up (fewer distinct shapes for
    oneDNN to plan for). ``progress(done, total)`` is called after each batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    param = next(module.parameters())
    dtype = param.dtype if param.dtype.is_floating_point else torch.float32
    order = sorted(range(len(waves)), key=lambda i: waves[i].shape[0])
    out: np.ndarray | None = None
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                longest = -(-max(waves[i].shape[0] for i in idx) // pad_multiple) * pad_multiple
                values = torch.zeros(len(idx), longest, dtype=torch.float32)
                mask = torch.zeros(len(idx), longest, dtype=torch.long)
                for row, i in enumerate(idx):
                    n = waves[i].shape[0]
                    values[row, :n] = torch.from_numpy(np.asarray(waves[i], dtype=np.float32))
                    mask[row, :n] = 1
                result = forward(values.to(param.device, dtype), mask.to(param.device))
                result = result.detach().double().cpu().numpy()
                if out is None:
                    out = np.empty((len(waves), *result.shape[1:]), dtype=np.float64)
                out[idx] = result
                if progress:
                    progress(start + len(idx), len(order))
    finally:
        module.train(was_training)
    return np.empty((0,), dtype=np.float64) if out is None else out


class Scorer(Protocol):
    """What scores clips: a ``SpoofPolicy``, or an exported graph's ``OnnxDetector``."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def min_samples(self) -> int: ...

    def score(self, waveforms: Any, batch_size: int = 16,
              names: Sequence[str] | None = None) -> np.ndarray: ...


class NonFiniteScoreError(RlspoofError):
    """Some inputs scored NaN/Inf (e.g. samples near 1e30 overflow the encoder). ``indices``
    are those inputs; ``scores`` holds every score (NaN for them), so a caller can report
    them as skipped and keep the others without scoring again."""

    def __init__(self, message: str, indices: list[int], scores: np.ndarray):
        super().__init__(message)
        self.indices = indices
        self.scores = scores


def as_wave_list(waveforms: Any) -> list[np.ndarray]:
    """list of 1-D float32 arrays from a list of arrays/tensors, a 2-D array/tensor, or one wave."""
    if isinstance(waveforms, torch.Tensor):
        waveforms = waveforms.detach().cpu().numpy()
    if isinstance(waveforms, np.ndarray):
        if waveforms.ndim == 1:
            waveforms = [waveforms]
        elif waveforms.ndim == 2:
            waveforms = list(waveforms)
        else:
            raise ValueError(f"waveforms must be 1-D or 2-D, got shape {waveforms.shape}")
    waves = []
    for i, w in enumerate(waveforms):
        if isinstance(w, torch.Tensor):
            w = w.detach().cpu().numpy()
        w = np.asarray(w, dtype=np.float32)
        if w.ndim != 1 or w.size == 0:
            raise ValueError(f"waveform {i} must be a non-empty 1-D array, got shape {w.shape}")
        waves.append(w)
    return waves


def scoring_inputs(waveforms: Any, names: Sequence[str] | None, min_samples: int) -> list[np.ndarray]:
    """The waves a scorer runs: ``as_wave_list``, each clip shorter than ``min_samples`` (the
    encoder's receptive field, which the CNN cannot turn into a single frame) repeat-padded to
    it, as training pads short clips (``crop_or_pad``)."""
    waves = as_wave_list(waveforms)
    if names is not None and len(names) != len(waves):
        raise ValueError(f"{len(names)} names for {len(waves)} waveforms")
    return [w if w.shape[0] >= min_samples else crop_or_pad(w, min_samples, mode="start") for w in waves]


def check_finite_scores(out: np.ndarray, waves: Sequence[np.ndarray],
                        names: Sequence[str] | None) -> np.ndarray:
    """``out``, unless a score is NaN/Inf: then ``NonFiniteScoreError`` naming the inputs (by
    ``names`` where given, else by index), with every score (NaN for those)."""
    bad = np.flatnonzero(~np.isfinite(out)).tolist()
    if not bad:
        return out
    out[bad] = np.nan
    first = bad[0]
    label = repr(names[first]) if names is not None else f"waveform {first}"
    wave = waves[first]
    samples = (f"peak |sample| {float(np.max(np.abs(wave))):.3g}" if np.isfinite(wave).all()
               else "NaN/Inf samples")
    more = f" (and {len(bad) - 1} more of {len(waves)})" if len(bad) > 1 else ""
    raise NonFiniteScoreError(f"{label}{more}: the detector's score is not finite ({samples}; huge or "
                              "non-finite samples, or a broken model); not scored", bad, out)
