"""MLDG (Li et al., "Learning to Generalize: Meta-Learning for Domain Generalization", AAAI 2018)
for a spoofing detector, as pure functions: the per-step domain split and the meta-objective.

One step: split the batch's attack families into meta-train and meta-test, take a virtual
gradient step on the meta-train loss, and optimise

    F(theta) = L_train(theta) + w * L_test(theta - a * grad L_train(theta))

with a = ``meta_lr`` and w = ``meta_test_weight`` (Li et al.'s alpha and beta), so that an
update which helps the seen families must also help a held-out one. The second-order term
(through grad L_train) is kept unless ``first_order`` (then the inner gradient is a constant and
dF = dL_train(theta) + w * dL_test(theta')).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch.func import functional_call


def mldg_split(domains: Sequence[str], labels: torch.Tensor, n_test_domains: int,
               generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(meta-train rows, meta-test rows) of one batch, or None when it spans fewer than two
    spoof domains (no held-out family is possible).

    Spoofed rows go to the side of their domain: ``n_test_domains`` domains (at most all but
    one) are drawn as meta-test, so a meta-test family never appears in the inner step.
    Bonafide rows have no domain; they are shuffled and split in half so both sides see both
    classes.
    """
    labels = labels.detach().cpu()
    spoof_rows = [i for i, y in enumerate(labels.tolist()) if y == 1]
    present = sorted({domains[i] for i in spoof_rows})
    if len(present) < 2:
        return None
    order = torch.randperm(len(present), generator=generator).tolist()
    held_out = {present[k] for k in order[:min(n_test_domains, len(present) - 1)]}
    bonafide = torch.tensor([i for i, y in enumerate(labels.tolist()) if y != 1], dtype=torch.long)
    bonafide = bonafide[torch.randperm(len(bonafide), generator=generator)]
    half = (len(bonafide) + 1) // 2
    train = [i for i in spoof_rows if domains[i] not in held_out] + bonafide[:half].tolist()
    test = [i for i in spoof_rows if domains[i] in held_out] + bonafide[half:].tolist()
    return torch.tensor(sorted(train), dtype=torch.long), torch.tensor(sorted(test), dtype=torch.long)


def mldg_objective(model: torch.nn.Module, params: Mapping[str, torch.Tensor],
                   loss_on: Callable[[Callable, torch.Tensor], torch.Tensor],
                   train_rows: torch.Tensor, test_rows: torch.Tensor, meta_lr: float, meta_test_weight: float,
                   first_order: bool = False) -> tuple[torch.Tensor, dict[str, float]]:
    """F(theta) above. ``params`` are the trainable parameters by name; ``loss_on(forward, rows)``
    returns the loss of ``rows`` under ``forward(*inputs)`` (so this function needs no batch
    format). Returns F and its two parts for logging."""
    names = list(params)
    train_loss = loss_on(model, train_rows)
    # retain_graph: the outer backward goes through train_loss again (its first term).
    grads = torch.autograd.grad(train_loss, [params[n] for n in names], create_graph=not first_order,
                                retain_graph=True, allow_unused=True)
    adapted = {
        n: params[n] if g is None else params[n] - meta_lr * (g.detach() if first_order else g)
        for n, g in zip(names, grads, strict=True)
    }

    def adapted_forward(*args, **kwargs):
        return functional_call(model, adapted, args, kwargs, strict=False)

    test_loss = loss_on(adapted_forward, test_rows)
    total = train_loss + meta_test_weight * test_loss
    return total, {"meta_train_loss": train_loss.item(), "meta_test_loss": test_loss.item()}


__all__ = ["mldg_objective", "mldg_split"]
