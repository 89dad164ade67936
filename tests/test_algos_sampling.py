"""Group sampling from one forward pass: distribution, temperature, reproducibility, scoring."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import chisquare

from rlspoof.algos import action_log_probs, all_actions, sample_actions

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _frequencies(actions: torch.Tensor, num_actions: int) -> torch.Tensor:
    """(B, A) empirical action frequencies per row of (B, G) actions."""
    counts = torch.stack([(actions == a).sum(dim=1) for a in range(num_actions)], dim=1)
    return counts.double() / actions.size(1)


def test_frequencies_match_policy_probabilities_chi_square():
    logits = torch.tensor([[0.0, 0.0], [2.0, -1.0], [-3.0, 0.5]])
    logits3 = torch.tensor([[0.3, -0.2, 1.1]])
    gen = torch.Generator().manual_seed(0)
    n = 20_000
    for lg in (logits, logits3):
        actions = sample_actions(lg, n, generator=gen)
        assert actions.shape == (lg.size(0), n)
        assert actions.dtype == torch.long
        probs = torch.softmax(lg.double(), dim=-1)
        for row in range(lg.size(0)):
            counts = torch.bincount(actions[row], minlength=lg.size(1)).double()
            expected = probs[row] * n
            # Fixed generator: deterministic; a wrong distribution gives p ~ 0.
            assert chisquare(counts.numpy(), expected.numpy()).pvalue > 1e-3
        assert torch.allclose(_frequencies(actions, lg.size(1)), probs, atol=0.015)


def test_wrong_distribution_is_detected():
    """The chi-square check above has power: the samples do not fit a shifted distribution."""
    gen = torch.Generator().manual_seed(1)
    actions = sample_actions(torch.tensor([[0.0, 0.4]]), 20_000, generator=gen)
    counts = torch.bincount(actions[0], minlength=2).double().numpy()
    assert chisquare(counts, [0.5 * 20_000, 0.5 * 20_000]).pvalue < 1e-6


def test_temperature_sharpens_and_flattens():
    logits = torch.tensor([[1.0, -0.5]])  # p(0) = sigmoid(1.5) ~ 0.82 at T = 1
    n = 20_000
    freq = {}
    for temp in (0.5, 1.0, 2.0):
        gen = torch.Generator().manual_seed(2)
        actions = sample_actions(logits, n, temperature=temp, generator=gen)
        freq[temp] = (actions == 0).double().mean().item()
        expected = torch.sigmoid(torch.tensor(1.5 / temp)).item()
        assert freq[temp] == pytest.approx(expected, abs=0.012)
    assert freq[0.5] > freq[1.0] > freq[2.0] > 0.5


def test_same_seed_same_actions_different_seed_different():
    logits = torch.randn(4, 2, generator=torch.Generator().manual_seed(3))
    a1 = sample_actions(logits, 64, generator=torch.Generator().manual_seed(11))
    a2 = sample_actions(logits, 64, generator=torch.Generator().manual_seed(11))
    a3 = sample_actions(logits, 64, generator=torch.Generator().manual_seed(12))
    assert torch.equal(a1, a2)
    assert not torch.equal(a1, a3)


def test_sampling_carries_no_gradient():
    logits = torch.randn(3, 2, requires_grad=True)
    actions = sample_actions(logits, 5, generator=torch.Generator().manual_seed(0))
    assert not actions.requires_grad


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_generations": 0}, "num_generations"),
        ({"num_generations": -3}, "num_generations"),
        ({"num_generations": 2.5}, "num_generations"),
        ({"num_generations": 4, "temperature": 0.0}, "temperature"),
        ({"num_generations": 4, "temperature": -1.0}, "temperature"),
        ({"num_generations": 4, "temperature": float("nan")}, "temperature"),
    ],
)
def test_sample_actions_validates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        sample_actions(torch.zeros(2, 2), **kwargs)


def test_action_log_probs_values_and_gradient():
    logits = torch.tensor([[1.0, -1.0], [0.0, 2.0]], requires_grad=True)
    actions = torch.tensor([[0, 1, 0], [1, 1, 0]])
    logp = action_log_probs(logits, actions)
    assert logp.shape == (2, 3)
    # Hand values: log sigmoid(+-2).
    a, b = math.log(1 / (1 + math.exp(-2))), math.log(1 / (1 + math.exp(2)))
    expected = torch.tensor([[a, b, a], [a, a, b]])
    assert torch.allclose(logp, expected, atol=1e-6)
    # Matches -cross_entropy, the paper's formula.
    ce = torch.nn.functional.cross_entropy(
        logits.repeat_interleave(3, 0), actions.reshape(-1), reduction="none"
    )
    assert torch.allclose(logp.reshape(-1), -ce, atol=1e-6)
    # Differentiable: d/dlogits of log p(a) = onehot(a) - p.
    logp[0, 0].backward()
    p = torch.softmax(logits.detach()[0], -1)
    assert torch.allclose(logits.grad[0], torch.tensor([1.0, 0.0]) - p, atol=1e-6)
    assert torch.equal(logits.grad[1], torch.zeros(2))


def test_action_log_probs_temperature():
    logits = torch.tensor([[2.0, 0.0]])
    actions = torch.tensor([[0, 1]])
    logp = action_log_probs(logits, actions, temperature=2.0)
    assert torch.allclose(logp.exp(), torch.softmax(logits / 2.0, -1), atol=1e-6)
    with pytest.raises(ValueError, match="temperature"):
        action_log_probs(logits, actions, temperature=0.0)


def test_action_log_probs_upcasts_half_logits():
    logits = torch.tensor([[3.0, -2.0]], dtype=torch.bfloat16)
    logp = action_log_probs(logits, torch.tensor([[1]]))
    assert logp.dtype == torch.float32


def test_action_log_probs_rejects_bad_actions():
    logits = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="shape"):
        action_log_probs(logits, torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        action_log_probs(logits, torch.zeros(2, 4))


def test_segment_level_shapes():
    """Frame logits (B, T, A) give actions (B, G, T): the group axis stays second."""
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(2, 7, 2, generator=gen)
    logits[1, 3] = torch.tensor([20.0, -20.0])  # frame (1, 3) is surely action 0
    logits[0, 5] = torch.tensor([-20.0, 20.0])  # frame (0, 5) is surely action 1
    actions = sample_actions(logits, 4, generator=gen)
    assert actions.shape == (2, 4, 7)
    assert (actions[1, :, 3] == 0).all() and (actions[0, :, 5] == 1).all()
    logp = action_log_probs(logits, actions)
    assert logp.shape == (2, 4, 7)
    ref = torch.log_softmax(logits, -1)
    for b, g, t in [(0, 1, 2), (1, 3, 6), (1, 0, 3)]:
        assert logp[b, g, t] == pytest.approx(ref[b, t, actions[b, g, t]].item(), abs=1e-6)


def test_all_actions():
    acts = all_actions(3)
    assert torch.equal(acts, torch.tensor([[0, 1], [0, 1], [0, 1]]))
    assert acts.dtype == torch.long
    assert all_actions(2, num_actions=3).tolist() == [[0, 1, 2], [0, 1, 2]]
    assert all_actions(0).shape == (0, 2)
    # Scoring every action gives the full distribution: probabilities sum to one per row.
    logits = torch.randn(3, 2)
    assert torch.allclose(action_log_probs(logits, acts).exp().sum(-1), torch.ones(3))
