"""Helpers shared by the trainer tests (imported as a plain module: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import torch


def count_forwards(module: torch.nn.Module) -> list[int]:
    """Hook counting ``module``'s forward calls (register after the trainer deep-copies the
    policy into its reference, or the copy inherits the hook)."""
    calls: list[int] = []
    module.register_forward_hook(lambda *_: calls.append(1))
    return calls


def weights_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def same_weights(a: torch.nn.Module | dict, b: torch.nn.Module | dict) -> bool:
    a = a if isinstance(a, dict) else a.state_dict()
    b = b if isinstance(b, dict) else b.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
