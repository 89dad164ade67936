"""Forgetting measures: before/after an evaluation suite, and continual-learning matrices.

The research question is whether RL fine-tuning (GRPO) forgets less than SFT, so we need
numbers that separate "got better where we trained" from "got worse where the starting
checkpoint was already good". Two views:

* :func:`forgetting_report` compares one fine-tuned checkpoint with its starting checkpoint on
  an *evaluation suite* whose sets have roles (:class:`SuiteSet`): ``"target"`` (the
  fine-tuning domain), ``"old"`` (domains the starting checkpoint was good at, i.e. what can be
  forgotten) and ``"ood"`` (out-of-domain, learned by neither). Only lower-is-better metrics
  (``eer``, ``min_dcf``, ``act_dcf``, ``cllr``, ``min_cllr``) are accepted, so that every
  ``delta = after - before`` reads the same way: positive = worse.
* :func:`backward_transfer`, :func:`average_forgetting` and :func:`forward_transfer` summarise a
  sequence of fine-tuning stages by the usual continual-learning matrix ``R`` (stage ``i``
  learns task ``i``; stage 0 may be the starting checkpoint with its own domain as task 0).

Sign conventions are fixed whatever the metric direction, so error matrices (our case) and
accuracy matrices can be compared directly: internally everything is turned into a
*performance* ``P = R`` (``higher_is_better=True``) or ``P = -R`` (error metrics), then

* ``backward_transfer < 0`` means forgetting,
* ``average_forgetting > 0`` means forgetting,
* ``forward_transfer > 0`` means learning earlier tasks helped later ones.

For an error matrix ``E`` and its accuracy counterpart ``1 - E`` all three give identical
values (the constant cancels in every difference).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "ROLES",
    "LOWER_IS_BETTER",
    "SuiteSet",
    "forgetting_report",
    "backward_transfer",
    "average_forgetting",
    "forward_transfer",
]

#: Valid roles of an evaluation-suite set.
ROLES: tuple[str, ...] = ("target", "old", "ood")

#: Metrics :func:`forgetting_report` accepts: all are errors/costs (lower = better), so a
#: positive ``after - before`` always means "worse". Accuracy-like metrics are refused rather
#: than silently given the opposite sign.
LOWER_IS_BETTER: frozenset[str] = frozenset({"eer", "min_dcf", "act_dcf", "cllr", "min_cllr"})


@dataclass(frozen=True)
class SuiteSet:
    """One evaluation set of a forgetting suite and its role (one of :data:`ROLES`)."""

    name: str
    role: str  # "target" | "old" | "ood"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"suite set name must be a non-empty string, got {self.name!r}")
        if self.role not in ROLES:
            raise ValueError(
                f"suite set {self.name!r} has role {self.role!r}; valid roles are "
                + ", ".join(repr(r) for r in ROLES)
            )


# --------------------------------------------------------------------------- before / after


def _as_suite(roles: Mapping[str, str] | Iterable[SuiteSet]) -> list[SuiteSet]:
    """Validated suite, in the given order; a ``{name: role}`` mapping or ``SuiteSet`` items."""
    if isinstance(roles, Mapping):
        suite = [SuiteSet(name, role) for name, role in roles.items()]
    else:
        suite = list(roles)
        for item in suite:
            if not isinstance(item, SuiteSet):
                raise ValueError(
                    f"roles must be a {{name: role}} mapping or SuiteSets, got {item!r}"
                )
        names = [s.name for s in suite]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"suite set(s) listed twice: {', '.join(dupes)}")
    if not suite:
        raise ValueError("the suite is empty: give at least one set with a role")
    return suite


def _value(table: Mapping[str, Mapping[str, float]], side: str, name: str, metric: str) -> float:
    if name not in table:
        raise ValueError(f"set {name!r} is missing from {side!r} (has: {sorted(table)})")
    row = table[name]
    if metric not in row:
        raise ValueError(f"metric {metric!r} is missing for set {name!r} in {side!r}")
    try:
        value = float(row[metric])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{side}[{name!r}][{metric!r}] is not a number: {row[metric]!r}") from exc
    if not math.isfinite(value):
        raise ValueError(f"{side}[{name!r}][{metric!r}] is not finite: {value}")
    return value


def _mean(values: list[float]) -> float | None:
    """Mean, or ``None`` for a role with no sets (JSON-friendly, unlike NaN)."""
    return float(np.mean(values)) if values else None


def forgetting_report(
    before: Mapping[str, Mapping[str, float]],
    after: Mapping[str, Mapping[str, float]],
    roles: Mapping[str, str] | Iterable[SuiteSet],
    metrics: Sequence[str] = ("eer", "min_dcf"),
) -> dict[str, Any]:
    """Per-set and per-role changes from the starting checkpoint (``before``) to ``after``.

    ``before`` / ``after`` map set name -> metric dict (e.g. :func:`score_metrics` rows; extra
    sets and extra metrics are ignored). ``roles`` is ``{set name: role}`` or an iterable of
    :class:`SuiteSet`; only the sets it names are reported, in its order.

    Only lower-is-better metrics (:data:`LOWER_IS_BETTER`) are accepted, so for every set
    ``delta = after - before`` and **positive delta = worse**. Per metric, the summary has:

    * ``target_gain``: mean of ``before - after`` over target sets (positive = improved where
      we fine-tuned; the sign is flipped on purpose, a gain should read positive);
    * ``old_mean_change``: mean signed ``delta`` over old sets (positive = worse on average;
      improvements on one old set can cancel forgetting on another);
    * ``average_forgetting``: mean of ``max(0, delta)`` over old sets, >= 0 - only damage
      counts, so an improvement elsewhere cannot hide forgetting on one set;
    * ``ood_mean_change``: mean signed ``delta`` over ood sets (positive = worse);
    * ``n_target`` / ``n_old`` / ``n_ood``: how many sets each mean is over.

    A role with no sets gets ``None`` for its summary values.

    Returns ``{"metrics": [...], "roles": {name: role}, "sets": {name: {metric: {"before",
    "after", "delta"}}}, "summary": {metric: {...}}}`` with plain Python floats.

    Raises ``ValueError`` for an unknown role, an empty suite, an unknown or higher-is-better
    metric, a set missing from ``before`` or ``after`` (the message names it), a missing metric
    or a non-finite value.
    """
    suite = _as_suite(roles)
    metrics = list(metrics)
    if not metrics:
        raise ValueError("no metrics given")
    for metric in metrics:
        if metric not in LOWER_IS_BETTER:
            raise ValueError(
                f"metric {metric!r} is not supported: forgetting_report needs lower-is-better "
                f"metrics, one of {sorted(LOWER_IS_BETTER)}"
            )
    if len(set(metrics)) != len(metrics):
        raise ValueError(f"metrics listed twice: {metrics}")

    sets: dict[str, dict[str, dict[str, float]]] = {}
    for s in suite:
        row = {}
        for metric in metrics:
            b = _value(before, "before", s.name, metric)
            a = _value(after, "after", s.name, metric)
            row[metric] = {"before": b, "after": a, "delta": a - b}
        sets[s.name] = row

    summary: dict[str, dict[str, Any]] = {}
    for metric in metrics:
        deltas = {
            role: [sets[s.name][metric]["delta"] for s in suite if s.role == role] for role in ROLES
        }
        summary[metric] = {
            "target_gain": _mean([-d for d in deltas["target"]]),
            "old_mean_change": _mean(deltas["old"]),
            "average_forgetting": _mean([max(0.0, d) for d in deltas["old"]]),
            "ood_mean_change": _mean(deltas["ood"]),
            "n_target": len(deltas["target"]),
            "n_old": len(deltas["old"]),
            "n_ood": len(deltas["ood"]),
        }

    return {
        "metrics": metrics,
        "roles": {s.name: s.role for s in suite},
        "sets": sets,
        "summary": summary,
    }


# --------------------------------------------------------------------------- CL matrices


def _performance(R, higher_is_better: bool, fn: str) -> np.ndarray:
    """``R`` validated (square, T >= 2, finite) and turned into performance (higher = better)."""
    try:
        arr = np.asarray(R, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{fn}: R must be a numeric matrix: {exc}") from exc
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(
            f"{fn}: R must be a square T x T matrix (R[i, j] = metric on task j after stage i), "
            f"got shape {arr.shape}"
        )
    if arr.shape[0] < 2:
        raise ValueError(f"{fn}: needs at least 2 stages (T >= 2), got T = {arr.shape[0]}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{fn}: R contains non-finite values (NaN/Inf)")
    return arr if higher_is_better else -arr


def backward_transfer(R, higher_is_better: bool = False) -> float:
    """Backward transfer (BWT) of Lopez-Paz & Ranzato (2017), GEM.

    D. Lopez-Paz and M. Ranzato, "Gradient Episodic Memory for Continual Learning",
    NeurIPS 2017, Sec. 2: with ``R[i, j]`` the test accuracy on task ``j`` after learning task
    ``i`` (``T x T``, stage ``i`` learns task ``i``),

        BWT = 1/(T-1) * sum_{i=1}^{T-1} (R_{T,i} - R_{i,i})        (1-indexed, as in the paper)
            = mean over i = 0..T-2 of (R[T-1, i] - R[i, i])       (0-indexed, as here)

    i.e. how much the final model's performance on each earlier task differs from the
    performance right after learning it (the last task has no "later" and is left out).

    ``R`` here is an error matrix by default (EER, minDCF, ...: lower = better); it is used as
    ``-R``, so **negative BWT = forgetting** in both directions and an error matrix ``E`` gives
    the same value as its accuracy counterpart ``1 - E`` with ``higher_is_better=True``.
    """
    P = _performance(R, higher_is_better, "backward_transfer")
    T = P.shape[0]
    idx = np.arange(T - 1)
    return float(np.mean(P[T - 1, idx] - P[idx, idx]))


def average_forgetting(R, higher_is_better: bool = False) -> float:
    """Final average forgetting of Chaudhry et al. (2018), RWalk.

    A. Chaudhry, P. K. Dokania, T. Ajanthan and P. H. S. Torr, "Riemannian Walk for
    Incremental Learning: Understanding Forgetting and Intransigence", ECCV 2018, Sec. 3:
    forgetting of task ``j`` after stage ``k`` is ``f_j^k = max_{l < k} a_{l,j} - a_{k,j}``
    and ``F_k`` is its mean over ``j < k``. Here ``k`` is the last stage (0-indexed)::

        f_j = max_{l in 0..T-2} P[l, j] - P[T-1, j],   F = mean over j = 0..T-2 of f_j

    with ``P`` the performance (``R``, or ``-R`` for error metrics). Unlike BWT, the reference
    is the *best* performance at any earlier stage, not the diagonal: a task that kept
    improving after it was learned and then dropped counts its whole drop, and so does one
    that was already better before its own stage (the max runs over all ``l <= T-2``, as in
    the paper). **Positive = forgot**; for error metrics ``f_j = R[T-1, j] - min_l R[l, j]``.
    As in the paper the ``f_j`` are not clipped, so a task whose final performance beats every
    earlier stage contributes a negative term.
    """
    P = _performance(R, higher_is_better, "average_forgetting")
    T = P.shape[0]
    best_earlier = P[: T - 1, : T - 1].max(axis=0)
    return float(np.mean(best_earlier - P[T - 1, : T - 1]))


def forward_transfer(R, baseline, higher_is_better: bool = False) -> float:
    """Forward transfer (FWT) of Lopez-Paz & Ranzato (2017), GEM.

    With ``b`` the performance of a reference model (in GEM: random initialisation) on each
    task, GEM defines (1-indexed) ``FWT = 1/(T-1) * sum_{i=2}^{T} (R_{i-1,i} - b_i)``; here,
    0-indexed, ``FWT = mean over i = 1..T-1 of (P[i-1, i] - P_b[i])``: how much better task
    ``i`` is handled *before* its own stage than by the reference. ``baseline`` has length
    ``T`` (``baseline[0]`` is unused, as ``b_1`` in the paper) and is in the same units and
    direction as ``R``; both are negated for error metrics, so **positive FWT = helpful
    transfer** in both directions.
    """
    P = _performance(R, higher_is_better, "forward_transfer")
    T = P.shape[0]
    try:
        b = np.asarray(baseline, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"forward_transfer: baseline must be numeric: {exc}") from exc
    if b.shape != (T,):
        raise ValueError(
            f"forward_transfer: baseline must have shape ({T},) to match R, got {b.shape}"
        )
    if not np.all(np.isfinite(b)):
        raise ValueError("forward_transfer: baseline contains non-finite values (NaN/Inf)")
    Pb = b if higher_is_better else -b
    idx = np.arange(1, T)
    return float(np.mean(P[idx - 1, idx] - Pb[idx]))
