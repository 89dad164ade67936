"""Distribution drift between a reference set and incoming data (scores or embeddings).

A detector deployed on new audio (a new channel, codec or attack family) can fail without any
labels to show it: the first visible symptom is that its scores or embeddings no longer look
like those of the data it was validated on. This module measures that shift with the
Wasserstein-1 (earth mover's) distance, which

* is in the units of the data (for scores: log-odds), so "the scores moved by 0.8 on average"
  reads directly, unlike a KS statistic or a KL divergence;
* stays finite and meaningful for non-overlapping samples (where KL is infinite) and for
  samples of different sizes;
* equals ``|t|`` exactly for a pure translation by ``t``, and is at least the difference of
  the means, so a shift of the operating point is never hidden.

Scores (1-D) use :func:`scipy.stats.wasserstein_distance`. Embeddings (N, D) use the *sliced*
W1: the average 1-D W1 of the two clouds projected on random unit directions (exact N-D W1 is a
transport LP, far too slow for real clouds). A distance alone does not say whether a shift is
larger than sampling noise, so :func:`detect_drift` alerts against either a threshold in those
units (set from data with :func:`calibrate_threshold`) or a permutation-test p-value
(:func:`permutation_pvalue`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "score_drift",
    "sliced_wasserstein",
    "permutation_pvalue",
    "DriftResult",
    "detect_drift",
    "calibrate_threshold",
]

ArrayLike = Sequence[float] | np.ndarray
Statistic = Callable[[np.ndarray, np.ndarray], float]


def _stats():
    """``scipy.stats``, imported on first use: it takes about a second to import, which
    nothing else in ``rlspoof.metrics`` pays."""
    from scipy import stats

    return stats


def _as_numbers(values, name: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numbers: {exc}") from exc


def _checked_finite(arr: np.ndarray, name: str) -> np.ndarray:
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        raise ValueError(f"{name} contains {bad} non-finite value(s) (NaN/Inf)")
    return arr


def _as_sample(values, name: str) -> np.ndarray:
    """A non-empty finite 1-D float64 array; a 2-D input is refused, not flattened (flattening
    an (N, D) embedding array would silently mix its dimensions into one score sample)."""
    arr = _as_numbers(values, name)
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D score sample, got shape {arr.shape}; "
            "for (N, D) embeddings use sliced_wasserstein"
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty: drift needs at least one value on each side")
    return _checked_finite(arr, name)


def _as_cloud(values, name: str) -> np.ndarray:
    """A finite (N, D) float64 array with N >= 1 and D >= 1."""
    arr = _as_numbers(values, name)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be an (N, D) embedding array, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    return _checked_finite(arr, name)


def _as_data(values, name: str) -> np.ndarray:
    """1-D scores or 2-D embeddings, validated by the matching helper."""
    ndim = np.ndim(values)
    if ndim == 1:
        return _as_sample(values, name)
    if ndim == 2:
        return _as_cloud(values, name)
    raise ValueError(f"{name} must be 1-D scores or (N, D) embeddings, got {ndim} dimension(s)")


def score_drift(reference: ArrayLike, incoming: ArrayLike) -> float:
    """Wasserstein-1 distance between two 1-D score samples, in score units.

    The average distance each score must move to turn one empirical distribution into the
    other (the area between the two empirical CDFs). Sizes may differ. Raises ``ValueError``
    on an empty sample, NaN/Inf, or a non-1-D input.
    """
    ref = _as_sample(reference, "reference")
    inc = _as_sample(incoming, "incoming")
    return float(_stats().wasserstein_distance(ref, inc))


def _unit_directions(n_projections: int, dim: int, seed: int) -> np.ndarray:
    """(n_projections, dim) directions uniform on the unit sphere (normalised Gaussians)."""
    n_projections = _check_count(n_projections, "n_projections")
    g = np.random.default_rng(seed).standard_normal((n_projections, dim))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


def sliced_wasserstein(
    reference_emb: np.ndarray,
    incoming_emb: np.ndarray,
    n_projections: int = 128,
    seed: int = 0,
) -> float:
    """Sliced Wasserstein-1 distance between an (N, D) and an (M, D) embedding cloud.

    Both clouds are projected on ``n_projections`` random unit directions (uniform on the
    sphere, drawn from ``seed``); the result is the mean of the 1-D W1 of the projections.
    It is a Monte-Carlo estimate of E_u[W1(<u, X>, <u, Y>)]: the same seed gives the same
    directions, so two calls with one seed are comparable. It never exceeds the full N-D W1
    (a projection is 1-Lipschitz) and, for a cloud translated by ``t``, equals the mean of
    ``|<u, t>|`` over the directions (``|t|`` when D = 1).

    Hand-written because scipy has no sliced variant: ``scipy.stats.wasserstein_distance_nd``
    solves the full transport LP (an N x M plan), which is impractical for thousands of
    embeddings; each 1-D slice does use ``scipy.stats.wasserstein_distance``.
    """
    ref = _as_cloud(reference_emb, "reference_emb")
    inc = _as_cloud(incoming_emb, "incoming_emb")
    if ref.shape[1] != inc.shape[1]:
        raise ValueError(
            f"embedding dimensions differ: reference has D={ref.shape[1]}, "
            f"incoming has D={inc.shape[1]}"
        )
    directions = _unit_directions(n_projections, ref.shape[1], seed)
    ref_proj, inc_proj = ref @ directions.T, inc @ directions.T
    w1 = _stats().wasserstein_distance
    per_slice = [w1(ref_proj[:, k], inc_proj[:, k]) for k in range(directions.shape[0])]
    return float(np.mean(per_slice))


def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return int(value)


def permutation_pvalue(
    reference: ArrayLike | np.ndarray,
    incoming: ArrayLike | np.ndarray,
    statistic: Statistic = score_drift,
    n_permutations: int = 200,
    seed: int = 0,
) -> float:
    """One-sided permutation p-value of ``statistic(reference, incoming)``.

    Null hypothesis: the two samples are exchangeable (drawn from one distribution). The rows
    of both are pooled, reshuffled ``n_permutations`` times and split back into groups of the
    original sizes; p = (1 + #{permuted >= observed}) / (1 + n_permutations), so it is never 0
    (a p-value of 0 would claim certainty no finite test has) and is at least
    ``1 / (n_permutations + 1)``. When there are no more distinct splits than permutations
    (tiny samples), the exact test over all splits is used instead.

    Works for 1-D scores with :func:`score_drift` and for (N, D) embeddings with
    ``statistic=sliced_wasserstein`` (rows are the exchangeable units); any
    ``f(a, b) -> float`` where larger means "more different" works. Keep a random statistic
    deterministic (e.g. the default ``seed`` of :func:`sliced_wasserstein`), or the null
    distribution mixes in its own noise.

    Uses ``scipy.stats.permutation_test`` on the *row indices* of the pooled data, so that
    scipy's test (exact enumeration, floating-point tie tolerance) serves multivariate rows,
    which it would otherwise treat column by column.
    """
    n_permutations = _check_count(n_permutations, "n_permutations")
    ref = _as_data(reference, "reference")
    inc = _as_data(incoming, "incoming")
    if ref.ndim != inc.ndim or ref.shape[1:] != inc.shape[1:]:
        raise ValueError(f"reference and incoming do not match: shapes {ref.shape} and {inc.shape}")
    pooled = np.concatenate((ref, inc))
    n_ref = ref.shape[0]

    def on_indices(i: np.ndarray, j: np.ndarray) -> float:
        return statistic(pooled[i], pooled[j])

    result = _stats().permutation_test(
        (np.arange(n_ref), np.arange(n_ref, pooled.shape[0])),
        on_indices,
        permutation_type="independent",
        vectorized=False,
        n_resamples=n_permutations,
        alternative="greater",
        random_state=np.random.default_rng(seed),  # `rng=` only exists from scipy 1.15
    )
    return float(result.pvalue)


@dataclass
class DriftResult:
    """Outcome of :func:`detect_drift`; ``kind`` is ``"score"`` (1-D) or ``"embedding"``."""

    distance: float
    threshold: float | None
    p_value: float | None
    alert: bool
    n_reference: int
    n_incoming: int
    kind: str

    def to_dict(self) -> dict[str, Any]:
        """Plain-Python dict (JSON-serialisable) for logs and reports."""
        return dataclasses.asdict(self)


def _statistic_for(ndim: int, n_projections: int, seed: int) -> tuple[Statistic, str]:
    """The distance for 1-D scores or (N, D) embeddings, and its ``DriftResult.kind``."""
    if ndim == 1:
        return score_drift, "score"
    sliced = functools.partial(sliced_wasserstein, n_projections=n_projections, seed=seed)
    return sliced, "embedding"


def detect_drift(
    reference: ArrayLike | np.ndarray,
    incoming: ArrayLike | np.ndarray,
    threshold: float | None = None,
    alpha: float | None = None,
    n_permutations: int = 200,
    seed: int = 0,
    *,
    n_projections: int = 128,
) -> DriftResult:
    """Measure drift of ``incoming`` from ``reference`` and decide whether to alert.

    1-D inputs are score samples (:func:`score_drift`); (N, D) inputs are embedding clouds
    (:func:`sliced_wasserstein` with ``n_projections`` directions from ``seed``). Alert when
    ``distance > threshold`` (if ``threshold`` is given) **or** ``p_value < alpha`` (if
    ``alpha`` is given); the p-value comes from :func:`permutation_pvalue` and is only
    computed (and reported) when ``alpha`` is set.

    With neither set the result only measures (``alert`` is False): a raw W1 has no
    universal "too large" value. It is in the units of the scores, which differ between
    models and calibrations, and even two samples of one distribution are at a distance of
    order ``1 / sqrt(n)``, so any fixed cutoff is either blind on large batches or
    alarmist on small ones. Set ``threshold`` from :func:`calibrate_threshold` (same units,
    same sample sizes) or ``alpha`` for a size-aware test.
    """
    ref = _as_data(reference, "reference")
    inc = _as_data(incoming, "incoming")
    if ref.ndim != inc.ndim or ref.shape[1:] != inc.shape[1:]:
        raise ValueError(f"reference and incoming do not match: shapes {ref.shape} and {inc.shape}")
    if threshold is not None:
        threshold = float(threshold)
        if not np.isfinite(threshold) or threshold < 0:
            raise ValueError(f"threshold must be a finite distance >= 0, got {threshold}")
    if alpha is not None:
        alpha = float(alpha)
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    n_permutations = _check_count(n_permutations, "n_permutations")

    statistic, kind = _statistic_for(ref.ndim, n_projections, seed)
    distance = statistic(ref, inc)
    p_value = None
    if alpha is not None:
        p_value = permutation_pvalue(ref, inc, statistic, n_permutations, seed)
    alert = (threshold is not None and distance > threshold) or (
        p_value is not None and p_value < alpha
    )
    return DriftResult(
        distance=distance,
        threshold=threshold,
        p_value=p_value,
        alert=bool(alert),
        n_reference=int(ref.shape[0]),
        n_incoming=int(inc.shape[0]),
        kind=kind,
    )


def calibrate_threshold(
    reference: ArrayLike | np.ndarray,
    n_splits: int = 50,
    quantile: float = 0.95,
    seed: int = 0,
    *,
    n_incoming: int | None = None,
    n_projections: int = 128,
) -> float:
    """A drift threshold read off the reference data itself, in the distance's own units.

    The reference is split at random ``n_splits`` times into two parts and the distance
    between the parts is computed each time: that is the distance sampling noise alone
    produces when nothing has drifted. The ``quantile`` of those distances is the threshold,
    so ``detect_drift(..., threshold=t)`` raises a false alert on undrifted data roughly
    ``1 - quantile`` of the time, and nobody has to guess what "0.3 log-odds" means.

    By default the parts are halves. Noise grows as ``sqrt(1/n_a + 1/n_b)``, so halves
    match comparing the reference with an incoming batch of about the same size (and are
    conservative for larger batches); when batches are much smaller than the reference, pass
    ``n_incoming`` (the batch size) to split off parts of that size instead, or the
    threshold will be too low and alert on noise. For embeddings use the same ``seed`` and
    ``n_projections`` as :func:`detect_drift`, so the same directions are used.
    """
    n_splits = _check_count(n_splits, "n_splits")
    if not 0.0 < quantile <= 1.0:
        raise ValueError(f"quantile must be in (0, 1], got {quantile}")
    ref = _as_data(reference, "reference")
    n = ref.shape[0]
    if n < 2:
        raise ValueError(f"reference needs at least 2 rows to split, got {n}")
    if n_incoming is None:
        cut = n // 2
    else:
        cut = _check_count(n_incoming, "n_incoming")
        if cut >= n:
            raise ValueError(f"n_incoming must be smaller than the reference ({n} rows), got {cut}")

    statistic, _ = _statistic_for(ref.ndim, n_projections, seed)
    rng = np.random.default_rng(seed)
    distances = np.empty(n_splits)
    for s in range(n_splits):
        order = rng.permutation(n)
        distances[s] = statistic(ref[order[cut:]], ref[order[:cut]])
    return float(np.quantile(distances, quantile))
