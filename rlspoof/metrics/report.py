"""Metric tables: all ASVspoof 5 metrics at once, per-attack / per-source tables, bootstrap CIs.

Scores follow the package convention (higher = more bonafide); labels are ints
(0 = bonafide, 1 = spoof) or the strings "bonafide" / "spoof". actDCF and Cllr treat the
scores as natural-log LLRs; for uncalibrated scores they are still reported (as ASVspoof does)
and then mostly measure miscalibration.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from rlspoof.metrics.calibration import cllr, min_cllr
from rlspoof.metrics.dcf import DCFParams, act_dcf, min_dcf
from rlspoof.metrics.eer import (
    BONAFIDE_ID,
    SPOOF_ID,
    as_label_ids,
    as_scores,
    compute_eer,
    python_scalar,
)

__all__ = [
    "mean_ci",
    "score_metrics",
    "grouped_metrics",
    "bootstrap_ci",
    "paired_bootstrap_diff",
    "compute_metrics_for_trainer",
    "load_evaluate_metric",
    "METRICS",
    "POOLED",
]

_DEFAULT = DCFParams()

#: Key of the all-trials row in :func:`grouped_metrics`.
POOLED = "pooled"

#: Scalar metrics by name, each ``f(bona, spoof) -> float`` (default DCF parameters).
METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "eer": lambda b, s: compute_eer(b, s)[0],
    "min_dcf": lambda b, s: min_dcf(b, s)[0],
    "act_dcf": lambda b, s: act_dcf(b, s),
    "cllr": cllr,
    "min_cllr": min_cllr,
}


def split_by_label(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scores, bonafide mask, spoof mask); labels validated by the eer.py helper."""
    score_arr = np.asarray(scores, dtype=np.float64).ravel()
    ids = as_label_ids(labels, score_arr.size)
    return score_arr, ids == BONAFIDE_ID, ids == SPOOF_ID


def _metrics(bona: np.ndarray, spoof: np.ndarray, params: DCFParams) -> dict[str, Any]:
    bona = as_scores(bona, "bonafide", "score_metrics")
    spoof = as_scores(spoof, "spoof", "score_metrics")
    eer, eer_threshold = compute_eer(bona, spoof)
    return {
        "eer": eer,
        "eer_threshold": eer_threshold,
        "min_dcf": min_dcf(bona, spoof, params)[0],
        "act_dcf": act_dcf(bona, spoof, params),
        "cllr": cllr(bona, spoof),
        "min_cllr": min_cllr(bona, spoof),
        "n_bonafide": int(bona.size),
        "n_spoof": int(spoof.size),
    }


def score_metrics(
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[int] | Sequence[str] | np.ndarray,
    params: DCFParams = _DEFAULT,
) -> dict[str, Any]:
    """All metrics for one trial list.

    Returns ``{"eer", "eer_threshold", "min_dcf", "act_dcf", "cllr", "min_cllr",
    "n_bonafide", "n_spoof"}`` (rates as fractions, Cllr in bits, counts as ints). Raises
    ``ValueError`` on bad labels, an empty class or NaN/Inf scores.
    """
    score_arr, is_bona, is_spoof = split_by_label(scores, labels)
    return _metrics(score_arr[is_bona], score_arr[is_spoof], params)


def grouped_metrics(
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[int] | Sequence[str] | np.ndarray,
    groups: Sequence[Hashable] | np.ndarray,
    pooled: bool = True,
    params: DCFParams = _DEFAULT,
) -> dict[Hashable, dict[str, Any]]:
    """:func:`score_metrics` per group (attack, source corpus, codec, ...).

    ``groups`` gives one group per trial. Which bonafide trials a group is scored against:

    * a group with **only spoofs** (an attack; ASVspoof gives bonafide rows the attack "-"):
      ALL bonafide trials vs that group's spoofs - the ASVspoof per-attack convention;
    * a group with **both classes** (e.g. a source corpus): its own bonafide vs its own spoofs;
    * a group with **only bonafide** (such as "-") has no spoofs and gets no row.

    With ``pooled=True`` the first row, key ``"pooled"``, holds all trials. The other rows come
    in sorted order of the group names (as strings). Keys are plain Python values.
    """
    score_arr, is_bona, is_spoof = split_by_label(scores, labels)
    group_arr = np.asarray(groups, dtype=object).ravel()
    if group_arr.size != score_arr.size:
        raise ValueError(f"got {score_arr.size} scores but {group_arr.size} groups")
    all_bona = score_arr[is_bona]

    table: dict[Hashable, dict[str, Any]] = {}
    if pooled:
        table[POOLED] = _metrics(all_bona, score_arr[is_spoof], params)
    names = sorted({python_scalar(g) for g in group_arr}, key=str)
    if pooled and POOLED in names:
        raise ValueError(f"a group is named {POOLED!r}; pass pooled=False or rename it")
    for name in names:
        in_group = group_arr == name
        spoof = score_arr[in_group & is_spoof]
        if spoof.size == 0:
            continue  # bonafide-only group, e.g. attack "-"
        own_bona = score_arr[in_group & is_bona]
        bona = own_bona if own_bona.size else all_bona
        table[name] = _metrics(bona, spoof, params)
    return table


