"""The one batched inference loop (scoring, embeddings, drift and the probe run it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from rlspoof.models.inference import run_batched


class Recorder(nn.Linear):
    """Returns, per row, the valid length and the sum of the values; records what it saw."""

    def __init__(self):
        super().__init__(1, 1)
        self.seen = []

    def forward(self, values, mask):
        self.seen.append((values.shape, self.training, torch.is_grad_enabled()))
        return torch.stack([mask.sum(1).to(values.dtype), (values * mask).sum(1)], dim=1)


def test_rows_come_back_in_input_order_with_masks_that_cover_each_clip():
    rng = np.random.default_rng(0)
    lengths = [7, 3, 12, 5, 9, 1, 4]
    waves = [rng.normal(size=n).astype(np.float32) for n in lengths]
    module = Recorder().train()
    out = run_batched(module, waves, module, batch_size=3, pad_multiple=4)
    np.testing.assert_array_equal(out[:, 0], lengths)
    np.testing.assert_allclose(out[:, 1], [w.sum() for w in waves], rtol=1e-5)
    assert out.dtype == np.float64
    # length-sorted batches (1, 3, 4 | 5, 7, 9 | 12), each padded up to a multiple of 4
    assert [shape for shape, _, _ in module.seen] == [(3, 4), (3, 12), (1, 12)]
    assert all(not training and not grad for _, training, grad in module.seen)
    assert module.training  # the mode it was in comes back


def test_the_mode_comes_back_when_the_forward_fails_and_bad_arguments_are_refused():
    module = Recorder().train()

    def broken(values, mask):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_batched(module, [np.zeros(3, np.float32)], broken)
    assert module.training
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        run_batched(module, [np.zeros(3, np.float32)], module, batch_size=0)
    assert run_batched(module, [], module).shape == (0,)
