"""Evaluation metrics with the ASVspoof 5 conventions (higher score = more bonafide)."""

from rlspoof.metrics.eer import compute_eer, compute_eer_from_labels, det_curve

__all__ = ["compute_eer", "compute_eer_from_labels", "det_curve"]
