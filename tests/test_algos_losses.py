"""GRPO loss: hand-computed values, its registered pieces, clipping boundaries, k3 KL, and exact
mode vs sampling."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Categorical, kl_divergence

from rlspoof.algos import (
    POLICY_LOSSES,
    action_log_probs,
    all_actions,
    clip_fractions,
    decision_weights,
    exact_kl,
    group_advantages,
    grpo_loss,
    k3_kl,
    register_policy_loss,
    sample_actions,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

OLD = -0.5  # arbitrary old log-prob: only the ratio matters


def _logp_from_ratios(ratios) -> tuple[torch.Tensor, torch.Tensor]:
    """(logp, old_logp) whose ratio exp(logp - old_logp) is ``ratios``; logp is a leaf."""
    r = torch.tensor(ratios, dtype=torch.float64)
    old = torch.full_like(r, OLD)
    return (old + r.log()).requires_grad_(), old


# Utterance-level example: B=2, G=2.
FLAT_RATIOS = [[1.1, 0.7], [1.5, 0.9]]
FLAT_ADV = torch.tensor([[1.0, 1.0], [1.0, -2.0]], dtype=torch.float64)
# Losses, eps 0.2: -min(1.1, 1.1) = -1.1; -min(0.7, 0.8) = -0.7; -min(1.5, 1.2) = -1.2;
# A=-2: -min(-1.8, -1.8) = 1.8 -> mean -0.3.


def test_hand_computed_loss_and_metrics():
    logp, old = _logp_from_ratios(FLAT_RATIOS)
    loss, metrics = grpo_loss(logp, old, FLAT_ADV)
    assert loss.item() == pytest.approx(-0.3, abs=1e-9)
    assert metrics["clip_ratio/high_mean"] == pytest.approx(0.25)  # 1.5 with A > 0
    assert metrics["clip_ratio/low_mean"] == 0.0
    assert metrics["clip_ratio/region_mean"] == pytest.approx(0.25)
    assert metrics["ratio_mean"] == pytest.approx((1.1 + 0.7 + 1.5 + 0.9) / 4)
    assert "kl" not in metrics  # no reference: omitted, as TRL does (not logged as 0)


def test_the_pieces_compose_into_grpo_loss():
    """The registered surrogate, k3 and the decision weights are the loss, term by term."""
    logp, old = _logp_from_ratios(FLAT_RATIOS)
    ref = torch.tensor([[-0.1, -1.0], [-0.9, -0.2]], dtype=torch.float64)
    ratio = torch.exp(logp - old)
    weights = decision_weights(logp.shape, dtype=torch.float64)
    assert weights.sum().item() == pytest.approx(1.0) and torch.all(weights == 0.25)
    surrogate = POLICY_LOSSES["clipped"](ratio, FLAT_ADV, 0.2, 0.2)
    torch.testing.assert_close(surrogate, torch.tensor([[-1.1, -0.7], [-1.2, 1.8]],
                                                       dtype=torch.float64))
    kl = k3_kl(logp, ref, sampling_logp=old)  # corrected by pi / mu = the ratio
    delta = ref - logp.detach()
    torch.testing.assert_close(kl.detach(), ratio.detach() * (delta.exp() - delta - 1))
    loss, metrics = grpo_loss(logp, old, FLAT_ADV, ref_logp=ref, beta=0.5)
    assert loss.item() == pytest.approx(((surrogate + 0.5 * kl) * weights).sum().item())
    assert metrics["kl"] == pytest.approx(kl.mean().item())
    assert clip_fractions(ratio, FLAT_ADV, 0.2, 0.2, weights)["clip_ratio/high_mean"] == 0.25


def test_a_registered_policy_loss_is_used_by_name():
    @register_policy_loss("test_linear")
    def linear(ratio, advantages, epsilon_low, epsilon_high):
        return -(ratio - 1.0) * advantages

    try:
        logp, old = _logp_from_ratios(FLAT_RATIOS)
        loss, _ = grpo_loss(logp, old, FLAT_ADV, policy_loss="test_linear")
        assert loss.item() == pytest.approx(-(0.1 - 0.3 + 0.5 + 0.2) / 4)
        with pytest.raises(ValueError, match="already registered"):
            register_policy_loss("test_linear")(linear)
    finally:
        del POLICY_LOSSES["test_linear"]
    with pytest.raises(ValueError, match="clipped, unclipped"):
        grpo_loss(logp, old, FLAT_ADV, policy_loss="test_linear")


def test_sample_weights_hand_computed():
    w_flat = torch.tensor([[0.5, 0.5], [0.9, 0.1]], dtype=torch.float64)
    logp, old = _logp_from_ratios(FLAT_RATIOS)
    loss, _ = grpo_loss(logp, old, FLAT_ADV, sample_weights=w_flat)
    # mean_b sum_g w l = ((-1.1 - 0.7) / 2 + (0.9 * -1.2 + 0.1 * 1.8)) / 2
    assert loss.item() == pytest.approx(-0.9, abs=1e-9)
    # Uniform weights reproduce the unweighted loss.
    uniform, _ = grpo_loss(logp, old, FLAT_ADV, sample_weights=torch.full((2, 2), 0.5))
    assert uniform.item() == pytest.approx(-0.3)
    # Metrics are weighted too: the clipped decision (1.5, weight 0.9 / 2) of total weight 1.
    _, metrics = grpo_loss(logp, old, FLAT_ADV, sample_weights=w_flat)
    assert metrics["clip_ratio/high_mean"] == pytest.approx(0.45)


def _grads(ratios, advantages, **kwargs) -> tuple[torch.Tensor, dict[str, float]]:
    logp, old = _logp_from_ratios(ratios)
    loss, metrics = grpo_loss(logp, old, torch.tensor(advantages, dtype=torch.float64), **kwargs)
    loss.backward()
    return logp.grad, metrics


def test_clipping_engages_exactly_at_one_plus_minus_epsilon():
    d = 1e-3
    eps = 0.2
    # Columns: A>0 just inside / just outside the high edge; A<0 just inside / outside the low
    # edge; and the "wrong" sides, where PPO's min never clips (A>0 low, A<0 high).
    ratios = [[1 + eps - d, 1 + eps + d, 1 - eps + d, 1 - eps - d, 1 - eps - d, 1 + eps + d]]
    adv = [[1.0, 1.0, -1.0, -1.0, 1.0, -1.0]]
    grad, metrics = _grads(ratios, adv, epsilon_low=eps)
    n = 6
    expected = [-r * a / n for r, a in zip(ratios[0], adv[0], strict=True)]  # d(-rA)/dlogp = -rA
    for k in (0, 2, 4, 5):
        assert grad[0, k].item() == pytest.approx(expected[k], rel=1e-9), k
    assert grad[0, 1].item() == 0.0  # clipped high with A > 0: no push beyond 1 + eps
    assert grad[0, 3].item() == 0.0  # clipped low with A < 0: no push below 1 - eps
    assert metrics["clip_ratio/high_mean"] == pytest.approx(1 / 6)
    assert metrics["clip_ratio/low_mean"] == pytest.approx(1 / 6)
    assert metrics["clip_ratio/region_mean"] == pytest.approx(2 / 6)
    # Loss value at a clipped token is the clipped surrogate.
    logp, old = _logp_from_ratios([[1 + eps + d]])
    loss, _ = grpo_loss(logp, old, torch.tensor([[2.0]]), epsilon_low=eps)
    assert loss.item() == pytest.approx(-(1 + eps) * 2.0)


def test_asymmetric_epsilon_high():
    ratios = [[1.25, 1.25, 0.79, 0.79]]
    adv = [[1.0, 1.0, -1.0, -1.0]]
    sym, _ = _grads(ratios, adv, epsilon_low=0.2)
    asym, metrics = _grads(ratios, adv, epsilon_low=0.2, epsilon_high=0.28)
    assert sym[0, 0].item() == 0.0  # 1.25 > 1.2: clipped with the symmetric range
    assert asym[0, 0].item() == pytest.approx(-1.25 / 4)  # 1.25 < 1.28: still learning
    assert asym[0, 2].item() == 0.0 and sym[0, 2].item() == 0.0  # low edge unchanged (0.8)
    assert metrics["clip_ratio/high_mean"] == 0.0
    assert metrics["clip_ratio/low_mean"] == pytest.approx(0.5)


def test_no_clip_is_grpo_s():
    """unclipped with old = logp.detach(): value -mean(A), gradient -A / (B G) per logp."""
    logp = torch.tensor([[-0.1, -2.3], [-0.7, -0.05]], requires_grad=True)
    adv = torch.tensor([[1.5, -0.5], [-1.0, 2.0]])
    loss, metrics = grpo_loss(logp, logp.detach(), adv, policy_loss="unclipped")
    assert loss.item() == pytest.approx(-adv.mean().item())
    loss.backward()
    assert torch.allclose(logp.grad, -adv / 4)
    assert metrics["ratio_mean"] == pytest.approx(1.0)
    # Unclipped far from 1: the ratio is used as is.
    logp2, old2 = _logp_from_ratios([[3.0]])
    loss2, m2 = grpo_loss(logp2, old2, torch.tensor([[1.0]]), policy_loss="unclipped")
    assert loss2.item() == pytest.approx(-3.0)
    assert m2["clip_ratio/region_mean"] == 0.0


def test_k3_kl_zero_at_reference_positive_elsewhere():
    logp = torch.tensor([[-0.2, -1.7], [-0.9, -0.4]], requires_grad=True)
    adv = torch.tensor([[1.0, -1.0], [0.5, -0.5]])
    base, _ = grpo_loss(logp, logp.detach(), adv)
    same, m_same = grpo_loss(logp, logp.detach(), adv, ref_logp=logp.detach(), beta=0.5)
    assert m_same["kl"] == 0.0
    assert same.item() == pytest.approx(base.item())
    (g,) = torch.autograd.grad(same - base, logp)
    assert torch.allclose(g, torch.zeros_like(g))  # k3 has a minimum at logp = ref

    ref = torch.tensor([[-0.5, -1.0], [-0.9, -2.0]])
    with_kl, m_kl = grpo_loss(logp, logp.detach(), adv, ref_logp=ref, beta=0.5)
    d = ref - logp.detach()
    k3 = d.exp() - d - 1
    assert (k3.flatten()[[0, 1, 3]] > 0).all() and k3[1, 0] == 0
    assert m_kl["kl"] == pytest.approx(k3.mean().item())
    assert with_kl.item() == pytest.approx(base.item() + 0.5 * k3.mean().item())
    # Hand value of one k3: d = -0.3 -> exp(-0.3) + 0.3 - 1.
    assert k3[0, 0].item() == pytest.approx(math.exp(-0.3) + 0.3 - 1)
    # beta = 0 with a reference: logged, not penalised.
    no_pen, m0 = grpo_loss(logp, logp.detach(), adv, ref_logp=ref)
    assert no_pen.item() == pytest.approx(base.item()) and m0["kl"] == pytest.approx(m_kl["kl"])


def test_bias_correction_multiplies_k3_by_pi_over_the_sampler():
    """Hand values: TRL 1.16 multiplies k3 by the ratio to the sampling policy."""
    old = torch.tensor([[-0.7, -0.7]])
    logp = (old + torch.tensor([[math.log(2.0), math.log(0.5)]])).requires_grad_()
    ref = torch.tensor([[-1.0, -0.2]])
    d = ref - logp.detach()
    k3 = d.exp() - d - 1
    adv = torch.zeros(1, 2)
    plain, m_plain = grpo_loss(logp, old, adv, ref_logp=ref, beta=1.0, use_bias_correction_kl=False)
    corrected, m_corr = grpo_loss(logp, old, adv, ref_logp=ref, beta=1.0)  # TRL's default: on
    assert m_plain["kl"] == pytest.approx(k3.mean().item())
    assert m_corr["kl"] == pytest.approx(((torch.tensor([2.0, 0.5]) * k3).mean()).item())
    assert plain.item() == pytest.approx(m_plain["kl"]) and corrected.item() == pytest.approx(m_corr["kl"])
    # sampling_logp names the sampler when it is not the ratio's old policy: here the current
    # policy sampled, so the correction is pi / pi = 1 in value while the ratio stays 2 and 0.5
    _, m_cur = grpo_loss(logp, old, adv, ref_logp=ref, sampling_logp=logp.detach())
    assert m_cur["kl"] == pytest.approx(m_plain["kl"])
    assert m_cur["ratio_mean"] == pytest.approx(1.25)


def _kl_part_exact(probs_mu, bias_correction):
    """Exact mode's KL term for actions weighted by the sampler ``mu``: (loss, grad wrt logits)."""
    logits = LOGITS.clone().requires_grad_()
    acts = all_actions(3)
    logp = action_log_probs(logits, acts)
    _, metrics = grpo_loss(logp, torch.log(probs_mu), torch.zeros(3, 2),
                           ref_logp=action_log_probs(REF_LOGITS, acts), sample_weights=probs_mu,
                           use_bias_correction_kl=bias_correction)
    loss, _ = grpo_loss(logp, torch.log(probs_mu), torch.zeros(3, 2), beta=1.0,
                        ref_logp=action_log_probs(REF_LOGITS, acts), sample_weights=probs_mu,
                        use_bias_correction_kl=bias_correction)
    loss.backward()
    return metrics["kl"], logits.grad


