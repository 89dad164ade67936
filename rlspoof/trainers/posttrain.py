"""Supervised post-training: the step between SSL pre-training and fine-tuning.

AntiDeepfake (seed 001) is cross-entropy on a large mix of genuine and artifact speech: the
mixture is the data side (``mix_by`` / ``mix_weights`` / ``balance_labels``, RawBoost through
``augment``), so its loss is SFT's. Mix-frame post-training (seed 002) adds a frame-level head
trained on clips with spliced spans of the other class: this trainer adds that loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rlspoof.data.mixframe import frame_targets
from rlspoof.errors import RlspoofError
from rlspoof.trainers.sft import SFTTrainer, sft_loss


def frame_loss(frame_logits: torch.Tensor, sample_labels: torch.Tensor,
               frame_mask: torch.Tensor | None, geometry: tuple[int, int] | None = None) -> torch.Tensor:
    """Cross-entropy of each valid frame against its majority label (spoof if more than half of
    the samples it sees are), averaged over valid frames."""
    targets = (frame_targets(sample_labels, frame_logits.shape[1], geometry) > 0.5).long()
    per_frame = F.cross_entropy(frame_logits.float().transpose(1, 2), targets, reduction="none")
    if frame_mask is None:
        return per_frame.mean()
    mask = frame_mask.to(per_frame.dtype)
    return (per_frame * mask).sum() / mask.sum().clamp(min=1.0)


class PostTrainer(SFTTrainer):
    """``PostTrainConfig``: utterance cross-entropy + ``frame_loss_weight`` x frame cross-entropy."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        weight = self.args.frame_loss_weight
        if not (model.training and weight > 0):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if "sample_labels" not in inputs:
            raise RlspoofError("frame_loss_weight > 0 needs mix-frame clips: set mixframe_prob > 0")
        policy = self.accelerator.unwrap_model(model)
        if policy.frame_head is None:
            raise RlspoofError("frame_loss_weight > 0 needs a frame head: set frame_head: true")
        logits, frame_logits, frame_mask = model(
            inputs["input_values"], inputs.get("attention_mask"), return_frames=True)
        utterance = sft_loss(logits, inputs["labels"], self.args.class_weights,
                             self.args.label_smoothing_factor)
        frames = frame_loss(frame_logits, inputs["sample_labels"], frame_mask, policy.frame_geometry)
        self._metrics["utterance_loss"].append(utterance.item())
        self._metrics["frame_loss"].append(frames.item())
        loss = self.check_finite(utterance + weight * frames, inputs)
        return (loss, {"logits": logits}) if return_outputs else loss

