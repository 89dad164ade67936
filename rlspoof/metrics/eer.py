"""Equal error rate with the ASVspoof 5 evaluation-package conventions.

Conventions, those of the ASVspoof 5 evaluation plan (Wang et al., 2024, "ASVspoof 5
evaluation plan", https://www.asvspoof.org) and its evaluation package
(https://github.com/asvspoof-challenge/asvspoof5, ``evaluation-package/calculate_metrics.py``):

* A higher score means "more bonafide"; bonafide is the target class.
* The DET curve is built from one stable sort of all scores, so it has ``n + 1`` points
  (``n`` = number of scores) and costs O(n log n) with no loop over thresholds.
* Among tied scores the bonafide trials come first (they are concatenated first and the sort
  is stable). A tie group therefore walks the curve through its *upper corner*: FRR rises to
  its post-group value before FAR falls. Consequences that surprise people and that our tests
  pin down: all-equal scores give EER 1.0 (not the 0.5 a library ROC curve interpolates), and
  perfectly inverted scores give EER 1.0.

``det_curve`` is the shared building block for the other ASVspoof metrics (minDCF etc.).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rlspoof.data.manifest import LABEL2ID, LABELS

__all__ = ["det_curve", "compute_eer", "compute_eer_from_labels"]

#: Offset below the lowest score for the first threshold (the "accept everything" point).
_FIRST_THRESHOLD_OFFSET = 0.001

BONAFIDE_ID = LABEL2ID[LABELS[0]]  # 0
SPOOF_ID = LABEL2ID[LABELS[1]]  # 1


def as_scores(values, name: str, metric: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} scores must be numbers: {exc}") from exc
    if arr.size == 0:
        raise ValueError(f"no {name} scores: {metric} needs both classes")
    bad = int(np.count_nonzero(~np.isfinite(arr)))
    if bad:
        raise ValueError(
            f"{name} scores contain {bad} non-finite value(s) (NaN/Inf); "
            f"{metric} needs finite scores"
        )
    return arr


def sorted_trials(bona: np.ndarray, spoof: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All scores in ascending order and a 0/1 int array marking the bonafide ones.

    Stable sort: among tied scores bonafide (concatenated first) stays before spoof, as in
    the ASVspoof packages; every sort-based metric here shares this one ordering.
    """
    scores = np.concatenate((bona, spoof))
    is_bona = np.zeros(scores.size, dtype=np.int64)
    is_bona[: bona.size] = 1
    order = np.argsort(scores, kind="mergesort")
    return scores[order], is_bona[order]


def det_curve(
    bonafide_scores: Sequence[float] | np.ndarray,
    spoof_scores: Sequence[float] | np.ndarray,
    *,
    _metric: str = "the DET curve",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False rejection / false acceptance rates over all thresholds.

    Returns ``(frr, far, thresholds)``, three float64 arrays of length ``n_bona + n_spoof + 1``.
    Point ``i`` is the operating point after rejecting the ``i`` lowest-scoring trials: with
    ``thresholds[i]`` as threshold and the rule "accept as bonafide if score > threshold",
    ``frr[i]`` is the fraction of bonafide rejected and ``far[i]`` the fraction of spoofs
    accepted (exact wherever ``thresholds[i]`` is not inside a group of tied scores).
    ``frr`` rises from 0 to 1 and ``far`` falls from 1 to 0; ``thresholds[0]`` is the lowest
    score minus 0.001.

    Raises ``ValueError`` if a class is empty or a score is NaN/Inf.
    """
    bona = as_scores(bonafide_scores, "bonafide", _metric)
    spoof = as_scores(spoof_scores, "spoof", _metric)
    n_bona, n_spoof = bona.size, spoof.size

    sorted_scores, sorted_is_bona = sorted_trials(bona, spoof)
    bona_below = np.cumsum(sorted_is_bona)  # bonafide among the k lowest scores
    spoof_below = np.arange(1, sorted_scores.size + 1) - bona_below

    n = sorted_scores.size + 1
    frr, far, thresholds = np.empty(n), np.empty(n), np.empty(n)
    frr[0], far[0] = 0.0, 1.0
    frr[1:] = bona_below / n_bona
    far[1:] = (n_spoof - spoof_below) / n_spoof
    thresholds[0] = sorted_scores[0] - _FIRST_THRESHOLD_OFFSET
    thresholds[1:] = sorted_scores
    return frr, far, thresholds


def compute_eer(
    bonafide_scores: Sequence[float] | np.ndarray,
    spoof_scores: Sequence[float] | np.ndarray,
) -> tuple[float, float]:
    """Equal error rate and its threshold, ``(eer, threshold)``; EER is a fraction in [0, 1].

    The EER point is the first DET point minimising ``|frr - far|``; the EER is the mean of the
    two rates there (ASVspoof 5 definition). Raises ``ValueError`` on an empty class or NaN/Inf.
    """
    frr, far, thresholds = det_curve(bonafide_scores, spoof_scores, _metric="EER")
    i = int(np.argmin(np.abs(frr - far)))
    return float(0.5 * (frr[i] + far[i])), float(thresholds[i])


def python_scalar(value):
    """numpy scalar -> Python scalar, so messages read 'fake' rather than np.str_('fake')."""
    return value.item() if isinstance(value, np.generic) else value


def as_label_ids(labels, n: int) -> np.ndarray:
    arr = np.asarray(labels).ravel()
    if arr.size != n:
        raise ValueError(f"got {n} scores but {arr.size} labels")
    if arr.dtype.kind in "USO":  # strings (or a mixed object array)
        ids = np.full(arr.size, -1, dtype=np.int64)
        for name, idx in LABEL2ID.items():
            ids[arr == name] = idx
        bad = arr[ids < 0]
        if bad.size:
            raise ValueError(
                f"unknown label {python_scalar(bad[0])!r}: expected one of {list(LABELS)} "
                f"or the ints {BONAFIDE_ID} ({LABELS[0]}) / {SPOOF_ID} ({LABELS[1]})"
            )
        return ids
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"labels must be ints or strings, not {arr.dtype}")
    bad_mask = (arr != BONAFIDE_ID) & (arr != SPOOF_ID)
    if np.any(bad_mask):
        raise ValueError(
            f"unknown label {python_scalar(arr[bad_mask][0])!r}: expected {BONAFIDE_ID} ({LABELS[0]}) "
            f"or {SPOOF_ID} ({LABELS[1]})"
        )
    return arr.astype(np.int64)


def compute_eer_from_labels(
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[int] | Sequence[str] | np.ndarray,
) -> tuple[float, float]:
    """``compute_eer`` on one score array plus labels, in the order of ``LABELS``.

    ``labels`` holds ints (0 = bonafide, 1 = spoof) or the strings "bonafide" / "spoof".
    """
    score_arr = np.asarray(scores, dtype=np.float64).ravel()
    ids = as_label_ids(labels, score_arr.size)
    return compute_eer(score_arr[ids == BONAFIDE_ID], score_arr[ids == SPOOF_ID])