def test_which_kl_each_setting_estimates_in_exact_mode():
    """The docstring's claims, exactly: with the correction, the KL term is KL(pi || ref) in value
    and gradient whatever policy sampled; plain k3 is that KL in value only on-policy, and its
    gradient there is the forward KL(ref || pi)'s."""
    pi = torch.softmax(LOGITS, -1)
    ref = torch.softmax(REF_LOGITS, -1)
    stale = torch.softmax(LOGITS + torch.tensor([0.9, -0.6], dtype=torch.float64), -1)

    def grad_of(kl_fn):
        logits = LOGITS.clone().requires_grad_()
        kl_fn(torch.softmax(logits, -1)).mean().backward()
        return kl_fn(pi).mean().item(), logits.grad

    reverse_value, reverse_grad = grad_of(lambda p: exact_kl(p, ref))
    forward_value, forward_grad = grad_of(lambda p: exact_kl(ref, p))
    for mu in (pi, stale):  # on-policy, and sampled by a stale old policy
        value, grad = _kl_part_exact(mu, bias_correction=True)
        assert value == pytest.approx(reverse_value, abs=1e-6)
        torch.testing.assert_close(grad, reverse_grad, atol=1e-6, rtol=0)
    value, grad = _kl_part_exact(pi, bias_correction=False)
    assert value == pytest.approx(reverse_value, abs=1e-6)
    torch.testing.assert_close(grad, forward_grad, atol=1e-6, rtol=0)
    assert not torch.allclose(forward_grad, reverse_grad)
    value, _ = _kl_part_exact(stale, bias_correction=False)  # off-policy: neither KL
    assert value != pytest.approx(reverse_value, abs=1e-3)


