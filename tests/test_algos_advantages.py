"""Group-relative advantages: TRL's and the paper's conventions, and the exact (weighted) mode."""

from __future__ import annotations

import math

import pytest
import torch

from rlspoof.algos import group_advantages, sample_actions, zero_std_fraction

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Row 0: three right, one wrong. Row 1: all wrong (a group with no signal).
REWARDS = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]])


def test_identical_rewards_give_zero_advantage_with_group_centre():
    rewards = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 0.0], [0.3, 0.3, 0.3]])
    for scale in ("group", "batch", "none"):
        adv = group_advantages(rewards, center="group", scale=scale)
        assert torch.equal(adv, torch.zeros_like(rewards))


def test_hand_computed_group_group():
    """TRL default: (r - group mean) / (unbiased group std + 1e-4)."""
    adv = group_advantages(REWARDS)
    # Row 0: mean 0.75, unbiased std sqrt((3 * 0.25^2 + 0.75^2) / 3) = 0.5.
    expected0 = torch.tensor([0.25, -0.75, 0.25, 0.25]) / (0.5 + 1e-4)
    assert torch.allclose(adv[0], expected0, atol=1e-6)
    assert torch.equal(adv[1], torch.zeros(4))
    # Not the population std (that would be sqrt(0.1875) = 0.433).
    assert not torch.allclose(adv[0], torch.tensor([0.25, -0.75, 0.25, 0.25]) / 0.433, atol=1e-2)


def test_hand_computed_batch_batch_paper():
    """The paper: (r - batch mean) / (batch std + 1e-5) over all B x G rewards."""
    adv = group_advantages(REWARDS, center="batch", scale="batch", eps=1e-5)
    mean = 3 / 8
    std = math.sqrt((3 * (1 - mean) ** 2 + 5 * mean**2) / 7)  # unbiased over 8 samples
    expected = (REWARDS - mean) / (std + 1e-5)
    assert torch.allclose(adv, expected, atol=1e-6)
    assert std == pytest.approx(0.5175491695)


def test_batch_and_group_centring_differ_on_a_crafted_batch():
    """The all-wrong group teaches nothing under group centring but is pushed down under
    batch centring: the published method's distinguishing feature."""
    group = group_advantages(REWARDS, center="group", scale="none")
    batch = group_advantages(REWARDS, center="batch", scale="none")
    assert torch.equal(group[1], torch.zeros(4))
    assert torch.allclose(batch[1], torch.full((4,), -3 / 8))
    assert torch.allclose(group[0], torch.tensor([0.25, -0.75, 0.25, 0.25]))
    assert torch.allclose(batch[0], torch.tensor([0.625, -0.375, 0.625, 0.625]))


def test_trl_batch_scale_keeps_group_centre():
    """TRL scale_rewards="batch": group mean subtracted, batch std divided."""
    adv = group_advantages(REWARDS, center="group", scale="batch")
    std = REWARDS.std().item()
    assert torch.allclose(adv, (REWARDS - REWARDS.mean(1, keepdim=True)) / (std + 1e-4))


def test_raw_reward_ablation_and_dr_grpo():
    assert torch.equal(group_advantages(REWARDS, center="none", scale="none"), REWARDS)
    dr = group_advantages(REWARDS, center="group", scale="none")
    assert torch.allclose(dr, REWARDS - REWARDS.mean(1, keepdim=True))


def test_group_std_uses_own_mean_even_with_batch_centre():
    adv = group_advantages(REWARDS, center="batch", scale="group")
    assert torch.allclose(adv[0], (REWARDS[0] - 3 / 8) / (0.5 + 1e-4), atol=1e-6)
    assert torch.allclose(adv[1], torch.full((4,), -3 / 8 / 1e-4), rtol=1e-5)


def test_single_generation_has_zero_std_like_trl():
    rewards = torch.tensor([[1.0], [0.0]])
    adv = group_advantages(rewards)
    assert torch.equal(adv, torch.zeros(2, 1))  # centred to zero, std 0 -> no NaN
    lone = group_advantages(torch.tensor([[1.0]]), center="none", scale="batch")
    assert lone.item() == pytest.approx(1.0 / 1e-4)


def test_integer_rewards_and_detached_result():
    adv = group_advantages(torch.tensor([[1, 0], [0, 0]]))
    assert adv.is_floating_point()
    r = torch.tensor([[1.0, 0.0, 0.5]], requires_grad=True)
    assert not group_advantages(r).requires_grad


