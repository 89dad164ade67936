"""The linear probe's logistic regression (the probe of a pre-trained encoder runs in
tests/test_trainers_pretrain.py, after pre-training)."""

from __future__ import annotations

import numpy as np
import pytest

from rlspoof.evaluation.probe import fit_logistic
from rlspoof.metrics import compute_eer


def test_fit_logistic_separates_and_scores_bonafide_high():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(1.0, 1.0, (60, 5)), rng.normal(-1.0, 1.0, (40, 5))])
    y = np.array([1.0] * 60 + [0.0] * 40)
    score = fit_logistic(x, y)
    s = score(x)
    assert s[:60].mean() > s[60:].mean()
    assert compute_eer(s[:60], s[60:])[0] < 0.1
    with pytest.raises(ValueError, match="both classes"):
        fit_logistic(x, np.ones(100))