def test_beta_without_reference_raises():
    logp = torch.zeros(2, 2)
    with pytest.raises(ValueError, match="ref_logp"):
        grpo_loss(logp, logp, torch.zeros(2, 2), beta=0.04)


def test_exact_kl_matches_torch_distributions():
    gen = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(5, 2, generator=gen), -1)
    q = torch.softmax(torch.randn(5, 2, generator=gen), -1)
    kl = exact_kl(p, q)
    assert kl.shape == (5,)
    assert torch.allclose(kl, kl_divergence(Categorical(probs=p), Categorical(probs=q)), atol=1e-6)
    assert (kl > 0).all()
    assert torch.allclose(exact_kl(p, p), torch.zeros(5), atol=1e-7)
    # 0 log 0 = 0: a deterministic policy against a uniform reference costs log 2.
    det = exact_kl(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.5, 0.5]]))
    assert det.item() == pytest.approx(math.log(2))
    # Exact mode: k3 weighted by the policy's probabilities is the exact KL.
    logits = torch.randn(5, 2, generator=gen)
    ref_logits = torch.randn(5, 2, generator=gen)
    acts = all_actions(5)
    lp = action_log_probs(logits, acts)
    _, metrics = grpo_loss(
        lp,
        lp,
        torch.zeros(5, 2),
        ref_logp=action_log_probs(ref_logits, acts),
        sample_weights=lp.exp(),
    )
    exact = exact_kl(torch.softmax(logits, -1), torch.softmax(ref_logits, -1)).mean()
    assert metrics["kl"] == pytest.approx(exact.item(), abs=1e-6)