def paired_bootstrap_diff(
    scores_a: Sequence[float] | np.ndarray,
    scores_b: Sequence[float] | np.ndarray,
    labels: Sequence[int] | Sequence[str] | np.ndarray,
    metric: str = "eer",
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, float]:
    """Difference ``metric(b) - metric(a)`` of two systems scored on the SAME trials, with a
    paired percentile bootstrap: each resample draws trials (stratified by class) and scores
    both systems on them, so trial difficulty cancels and the interval is much tighter than
    two independent intervals. ``p_value`` is the two-sided bootstrap p-value of no difference.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: expected one of {sorted(METRICS)}")
    a, is_bona, is_spoof = split_by_label(scores_a, labels)
    b = np.asarray(scores_b, dtype=np.float64)
    if b.shape != a.shape:
        raise ValueError(f"the two systems scored different trials: {a.shape} vs {b.shape}")
    fn = METRICS[metric]
    bona_idx, spoof_idx = np.flatnonzero(is_bona), np.flatnonzero(is_spoof)
    if bona_idx.size == 0 or spoof_idx.size == 0:
        raise ValueError("paired_bootstrap_diff needs bonafide and spoof trials")
    observed = fn(b[is_bona], b[is_spoof]) - fn(a[is_bona], a[is_spoof])
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_boot)
    for k in range(n_boot):
        bi = bona_idx[rng.integers(0, bona_idx.size, bona_idx.size)]
        si = spoof_idx[rng.integers(0, spoof_idx.size, spoof_idx.size)]
        diffs[k] = fn(b[bi], b[si]) - fn(a[bi], a[si])
    low, high = np.quantile(diffs, [alpha / 2, 1.0 - alpha / 2])
    p_value = min(1.0, 2 * min(np.mean(diffs <= 0), np.mean(diffs >= 0)) + 1.0 / (n_boot + 1))
    return {"diff": float(observed), "low": float(low), "high": float(high), "p_value": float(p_value)}


def mean_ci(values: list[float], level: float = 0.95) -> dict:
    """Mean over runs (seeds) with a Student-t interval: ``low``/``high`` are None for one run.

    The seed-level counterpart of ``bootstrap_ci`` (which resamples trials within one run)."""
    arr = np.asarray(values, dtype=float)
    out = {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if arr.size > 1 else None,
           "n": int(arr.size), "low": None, "high": None}
    if arr.size > 1:
        half = stats.t.ppf(0.5 + level / 2, arr.size - 1) * arr.std(ddof=1) / np.sqrt(arr.size)
        out["low"], out["high"] = float(arr.mean() - half), float(arr.mean() + half)
    return out


def bootstrap_ci(
    scores: Sequence[float] | np.ndarray,
    labels: Sequence[int] | Sequence[str] | np.ndarray,
    metric: str | Callable[[np.ndarray, np.ndarray], float] = "eer",
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap ``(low, high)`` confidence interval, level ``1 - alpha``.

    Bonafide and spoof trials are resampled separately (stratified: each resample keeps both
    class sizes). ``metric`` is a name in :data:`METRICS` (``"eer"``, ``"min_dcf"``,
    ``"act_dcf"``, ``"cllr"``, ``"min_cllr"``) or a function ``f(bona, spoof) -> float``. The
    same ``seed`` gives the same interval.
    """
    if isinstance(metric, str):
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r}: expected one of {sorted(METRICS)}")
        fn = METRICS[metric]
    elif callable(metric):
        fn = metric
    else:
        raise TypeError(f"metric must be a name or a callable, not {type(metric).__name__}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")

    score_arr, is_bona, is_spoof = split_by_label(scores, labels)
    bona = as_scores(score_arr[is_bona], "bonafide", "bootstrap_ci")
    spoof = as_scores(score_arr[is_spoof], "spoof", "bootstrap_ci")
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    for b in range(n_boot):
        values[b] = fn(
            bona[rng.integers(0, bona.size, bona.size)],
            spoof[rng.integers(0, spoof.size, spoof.size)],
        )
    low, high = np.quantile(values, [alpha / 2, 1.0 - alpha / 2])
    return float(low), float(high)


def compute_metrics_for_trainer(eval_pred) -> dict[str, float]:
    """``transformers.Trainer(compute_metrics=compute_metrics_for_trainer)``.

    ``eval_pred`` is an ``EvalPrediction`` (or a ``(predictions, label_ids)`` pair) whose
    predictions are logits of shape (N, 2) in the order (bonafide, spoof) - a tuple of arrays
    is accepted and its first element used - and label_ids are 0 (bonafide) / 1 (spoof). The
    score is ``logit_bonafide - logit_spoof`` (the log-odds of bonafide). Returns
    ``{"eer", "min_dcf", "cllr"}``.
    """
    if hasattr(eval_pred, "predictions"):
        logits, label_ids = eval_pred.predictions, eval_pred.label_ids
    else:
        logits, label_ids = eval_pred
    if isinstance(logits, (tuple, list)):
        logits = logits[0]
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] != 2:
        raise ValueError(
            f"expected logits of shape (N, 2) ordered (bonafide, spoof), got {logits.shape}"
        )
    score_arr, is_bona, is_spoof = split_by_label(logits[:, 0] - logits[:, 1], label_ids)
    bona, spoof = score_arr[is_bona], score_arr[is_spoof]
    return {
        "eer": compute_eer(bona, spoof)[0],
        "min_dcf": min_dcf(bona, spoof)[0],
        "cllr": cllr(bona, spoof),
    }


#: Folder of the ``evaluate`` metric script (``spoof_eer/spoof_eer.py``, same name as the folder).
EVALUATE_METRIC_DIR = Path(__file__).resolve().with_name("spoof_eer")


def load_evaluate_metric(**kwargs):
    """``evaluate.load`` of the package's own ``SpoofEER`` metric, from its local folder.

    Works offline: a folder holding ``<folder name>.py`` is loaded as a local script by
    evaluate 0.4.6 (copied into the HF modules cache and imported), the Hub is never contacted.
    ``kwargs`` go to ``evaluate.load`` (e.g. ``keep_in_memory=True``, ``experiment_id``).
    """
    import evaluate  # heavy import (pulls in transformers); only when asked for

    return evaluate.load(str(EVALUATE_METRIC_DIR), **kwargs)
