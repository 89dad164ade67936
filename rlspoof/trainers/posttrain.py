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
from rlspoof.trainers.sft import SFTTrainer


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

    def training_forward(self, model, inputs) -> dict[str, torch.Tensor]:
        if self.args.frame_loss_weight <= 0:
            return super().training_forward(model, inputs)
        if "sample_labels" not in inputs:
            raise RlspoofError("frame_loss_weight > 0 needs mix-frame clips: set mixframe_prob > 0")
        if self.accelerator.unwrap_model(model).frame_head is None:
            raise RlspoofError("frame_loss_weight > 0 needs a frame head: set frame_head: true")
        logits, frame_logits, frame_mask = model(
            inputs["input_values"], inputs.get("attention_mask"), return_frames=True)
        return {"logits": logits, "frame_logits": frame_logits, "frame_mask": frame_mask}

    def training_loss(self, model, inputs, outputs) -> torch.Tensor:
        utterance = super().training_loss(model, inputs, outputs)
        if "frame_logits" not in outputs:
            return utterance
        geometry = self.accelerator.unwrap_model(model).frame_geometry
        frames = frame_loss(outputs["frame_logits"], inputs["sample_labels"], outputs["frame_mask"], geometry)
        self._metrics["utterance_loss"].append(utterance.item())
        self._metrics["frame_loss"].append(frames.item())
        return utterance + self.args.frame_loss_weight * frames