def test_entropy_bonus():
    logp, old = _logp_from_ratios(FLAT_RATIOS)
    entropy = torch.tensor([0.5, 0.7], requires_grad=True)
    loss, metrics = grpo_loss(logp, old, FLAT_ADV, entropy=entropy, entropy_coef=0.1)
    assert loss.item() == pytest.approx(-0.3 - 0.1 * 0.6)
    assert metrics["entropy"] == pytest.approx(0.6)
    loss.backward()
    assert torch.allclose(entropy.grad, torch.full((2,), -0.05))  # maximising entropy
    _, m = grpo_loss(logp, old, FLAT_ADV)
    assert "entropy" not in m


def test_validation():
    logp = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="old_logp"):
        grpo_loss(logp, torch.zeros(2, 2), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="advantages"):
        grpo_loss(logp, logp, torch.zeros(3))
    with pytest.raises(ValueError, match="sample_weights"):
        grpo_loss(logp, logp, torch.zeros(2, 3), sample_weights=torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"\(B, G\)"):
        grpo_loss(torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), torch.zeros(2, 3))


# --- the key property: exact mode is the large-G limit of the sampled estimator ------------

LOGITS = torch.tensor([[0.8, -0.4], [-0.2, 0.5], [1.5, 0.3]], dtype=torch.float64)
REF_LOGITS = torch.tensor([[0.0, 0.0], [0.4, -0.3], [1.0, 1.0]], dtype=torch.float64)
LABELS = torch.tensor([0, 0, 1])


