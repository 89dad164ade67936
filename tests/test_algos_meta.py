"""MLDG: the per-step domain split and the meta-objective's gradient."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rlspoof.algos.meta import mldg_objective, mldg_split


@pytest.mark.parametrize("seed", range(25))
def test_meta_test_domains_never_appear_in_the_inner_step(seed):
    g = torch.Generator().manual_seed(seed)
    domains = ["-", "A01", "A02", "-", "A03", "A01", "-", "A02", "A03", "-"]
    labels = torch.tensor([0, 1, 1, 0, 1, 1, 0, 1, 1, 0])
    train, test = mldg_split(domains, labels, n_test_domains=1, generator=g)
    train_domains = {domains[i] for i in train.tolist() if labels[i] == 1}
    test_domains = {domains[i] for i in test.tolist() if labels[i] == 1}
    assert len(test_domains) == 1 and not train_domains & test_domains
    assert train_domains | test_domains == {"A01", "A02", "A03"}
    assert sorted(train.tolist() + test.tolist()) == list(range(10))  # every row used once
    assert {int(labels[i]) for i in train} == {0, 1} and {int(labels[i]) for i in test} == {0, 1}


def test_split_keeps_one_family_for_the_inner_step_and_needs_two():
    labels = torch.tensor([0, 1, 1, 0])
    train, test = mldg_split(["-", "A", "B", "-"], labels, n_test_domains=5)
    assert {1, 2} & set(train.tolist()) and {1, 2} & set(test.tolist())
    assert mldg_split(["-", "A", "A", "-"], labels, n_test_domains=1) is None


def _setup(seed=0):
    torch.manual_seed(seed)
    model = torch.nn.Linear(3, 2)
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))

    def loss_on(forward, rows):
        return F.cross_entropy(forward(x[rows]), y[rows])

    params = dict(model.named_parameters())
    return model, params, loss_on, torch.arange(0, 4), torch.arange(4, 8), x, y


def test_objective_equals_the_definition_and_its_gradient_is_second_order():
    model, params, loss_on, tr, te, x, y = _setup()
    alpha, beta = 0.5, 2.0
    total, parts = mldg_objective(model, params, loss_on, tr, te, alpha, beta)
    # by hand: theta' = theta - alpha * grad L_tr(theta)
    w, b = model.weight, model.bias
    l_tr = F.cross_entropy(x[tr] @ w.T + b, y[tr])
    gw, gb = torch.autograd.grad(l_tr, (w, b), create_graph=True)
    l_te = F.cross_entropy(x[te] @ (w - alpha * gw).T + (b - alpha * gb), y[te])
    assert total.item() == pytest.approx((l_tr + beta * l_te).item(), rel=1e-6)
    assert parts["meta_test_loss"] == pytest.approx(l_te.item(), rel=1e-6)
    want = torch.autograd.grad(l_tr + beta * l_te, (w, b))
    got = torch.autograd.grad(total, (w, b))
    for a, c in zip(want, got, strict=True):
        assert torch.allclose(a, c, atol=1e-6)


def test_first_order_drops_the_hessian_term_and_zero_alpha_is_pooled_training():
    model, params, loss_on, tr, te, x, y = _setup(1)
    second = torch.autograd.grad(mldg_objective(model, params, loss_on, tr, te, 0.5, 1.0)[0], model.weight)[0]
    first = torch.autograd.grad(
        mldg_objective(model, params, loss_on, tr, te, 0.5, 1.0, first_order=True)[0], model.weight)[0]
    assert not torch.allclose(first, second)
    w, b = model.weight, model.bias
    l_tr = F.cross_entropy(x[tr] @ w.T + b, y[tr])
    gw, gb = torch.autograd.grad(l_tr, (w, b), retain_graph=True)
    adapted_w, adapted_b = (w - 0.5 * gw).detach().requires_grad_(), (b - 0.5 * gb).detach().requires_grad_()
    l_te = F.cross_entropy(x[te] @ adapted_w.T + adapted_b, y[te])
    expected = torch.autograd.grad(l_tr, w)[0] + torch.autograd.grad(l_te, adapted_w)[0]
    assert torch.allclose(first, expected, atol=1e-6)
    pooled = torch.autograd.grad(loss_on(model, tr) + loss_on(model, te), model.weight)[0]
    zero = torch.autograd.grad(mldg_objective(model, params, loss_on, tr, te, 0.0, 1.0)[0], model.weight)[0]
    assert torch.allclose(zero, pooled, atol=1e-6)
