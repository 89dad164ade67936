"""Calibration metrics: Cllr and minCllr (scores are natural-log likelihood ratios).

``cllr`` is the ASVspoof 5 definition (evaluation plan, https://www.asvspoof.org; Brümmer and
du Preez, 2006, "Application-independent evaluation of speaker detection")::

    Cllr = 0.5 * (mean(log1p(exp(-s_bona))) + mean(log1p(exp(s_spoof)))) / ln 2

in bits: 0 for a perfect, confident system, exactly 1 for the uninformative system that always
outputs LLR 0, and unbounded above for confidently wrong scores.

``min_cllr`` is the Cllr after the best monotone (order-preserving) recalibration of the scores,
so it measures discrimination only; ``cllr - min_cllr`` is the calibration loss.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rlspoof.metrics.eer import as_scores, sorted_trials

__all__ = ["cllr", "min_cllr", "pav_llrs"]

ArrayLike = Sequence[float] | np.ndarray

#: |LLR| cap for PAV outputs of pure blocks (posterior exactly 0 or 1 -> +-inf). A pure block
#: holds one class only, so the capped value only enters the cost on its "right" side, where
#: log1p(exp(-1000)) is exactly 0 in float64: the cap changes nothing but avoids inf/NaN.
_LLR_CLIP = 1000.0

_INV_LN2 = 1.0 / math.log(2.0)


def _cllr(bona: np.ndarray, spoof: np.ndarray) -> float:
    # log2(1 + exp(x)) == logaddexp2(0, x / ln 2): stable for any x, and exactly 1 at x = 0,
    # so the all-zero system gives Cllr == 1.0 exactly (no rounding from dividing by ln 2).
    c_bona = np.mean(np.logaddexp2(0.0, -bona * _INV_LN2))
    c_spoof = np.mean(np.logaddexp2(0.0, spoof * _INV_LN2))
    return float(0.5 * (c_bona + c_spoof))


def cllr(bonafide_scores: ArrayLike, spoof_scores: ArrayLike) -> float:
    """Log-likelihood-ratio cost in bits (ASVspoof 5 definition, see the module docstring).

    Scores must be natural-log LLRs (bonafide vs spoof). Computed stably: no overflow for large
    |scores| (``exp`` is never evaluated directly). Raises ``ValueError`` on an empty class or
    NaN/Inf scores.
    """
    bona = as_scores(bonafide_scores, "bonafide", "Cllr")
    spoof = as_scores(spoof_scores, "spoof", "Cllr")
    return _cllr(bona, spoof)


def _isotonic(y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    try:
        from scipy.optimize import isotonic_regression
    except ImportError as exc:  # pragma: no cover - depends on the installed scipy
        raise ImportError(
            "min_cllr needs scipy >= 1.12 (scipy.optimize.isotonic_regression)"
        ) from exc
    return isotonic_regression(y, weights=weights, increasing=True).x


def _pav_llrs(bona: np.ndarray, spoof: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n_bona, n_spoof = bona.size, spoof.size
    sorted_scores, sorted_is_bona = sorted_trials(bona, spoof)
    # Tied scores form one block: a monotone map must give them one value.
    starts = np.flatnonzero(np.diff(sorted_scores, prepend=-np.inf) > 0)
    n_group = np.diff(np.append(starts, sorted_scores.size))
    bona_group = np.add.reduceat(sorted_is_bona.astype(np.float64), starts)
    posterior = _isotonic(bona_group / n_group, n_group.astype(np.float64))
    with np.errstate(divide="ignore"):
        log_odds = np.log(posterior) - np.log1p(-posterior)
    llr = np.clip(log_odds - math.log(n_bona / n_spoof), -_LLR_CLIP, _LLR_CLIP)
    n_bona_group = bona_group.astype(np.int64)
    return np.repeat(llr, n_bona_group), np.repeat(llr, n_group - n_bona_group)


def pav_llrs(bonafide_scores: ArrayLike, spoof_scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """The optimally recalibrated LLRs behind :func:`min_cllr`, ``(bona_llrs, spoof_llrs)``.

    Each output array is sorted by the original score (not in input order). Raises
    ``ValueError`` on an empty class or NaN/Inf scores.
    """
    bona = as_scores(bonafide_scores, "bonafide", "PAV calibration")
    spoof = as_scores(spoof_scores, "spoof", "PAV calibration")
    return _pav_llrs(bona, spoof)


def min_cllr(bonafide_scores: ArrayLike, spoof_scores: ArrayLike) -> float:
    """Cllr after the optimal monotone recalibration (pool-adjacent-violators, PAV).

    How it is computed:

    1. Sort all trials by score once; tied scores are merged into one block (weight = block
       size, target = fraction of bonafide in it), since a monotone map must treat them alike.
    2. ``scipy.optimize.isotonic_regression`` (PAV) fits the non-decreasing sequence closest to
       the 0/1 bonafide labels in weighted least squares. Its solution is simultaneously the
       optimum of *every* proper scoring rule among monotone maps, logarithmic loss included,
       so it is the optimal monotone posterior P(bonafide | score) on this data.
    3. Posteriors carry the empirical prior; removing the prior log-odds
       ``ln(n_bona / n_spoof)`` from ``logit(posterior)`` turns them into LLRs. Pure blocks give
       posterior 0 or 1 (LLR -+inf): the LLRs are clipped to +-1000, which changes no cost.
    4. minCllr = ``cllr`` of those LLRs.

    Depends only on the order (and ties) of the scores, so it is invariant to strictly
    increasing transforms, and ``min_cllr <= cllr`` (the identity is one monotone map). Needs
    scipy >= 1.12. Raises ``ValueError`` on an empty class or NaN/Inf scores.
    """
    bona = as_scores(bonafide_scores, "bonafide", "minCllr")
    spoof = as_scores(spoof_scores, "spoof", "minCllr")
    return _cllr(*_pav_llrs(bona, spoof))
