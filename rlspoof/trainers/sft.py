"""Supervised fine-tuning: the baseline every RL method is compared against."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rlspoof.trainers.base import SpoofTrainer


def sft_loss(logits: torch.Tensor, labels: torch.Tensor, class_weights=None,
             label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy over (bonafide, spoof); class weights counter an unbalanced corpus."""
    weight = None
    if class_weights is not None:
        weight = torch.as_tensor(class_weights, dtype=logits.dtype, device=logits.device)
    return F.cross_entropy(logits, labels, weight=weight, label_smoothing=label_smoothing)


class SFTTrainer(SpoofTrainer):
    """Cross-entropy with optional class weights and label smoothing (``SFTConfig``)."""

    def training_loss(self, model, inputs, outputs) -> torch.Tensor:
        return sft_loss(outputs["logits"], inputs["labels"], self.args.class_weights,
                        self.args.label_smoothing_factor)