def _exact_grad(beta: float, bias_correction: bool = True) -> torch.Tensor:
    logits = LOGITS.clone().requires_grad_()
    acts = all_actions(3)
    logp = action_log_probs(logits, acts)
    probs = logp.detach().exp()  # the old (= current) policy's action probabilities
    rewards = (acts == LABELS[:, None]).double()
    adv = group_advantages(rewards, center="group", scale="none", weights=probs)
    loss, _ = grpo_loss(
        logp,
        logp.detach(),
        adv,
        ref_logp=action_log_probs(REF_LOGITS, acts),
        beta=beta,
        policy_loss="unclipped",
        sample_weights=probs,
        use_bias_correction_kl=bias_correction,
    )
    loss.backward()
    return logits.grad


def test_exact_policy_gradient_is_minus_grad_of_expected_reward():
    """Without KL, exact mode's gradient is -grad E_pi[r] / B: p_y (onehot(y) - p) per row."""
    p = torch.softmax(LOGITS, -1)
    py = p[torch.arange(3), LABELS]
    expected = -(py[:, None] * (torch.nn.functional.one_hot(LABELS, 2) - p)) / 3
    assert torch.allclose(_exact_grad(0.0), expected, atol=1e-12)


@pytest.mark.parametrize("bias_correction", [True, False])
def test_exact_mode_gradient_matches_monte_carlo(bias_correction):
    """Average the sampled GRPO_s gradient (group centre, no scaling, k3 KL) over many groups.

    Each utterance is repeated R times as its own leaf row, so every row's gradient is one
    independent Monte-Carlo draw of the per-utterance gradient. Its mean must equal
    ``(1 - 1/G)`` x the exact policy-gradient part (the group mean contains the draw itself)
    plus the exact KL part (k3's gradient is unbiased).
    """
    beta, num_gen, reps = 0.5, 8, 20_000
    g_pg = _exact_grad(0.0) * 3  # per-utterance gradients (the loss is a mean over B)
    g_kl = _exact_grad(beta, bias_correction) * 3 - g_pg

    rows = LOGITS.repeat(reps, 1).requires_grad_()
    labels = LABELS.repeat(reps)
    actions = sample_actions(rows, num_gen, generator=torch.Generator().manual_seed(1234))
    logp = action_log_probs(rows, actions)
    rewards = (actions == labels[:, None]).double()
    adv = group_advantages(rewards, center="group", scale="none")
    loss, _ = grpo_loss(
        logp,
        logp.detach(),
        adv,
        ref_logp=action_log_probs(REF_LOGITS.repeat(reps, 1), actions),
        beta=beta,
        policy_loss="unclipped",
        use_bias_correction_kl=bias_correction,
    )
    loss.backward()
    per_row = (rows.grad * rows.size(0)).view(reps, 3, 2)  # one gradient sample per repetition
    mc_mean = per_row.mean(0)
    se = per_row.std(0) / math.sqrt(reps)

    expected = (1 - 1 / num_gen) * g_pg + g_kl
    assert ((mc_mean - expected).abs() <= 4.5 * se + 1e-9).all(), (mc_mean, expected, se)
    # The test has power: forgetting the (1 - 1/G) factor is detected.
    assert ((mc_mean - (g_pg + g_kl)).abs() > 4.5 * se).any()


