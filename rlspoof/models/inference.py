"""The one batched inference loop: scoring, embeddings, drift and the linear probe all run it.

Clips of different lengths are read in length order, so that a batch pads little, zero-padded
at the end with an attention mask, run in eval mode without gradients, and put back in input
order; the module's train/eval mode is restored afterwards, whatever happens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["run_batched"]

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
