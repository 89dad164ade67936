"""Evaluation metrics with the ASVspoof 5 conventions (higher score = more bonafide)."""

from rlspoof.metrics.calibration import cllr, min_cllr, pav_llrs
from rlspoof.metrics.dcf import DCFParams, accuracy_at, act_dcf, min_dcf
from rlspoof.metrics.drift import (
    DriftResult,
    calibrate_threshold,
    detect_drift,
    score_drift,
    sliced_wasserstein,
)
from rlspoof.metrics.eer import compute_eer, compute_eer_from_labels, det_curve
from rlspoof.metrics.forgetting import (
    SuiteSet,
    average_forgetting,
    backward_transfer,
    forgetting_report,
    forward_transfer,
)
from rlspoof.metrics.report import (
    bootstrap_ci,
    compute_metrics_for_trainer,
    grouped_metrics,
    load_evaluate_metric,
    mean_ci,
    paired_bootstrap_diff,
    score_metrics,
)

__all__ = [
    "compute_eer",
    "compute_eer_from_labels",
    "det_curve",
    "DCFParams",
    "min_dcf",
    "act_dcf",
    "accuracy_at",
    "cllr",
    "min_cllr",
    "pav_llrs",
    "score_metrics",
    "grouped_metrics",
    "bootstrap_ci",
    "compute_metrics_for_trainer",
    "load_evaluate_metric",
    "mean_ci",
    "paired_bootstrap_diff",
    "forgetting_report",
    "SuiteSet",
    "backward_transfer",
    "average_forgetting",
    "forward_transfer",
    "score_drift",
    "sliced_wasserstein",
    "detect_drift",
    "calibrate_threshold",
    "DriftResult",
]
