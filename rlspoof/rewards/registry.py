"""Reward functions by name: the registry recipes refer to, and their weighted combination.

Why a registry: a recipe names its rewards (``reward_funcs: [correctness, cost_weighted]``) the
way TRL's ``GRPOConfig`` does, with optional weights (``reward_weights``, default all 1) and
per-reward settings (``reward_kwargs: {cost_weighted: {c_fa: 10}}``). Names are resolved once,
before training, so that a typo or a wrong import path fails at start-up with a
:class:`~rlspoof.errors.ConfigError` naming it, not after the model has loaded. A user's own
function is named by import path, ``package.module:function`` or ``package.module.function``,
or registered under a short name with :func:`register_reward`.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from rlspoof.errors import ConfigError
from rlspoof.rewards.functions import (
    RewardFunc,
    bind_reward,
    confidence_reward,
    correctness_reward,
    cost_weighted_reward,
)

__all__ = [
    "REWARD_FUNCS",
    "register_reward",
    "get_reward_func",
    "make_reward",
    "resolve_rewards",
    "compute_rewards",
]

#: Registered reward functions by short name (extend with :func:`register_reward`).
REWARD_FUNCS: dict[str, RewardFunc] = {
    "correctness": correctness_reward,
    "cost_weighted": cost_weighted_reward,
    "confidence": confidence_reward,
}


def _is_path(name: str) -> bool:
    return ":" in name or "." in name


def register_reward(name: str, *, overwrite: bool = False) -> Callable[[RewardFunc], RewardFunc]:
    """Decorator registering a reward function under ``name`` (usable in recipes).

    The name must not contain ``.`` or ``:`` (those mean an import path). Registering a taken
    name raises ``ValueError`` unless ``overwrite=True``, so that two plugins cannot silently
    replace each other's reward. Returns the function unchanged.

    >>> @register_reward("always_one")
    ... def always_one(actions, labels, **_):
    ...     return actions.new_ones(actions.shape, dtype=torch.float32)
    >>> get_reward_func("always_one") is always_one
    True
    >>> del REWARD_FUNCS["always_one"]
    """
    if not isinstance(name, str) or not name or _is_path(name) or name != name.strip():
        raise ValueError(f"reward name must be a non-empty string without '.' or ':', got {name!r}")

    def decorator(fn: RewardFunc) -> RewardFunc:
        if not callable(fn):
            raise TypeError(f"register_reward({name!r}) needs a callable, got {type(fn).__name__}")
        if name in REWARD_FUNCS and REWARD_FUNCS[name] is not fn and not overwrite:
            raise ValueError(
                f"reward {name!r} is already registered ({REWARD_FUNCS[name]!r}); "
                "pass overwrite=True to replace it"
            )
        REWARD_FUNCS[name] = fn
        return fn

    return decorator


def _import_path(path: str) -> RewardFunc:
    """``pkg.mod:attr`` (attr may be dotted) or ``pkg.mod.attr``, else ConfigError naming it."""
    if ":" in path:
        module_name, _, attr_path = path.partition(":")
    else:
        module_name, _, attr_path = path.rpartition(".")
    if not module_name or not attr_path:
        raise ConfigError(
            f"reward function {path!r}: expected 'package.module:function' or "
            "'package.module.function'"
        )
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or any error raised while running the module
        raise ConfigError(
            f"reward function {path!r}: cannot import module {module_name!r} "
            f"({type(exc).__name__}: {exc})"
        ) from exc
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ConfigError(
                f"reward function {path!r}: module {module_name!r} has no attribute {attr_path!r}"
            ) from None
    if not callable(obj):
        raise ConfigError(f"reward function {path!r} is not callable ({type(obj).__name__})")
    return obj


def _unknown_name(name: str) -> ConfigError:
    valid = sorted(REWARD_FUNCS)
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(
        f"unknown reward function {name!r}{hint}. Valid names: {', '.join(valid)}; "
        "or give an import path 'package.module:function'"
    )


def _check_signature(fn: RewardFunc, name: str) -> None:
    """A reward must take ``(actions, labels)`` positionally and accept ``**kwargs``.

    Checked when the name is resolved because the trainer passes every batch column it has
    (``probs``, ``attack``, ``utt_id``, ...); a function without ``**kwargs`` would otherwise
    fail with a TypeError at the first training step.
    """
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    params = list(sig.parameters.values())
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        raise ConfigError(
            f"reward function {name!r} must accept **kwargs (the trainer passes probs and batch "
            f"columns); its signature is {sig}"
        )
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    takes_two = len(positional) >= 2 or any(p.kind is p.VAR_POSITIONAL for p in params)
    required = [p for p in positional[2:] if p.default is p.empty]
    if not takes_two or required:
        raise ConfigError(
            f"reward function {name!r} must be callable as fn(actions, labels, **kwargs); "
            f"its signature is {sig}"
        )


def get_reward_func(name: str, **settings: Any) -> RewardFunc:
    """The reward function called ``name``, with ``settings`` bound.

    ``name`` is a registered name (see :data:`REWARD_FUNCS`) or an import path
    (``package.module:function`` or ``package.module.function``). Unknown names, unimportable
    or non-callable paths, functions that cannot be called as ``fn(actions, labels, **kwargs)``
    and settings the function does not take raise :class:`~rlspoof.errors.ConfigError`; the
    message lists the valid names or settings.

    >>> import torch
    >>> fn = get_reward_func("cost_weighted", c_fa=1.0, p_spoof=0.5)
    >>> fn.__name__
    'cost_weighted_reward'
    >>> fn(torch.tensor([[1]]), torch.tensor([0])).tolist()  # a miss, batch all bonafide
    [[-1.0]]
    """
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"reward function name must be a non-empty string, got {name!r}")
    name = name.strip()
    if name in REWARD_FUNCS:
        fn = REWARD_FUNCS[name]
    elif _is_path(name):
        fn = _import_path(name)
    else:
        raise _unknown_name(name)
    _check_signature(fn, name)
    try:
        return bind_reward(fn, name=name, **settings)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from exc


def make_reward(name: str | RewardFunc, **settings: Any) -> RewardFunc:
    """Like :func:`get_reward_func`, but also accepts a function object.

    >>> make_reward("correctness", wrong=-1.0).__name__
    'correctness_reward'
    """
    if callable(name):
        label = getattr(name, "__name__", repr(name))
        _check_signature(name, label)
        try:
            return bind_reward(name, **settings)
        except (TypeError, ValueError) as exc:
            raise ConfigError(str(exc)) from exc
    return get_reward_func(name, **settings)


def resolve_rewards(
    names: Sequence[str] | str,
    weights: Sequence[float] | None = None,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
) -> tuple[list[tuple[str, RewardFunc]], torch.Tensor]:
    """Turn a recipe's ``reward_funcs`` / ``reward_weights`` / ``reward_kwargs`` into functions.

    Returns ``([(name, fn), ...], weights)`` with ``weights`` a float32 tensor of one weight per
    function (all 1.0 when ``weights`` is None, as in TRL). ``name`` is the string given (used
    as the logging key). Raises :class:`~rlspoof.errors.ConfigError` for an empty or
    duplicated list, a weight count that differs from the function count, non-finite weights,
    and ``settings`` keyed by a name that is not in ``names``.

    >>> funcs, w = resolve_rewards(["correctness", "cost_weighted"], [1.0, 0.5],
    ...                            {"cost_weighted": {"c_fa": 5.0}})
    >>> [n for n, _ in funcs], w.tolist()
    (['correctness', 'cost_weighted'], [1.0, 0.5])
    """
    if isinstance(names, str):
        names = [names]
    names = list(names)
    if not names:
        raise ConfigError(
            f"no reward functions given; choose from {', '.join(sorted(REWARD_FUNCS))}"
        )
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"reward function(s) listed twice: {', '.join(dupes)}")
    settings = dict(settings or {})
    extra = [k for k in settings if k not in names]
    if extra:
        raise ConfigError(
            f"reward settings given for {', '.join(map(repr, extra))}, which is not among the "
            f"reward functions ({', '.join(names)})"
        )
    if weights is None:
        weight_list = [1.0] * len(names)
    else:
        weight_list = list(weights)
        if len(weight_list) != len(names):
            raise ConfigError(
                f"got {len(weight_list)} reward weight(s) for {len(names)} reward function(s) "
                f"({', '.join(names)}); give one weight per function"
            )
        try:
            weight_list = [float(w) for w in weight_list]
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"reward weights must be numbers, got {weights!r}") from exc
        if not all(math.isfinite(w) for w in weight_list):
            raise ConfigError(f"reward weights must be finite, got {weight_list}")
    funcs = []
    for name in names:
        kw = settings.get(name) or {}
        if not isinstance(kw, Mapping):
            raise ConfigError(f"settings for reward {name!r} must be a mapping, got {kw!r}")
        funcs.append((name, get_reward_func(name, **kw)))
    return funcs, torch.tensor(weight_list, dtype=torch.float32)


def compute_rewards(
    funcs: Sequence[tuple[str, RewardFunc]],
    weights: torch.Tensor | Sequence[float],
    actions: torch.Tensor,
    labels: torch.Tensor,
    **kwargs: Any,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted sum of the reward functions' outputs, and each output by name.

    Every function is called as ``fn(actions, labels, **kwargs)``. Each output must be a tensor
    of shape ``actions.shape`` (B, G) with finite values; otherwise ``ValueError`` names the
    function, so that a broken user reward fails at the first step with its name rather than
    as a NaN loss later. Outputs are cast to float32; the total is
    ``sum_i weights[i] * rewards_i``, as TRL combines ``reward_weights``.

    >>> import torch
    >>> funcs, w = resolve_rewards(["correctness", "confidence"], [1.0, 2.0])
    >>> total, per = compute_rewards(funcs, w, torch.tensor([[0, 1]]), torch.tensor([0]),
    ...                              probs=torch.tensor([[0.75, 0.25]]))
    >>> per["confidence"].tolist(), total.tolist()
    ([[0.75, -0.25]], [[2.5, -0.5]])
    """
    if not isinstance(actions, torch.Tensor) or actions.dim() != 2:
        shape = (
            tuple(actions.shape) if isinstance(actions, torch.Tensor) else type(actions).__name__
        )
        raise ValueError(f"actions must be a (B, G) tensor, got {shape}")
    if not isinstance(labels, torch.Tensor) or tuple(labels.shape) != (actions.shape[0],):
        shape = tuple(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__
        raise ValueError(f"labels must be a ({actions.shape[0]},) tensor, got {shape}")
    w = torch.as_tensor(weights, dtype=torch.float32, device=actions.device).reshape(-1)
    if w.numel() != len(funcs):
        raise ValueError(f"got {w.numel()} reward weight(s) for {len(funcs)} reward function(s)")
    if not funcs:
        raise ValueError("no reward functions to compute")
    per_func: dict[str, torch.Tensor] = {}
    total = torch.zeros(actions.shape, dtype=torch.float32, device=actions.device)
    for i, (name, fn) in enumerate(funcs):
        out = fn(actions, labels, **kwargs)
        if not isinstance(out, torch.Tensor):
            raise ValueError(
                f"reward function {name!r} returned {type(out).__name__}, expected a tensor of "
                f"shape {tuple(actions.shape)}"
            )
        if tuple(out.shape) != tuple(actions.shape):
            raise ValueError(
                f"reward function {name!r} returned shape {tuple(out.shape)}, expected "
                f"{tuple(actions.shape)} (B, G)"
            )
        out = out.detach().to(device=actions.device, dtype=torch.float32)
        if not bool(torch.isfinite(out).all()):
            n_bad = int((~torch.isfinite(out)).sum())
            raise ValueError(
                f"reward function {name!r} returned {n_bad} non-finite value(s) (NaN/Inf)"
            )
        per_func[name] = out
        total = total + w[i] * out
    return total, per_func