def _published_loss(logits, old_logits, ref_logits, actions, labels, recipe):
    """The three objectives of the published GRPO code (arXiv 2603.02914, AntiDeepfake's
    ``algo/rl.py``), written from the paper's formulas, not from rlspoof:
    log-prob = -cross_entropy(logits, sampled label); reward 1 if the sample is the true label;
    'GRPO': (r - batch mean) / (batch std + 1e-5), PPO clipping against the old copy at +-0.2;
    'GRPO_s': the same advantage with exp(logp - logp.detach()) and no clipping; 'raw reward':
    the 0/1 reward itself as the advantage. All minus beta * plain k3, averaged over B x G."""
    b, g = actions.shape
    logp = -F.cross_entropy(logits.repeat_interleave(g, 0), actions.reshape(-1), reduction="none")
    ref = -F.cross_entropy(ref_logits.repeat_interleave(g, 0), actions.reshape(-1), reduction="none")
    reward = (actions.reshape(-1) == labels.repeat_interleave(g)).float()
    if recipe == "grpo_raw_reward":
        adv = reward
    else:
        adv = (reward - reward.mean()) / (reward.std() + 1e-5)
    k3 = torch.exp(ref - logp) - (ref - logp) - 1
    if recipe == "grpo":
        old = -F.cross_entropy(old_logits.repeat_interleave(g, 0), actions.reshape(-1), reduction="none")
        ratio = torch.exp(logp - old)
        surrogate = torch.minimum(ratio * adv, torch.clamp(ratio, 0.8, 1.2) * adv)
    else:
        surrogate = torch.exp(logp - logp.detach()) * adv
    return -(surrogate - 0.04 * k3).mean()


@pytest.mark.parametrize("recipe", ["grpo", "grpo_s", "grpo_raw_reward"])
def test_the_paper_recipes_reproduce_the_published_losses(recipe):
    """Each shipped paper recipe, through rlspoof's advantages and grpo_loss, gives the published
    objective's value and gradient on a small batch (far enough from the old copy to clip)."""
    from pathlib import Path

    import yaml

    from rlspoof.trainers.grpo_config import GRPOConfig

    fields = GRPOConfig.__dataclass_fields__
    cfg = yaml.safe_load((Path(__file__).parents[1] / "recipes" / "paper" / f"{recipe}.yaml").read_text())
    value = {k: cfg.get(k, fields[k].default) for k in (
        "advantage_center", "scale_rewards", "advantage_eps", "use_clipping", "epsilon", "beta",
        "use_bias_correction_kl", "old_policy_sync_steps", "temperature")}
    gen = torch.Generator().manual_seed(3)
    b, g = 4, 16
    logits = torch.randn(b, 2, generator=gen, requires_grad=True)
    old_logits = logits.detach() + 0.8 * torch.randn(b, 2, generator=gen)
    ref_logits = torch.randn(b, 2, generator=gen)
    labels = torch.tensor([0, 1, 1, 0])
    actions = torch.multinomial(torch.softmax(logits.detach(), -1), g, replacement=True, generator=gen)
    rewards = (actions == labels[:, None]).float()

    logp = action_log_probs(logits, actions, value["temperature"])
    has_old = value["old_policy_sync_steps"] > 0
    old_logp = action_log_probs(old_logits, actions, 1.0) if has_old else logp.detach()
    advantages = group_advantages(rewards, center=value["advantage_center"],
                                  scale=value["scale_rewards"], eps=value["advantage_eps"])
    loss, _ = grpo_loss(logp, old_logp, advantages, ref_logp=action_log_probs(ref_logits, actions, 1.0),
                        beta=value["beta"], epsilon_low=value["epsilon"],
                        policy_loss="clipped" if value["use_clipping"] else "unclipped",
                        use_bias_correction_kl=value["use_bias_correction_kl"],
                        sampling_logp=logp.detach())
    (ours,) = torch.autograd.grad(loss, logits)
    published = _published_loss(logits, old_logits, ref_logits, actions, labels, recipe)
    (theirs,) = torch.autograd.grad(published, logits)
    assert loss.item() == pytest.approx(published.item(), abs=1e-6)
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert ours.abs().sum() > 0
