"""Waveform augmentation from recipe specs: the registry of augmentations and ``Augmenter``.

The augmentations are the pure waveform functions of :mod:`rlspoof.data.channels` (noise,
band limits, codecs, reverberation) and :mod:`rlspoof.data.rawboost`. ``Augmenter`` composes
them from config specs such as
``[{"name": "rawboost", "p": 0.5, "algo": 3}, {"name": "noise", "p": 0.3, "snr_db": [5, 20]}]``
where a two-element list for a numeric parameter is a range drawn from on every call.
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlspoof.data.channels import (
    DEFAULT_SAMPLE_RATE,
    add_noise,
    band_limit,
    mu_law,
    resample_chain,
    reverb,
    telephone,
)
from rlspoof.data.rawboost import rawboost, resolve_params
from rlspoof.errors import AugmentConfigError

AugmentFn = Callable[..., np.ndarray]


# --- registry and composition ----------------------------------------------------------------

AUGMENTATIONS: dict[str, AugmentFn] = {
    "rawboost": rawboost,
    "noise": add_noise,
    "band_limit": band_limit,
    "mu_law": mu_law,
    "resample_chain": resample_chain,
    "telephone": telephone,
    "reverb": reverb,
}

_RESERVED = ("wave", "rng", "sample_rate")


def _params_of(fn: AugmentFn) -> dict[str, inspect.Parameter]:
    sig = inspect.signature(fn)
    return {k: v for k, v in sig.parameters.items() if k not in _RESERVED}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _is_finite(v: Any) -> bool:
    """NaN, Inf and integers beyond float range (YAML reads 1e400 digits as an int) are not."""
    try:
        return math.isfinite(float(v))
    except OverflowError:
        return False


@dataclass(frozen=True)
class _Step:
    name: str
    fn: AugmentFn
    p: float
    fixed: dict[str, Any]
    ranges: dict[str, tuple[float, float, bool]]  # name -> (low, high, integer)


class Augmenter:
    """A chain of augmentations, each applied with its own probability ``p`` (default 1).

    ``specs`` is a list of dicts: ``name`` (a key of ``AUGMENTATIONS``), optional ``p`` and the
    function's keyword parameters. A two-element list ``[low, high]`` for a numeric parameter is
    drawn uniformly on each call (an integer in [low, high] inclusive where the parameter's
    default is an int, e.g. RawBoost ``algo``; a float otherwise).

    Every spec is tried once when the augmenter is built (``_try``), so a bad value fails then,
    naming the spec, rather than in a DataLoader worker at the first batch of a training run.
    """

    def __init__(
        self,
        specs: Sequence[Mapping[str, Any]] | None = None,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
    ):
        self.sample_rate = int(sample_rate)
        self.specs = [dict(s) if isinstance(s, Mapping) else s for s in (specs or [])]
        self.steps = [self._build(i, s) for i, s in enumerate(self.specs)]
        for index, step in enumerate(self.steps):
            self._try(index, step)

    @classmethod
    def from_config(
        cls, config: Sequence[Mapping[str, Any]] | None, sample_rate: int = DEFAULT_SAMPLE_RATE
    ) -> Augmenter:
        """An augmenter from a config list; ``None`` or ``[]`` gives the identity."""
        if config is not None and (
            isinstance(config, (str, Mapping)) or not isinstance(config, Sequence)
        ):
            raise AugmentConfigError(
                f"augmentation config must be a list of specs, got {type(config).__name__}"
            )
        return cls(config, sample_rate=sample_rate)

    @staticmethod
    def _build(index: int, spec: Mapping[str, Any]) -> _Step:
        if not isinstance(spec, Mapping):
            raise AugmentConfigError(f"augmentation spec #{index} must be a mapping, got {spec!r}")
        if "name" not in spec:
            raise AugmentConfigError(f"augmentation spec #{index} has no 'name': {dict(spec)}")
        name = str(spec["name"])
        if name not in AUGMENTATIONS:
            valid = sorted(AUGMENTATIONS)
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise AugmentConfigError(f"unknown augmentation {name!r}{hint}; valid names: {valid}")
        fn = AUGMENTATIONS[name]
        p = spec.get("p", 1.0)
        if not _is_number(p) or not 0.0 <= float(p) <= 1.0:
            raise AugmentConfigError(f"augmentation {name!r}: p must be in [0, 1], got {p!r}")
        accepted = _params_of(fn)
        fixed: dict[str, Any] = {}
        ranges: dict[str, tuple[float, float, bool]] = {}
        for key, value in spec.items():
            if key in ("name", "p"):
                continue
            if key not in accepted:
                close = difflib.get_close_matches(key, list(accepted), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise AugmentConfigError(
                    f"augmentation {name!r} has no parameter {key!r}{hint}; "
                    f"valid parameters: {sorted(accepted)}"
                )
            if isinstance(value, (list, tuple)):
                if len(value) != 2 or not all(_is_number(v) and _is_finite(v) for v in value):
                    raise AugmentConfigError(
                        f"augmentation {name!r}: a list for {key!r} must be a numeric range "
                        f"[low, high] of finite numbers, got {value!r}"
                    )
                low, high = float(value[0]), float(value[1])
                if low > high:
                    raise AugmentConfigError(
                        f"augmentation {name!r}: range for {key!r} has low > high: {value!r}"
                    )
                default = accepted[key].default
                integer = isinstance(default, int) and not isinstance(default, bool)
                if integer and np.ceil(low) > np.floor(high):
                    raise AugmentConfigError(
                        f"augmentation {name!r}: range for integer {key!r} holds no integer: {value!r}"
                    )
                ranges[key] = (low, high, integer)
            else:
                if _is_number(value) and not _is_finite(value):
                    raise AugmentConfigError(f"augmentation {name!r}: {key} must be finite, got {value!r}")
                fixed[key] = value
        if name == "rawboost" and "params" in fixed:
            try:  # fail at build time, not mid-run
                fixed["params"] = resolve_params(fixed["params"])
            except (TypeError, ValueError) as exc:
                raise AugmentConfigError(f"augmentation {name!r}: params: {exc}") from None
        return _Step(name, fn, float(p), fixed, ranges)

    def _try(self, index: int, step: _Step) -> None:
        """Run ``step`` on 0.1 s of a test tone, once with every range at its low end and once
        at its high end: a value the function refuses (text for a number, RawBoost algo 9, a
        negative rt60) is an AugmentConfigError naming the spec."""
        wave = (0.1 * np.sin(np.arange(max(2, self.sample_rate // 10)) * 0.3)).astype(np.float32)
        for end in (0, 1):
            kwargs = dict(step.fixed)
            for key, (low, high, integer) in step.ranges.items():
                value = (low, high)[end]
                kwargs[key] = (int(np.ceil(value)) if end == 0 else int(np.floor(value))) if integer else value
            try:
                step.fn(wave, np.random.default_rng(0), sample_rate=self.sample_rate, **kwargs)
            except (TypeError, ValueError, ArithmeticError) as exc:
                raise AugmentConfigError(f"augmentation spec #{index} ({step.name}): {exc}") from None

    def __call__(self, wave: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        y = np.array(wave, dtype=np.float32, copy=True)
        for step in self.steps:
            if rng.random() >= step.p:
                continue
            kwargs = dict(step.fixed)
            for key, (low, high, integer) in step.ranges.items():
                if integer:
                    kwargs[key] = int(rng.integers(int(np.ceil(low)), int(np.floor(high)) + 1))
                else:
                    kwargs[key] = float(rng.uniform(low, high))
            y = step.fn(y, rng, sample_rate=self.sample_rate, **kwargs)
        return y

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        return f"Augmenter({self.specs!r}, sample_rate={self.sample_rate})"


__all__ = ["AUGMENTATIONS", "AugmentConfigError", "Augmenter"]
