"""Detection cost functions (minDCF, actDCF) with the ASVspoof 5 conventions.

Conventions of the ASVspoof 5 evaluation plan (https://www.asvspoof.org) and its evaluation
package (https://github.com/asvspoof-challenge/asvspoof5), as in ``rlspoof.metrics.eer``:

* A higher score means "more bonafide"; bonafide is the target class.
* Decision rule, shared with :func:`~rlspoof.metrics.eer.det_curve`: **accept as bonafide if
  score > threshold**. So FRR(t) = P(bona <= t) and FAR(t) = P(spoof > t).
  (The ASVspoof 5 evaluation package's actDCF accepts ``score >= threshold``; the two rules
  differ only for scores *exactly* equal to the threshold. We keep ``>`` so that the threshold
  returned by :func:`min_dcf`, fed to :func:`act_dcf`, reproduces minDCF exactly.)
* DCF(t) = (C_miss * FRR(t) * (1 - P_spoof) + C_fa * FAR(t) * P_spoof) / normaliser, with
  normaliser = min(C_miss * (1 - P_spoof), C_fa * P_spoof), so the better of the two trivial
  systems (accept all / reject all) costs exactly 1.

minDCF is the minimum over the DET curve (one sort, no loop over thresholds). Inside a group of
tied scores the curve walks the upper corner (bonafide first), and every point inside a tie
group costs strictly more than one of the group's ends, so the minimum is always reached at an
achievable threshold: minDCF equals a brute force over all unique thresholds, ties included.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rlspoof.metrics.eer import as_scores, det_curve

__all__ = ["DCFParams", "min_dcf", "act_dcf", "accuracy_at"]

ArrayLike = Sequence[float] | np.ndarray


@dataclass(frozen=True)
class DCFParams:
    """Cost model of the DCF; the defaults are the ASVspoof 5 values."""

    p_spoof: float = 0.05
    c_miss: float = 1.0
    c_fa: float = 10.0

    def __post_init__(self) -> None:
        if not 0.0 < self.p_spoof < 1.0:
            raise ValueError(f"p_spoof must be in (0, 1), got {self.p_spoof}")
        if self.c_miss <= 0 or self.c_fa <= 0:
            raise ValueError(f"costs must be positive, got c_miss={self.c_miss}, c_fa={self.c_fa}")

    @property
    def cost_ratio(self) -> float:
        """``c_miss * (1 - p_spoof) / (c_fa * p_spoof)`` (1.9 for ASVspoof 5; the evaluation
        plan's beta, named here apart from the KL and meta-test weights)."""
        return self.c_miss * (1.0 - self.p_spoof) / (self.c_fa * self.p_spoof)

    @property
    def normaliser(self) -> float:
        """``min(c_miss * (1 - p_spoof), c_fa * p_spoof)`` (0.5 for ASVspoof 5)."""
        return min(self.c_miss * (1.0 - self.p_spoof), self.c_fa * self.p_spoof)

    @property
    def bayes_threshold(self) -> float:
        """``-ln(cost_ratio)``: the Bayes decision threshold for natural-log LLR scores (~ -0.642)."""
        return -math.log(self.cost_ratio)

    def cost(self, frr, far):
        """Normalised DCF for miss rate(s) ``frr`` and false-alarm rate(s) ``far``."""
        miss_w = self.c_miss * (1.0 - self.p_spoof) / self.normaliser
        fa_w = self.c_fa * self.p_spoof / self.normaliser
        return miss_w * frr + fa_w * far


_DEFAULT = DCFParams()


def min_dcf(
    bonafide_scores: ArrayLike,
    spoof_scores: ArrayLike,
    params: DCFParams = _DEFAULT,
) -> tuple[float, float]:
    """Minimum normalised DCF over all thresholds, ``(min_dcf, threshold)``.

    The threshold realises the minimum under "accept if score > threshold" (so
    ``act_dcf(bona, spoof, params, threshold)`` returns the same value). Always in [0, 1]:
    accepting everything costs 1 with the ASVspoof 5 parameters. Raises ``ValueError`` on an
    empty class or NaN/Inf scores.
    """
    frr, far, thresholds = det_curve(bonafide_scores, spoof_scores, _metric="minDCF")
    dcf = params.cost(frr, far)
    i = int(np.argmin(dcf))
    return float(dcf[i]), float(thresholds[i])


def _error_rates(bona: np.ndarray, spoof: np.ndarray, threshold: float) -> tuple[float, float]:
    frr = np.count_nonzero(bona <= threshold) / bona.size
    far = np.count_nonzero(spoof > threshold) / spoof.size
    return frr, far


def act_dcf(
    bonafide_scores: ArrayLike,
    spoof_scores: ArrayLike,
    params: DCFParams = _DEFAULT,
    threshold: float | None = None,
) -> float:
    """Actual normalised DCF at a fixed threshold.

    Scores are taken as natural-log likelihood ratios (bonafide vs spoof); the default threshold
    is the Bayes threshold ``-ln(params.cost_ratio)`` (about -0.642 for ASVspoof 5). A trial is accepted
    as bonafide if ``score > threshold`` (see the module docstring). ``act_dcf >= min_dcf`` on the
    same scores, for any threshold. Raises ``ValueError`` on an empty class or NaN/Inf scores.
    """
    bona = as_scores(bonafide_scores, "bonafide", "actDCF")
    spoof = as_scores(spoof_scores, "spoof", "actDCF")
    t = params.bayes_threshold if threshold is None else float(threshold)
    if math.isnan(t):
        raise ValueError("actDCF threshold is NaN")
    frr, far = _error_rates(bona, spoof, t)
    return float(params.cost(frr, far))


def accuracy_at(
    bonafide_scores: ArrayLike,
    spoof_scores: ArrayLike,
    threshold: float = 0.0,
) -> float:
    """Fraction of trials classified correctly at ``threshold`` (bonafide if score > threshold).

    Pooled over trials (not class-balanced), so it depends on the class ratio. Raises
    ``ValueError`` on an empty class or NaN/Inf scores.
    """
    bona = as_scores(bonafide_scores, "bonafide", "accuracy")
    spoof = as_scores(spoof_scores, "spoof", "accuracy")
    t = float(threshold)
    if math.isnan(t):
        raise ValueError("accuracy threshold is NaN")
    correct = np.count_nonzero(bona > t) + np.count_nonzero(spoof <= t)
    return float(correct / (bona.size + spoof.size))