def test_exact_mode_hand_computed():
    """One column per action, weights = policy probabilities: exact mean and population std."""
    probs = torch.tensor([[0.8, 0.2], [0.3, 0.7]])
    labels = torch.tensor([0, 0])
    rewards = torch.nn.functional.one_hot(labels, 2).float()  # reward 1 for the right action
    adv = group_advantages(rewards, weights=probs, eps=0.0)
    # Bernoulli(p) reward: mean p, std sqrt(p (1 - p)).
    for b, p in enumerate([0.8, 0.3]):
        s = math.sqrt(p * (1 - p))
        assert adv[b].tolist() == pytest.approx([(1 - p) / s, (0 - p) / s], abs=1e-6)
    # Batch statistics weight each utterance equally.
    adv_b = group_advantages(rewards, weights=probs, center="batch", scale="batch", eps=0.0)
    mean = (0.8 + 0.3) / 2
    var = ((0.8 * (1 - mean) ** 2 + 0.2 * mean**2) + (0.3 * (1 - mean) ** 2 + 0.7 * mean**2)) / 2
    assert torch.allclose(adv_b, (rewards - mean) / math.sqrt(var), atol=1e-6)
    # Uniform weights are NOT the unweighted (unbiased) statistics: population std instead.
    uniform = group_advantages(REWARDS, weights=torch.full((2, 4), 0.25), eps=0.0)
    assert torch.allclose(uniform[0], torch.tensor([0.25, -0.75, 0.25, 0.25]) / math.sqrt(0.1875))


@pytest.mark.parametrize(
    ("center", "scale"),
    [
        ("group", "group"),
        ("batch", "batch"),
        ("group", "batch"),
        ("group", "none"),
        ("batch", "group"),
    ],
)
def test_exact_mode_is_the_monte_carlo_limit(center, scale):
    """Sampling G labels and normalising converges (G -> inf) to the weighted exact advantages."""
    logits = torch.tensor([[1.0, -0.5], [-0.3, 0.4], [0.0, 0.9]])
    action_rewards = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.3, 0.9]])  # reward of each action
    probs = torch.softmax(logits, -1)
    exact = group_advantages(action_rewards, center=center, scale=scale, weights=probs)

    g = 100_000
    actions = sample_actions(logits, g, generator=torch.Generator().manual_seed(7))
    rewards = action_rewards.gather(1, actions)
    mc = group_advantages(rewards, center=center, scale=scale)
    for b in range(3):
        for a in range(2):
            picked = mc[b][actions[b] == a]
            assert picked.numel() > 1000
            # Every draw of the same action has the same advantage; it approaches the exact one.
            assert picked.std().item() < 1e-5
            assert picked.mean().item() == pytest.approx(exact[b, a].item(), abs=0.02)


def test_validation():
    with pytest.raises(ValueError, match="center must be one of group, batch, none"):
        group_advantages(REWARDS, center="mean")
    with pytest.raises(ValueError, match="scale must be one of group, batch, none"):
        group_advantages(REWARDS, scale="std")
    with pytest.raises(ValueError, match=r"\(B, G\)"):
        group_advantages(torch.zeros(4))
    with pytest.raises(ValueError, match="sum to 1"):
        group_advantages(REWARDS, weights=torch.full((2, 4), 0.3))
    with pytest.raises(ValueError, match="shape"):
        group_advantages(REWARDS, weights=torch.full((2, 2), 0.5))
    with pytest.raises(ValueError, match="non-negative"):
        group_advantages(REWARDS, weights=torch.tensor([[1.5, -0.5, 0, 0], [1, 0, 0, 0]]))


def test_zero_std_fraction():
    rewards = torch.tensor([[1.0, 1.0], [0.0, 1.0], [0.0, 0.0], [0.5, 0.5 + 1e-10]])
    assert zero_std_fraction(rewards) == pytest.approx(0.75)
    assert zero_std_fraction(REWARDS) == pytest.approx(0.5)
    assert zero_std_fraction(torch.tensor([[0.0, 1.0]])) == 0.0
    assert zero_std_fraction(torch.tensor([[0.5, 0.6]]), eps=0.2) == 1.0
    assert isinstance(zero_std_fraction(rewards), float)
