"""Hybrid schedules: loss = w(step) * cross-entropy + (1 - w(step)) * GRPO, from one forward pass.

``sft_then_grpo`` is the published hybrid (SFT, then GRPO from the SFT weights with the
reference reset to them); ``grpo_then_sft`` its reverse; ``mixed`` a constant or linearly
scheduled weight. A part whose weight is zero is not computed (no sampling, no reference pass).
"""

from __future__ import annotations

import torch

from rlspoof.trainers.grpo import GRPOTrainer
from rlspoof.trainers.sft import sft_loss


def sft_weight_at(step: int, schedule: str, total_steps: int, switch_step: int | None = None,
                  sft_weight: float = 0.5, sft_weight_end: float | None = None) -> float:
    """Weight of the cross-entropy loss at optimizer step ``step`` (0-based).

    >>> [sft_weight_at(s, "sft_then_grpo", 4) for s in range(4)]
    [1.0, 1.0, 0.0, 0.0]
    >>> sft_weight_at(5, "mixed", 11, sft_weight=1.0, sft_weight_end=0.0)
    0.5
    """
    switch = total_steps // 2 if switch_step is None else switch_step
    if schedule == "sft_then_grpo":
        return 1.0 if step < switch else 0.0
    if schedule == "grpo_then_sft":
        return 0.0 if step < switch else 1.0
    if schedule == "mixed":
        if sft_weight_end is None or total_steps <= 1:
            return float(sft_weight)
        progress = min(step / (total_steps - 1), 1.0)
        return float(sft_weight + (sft_weight_end - sft_weight) * progress)
    raise ValueError(f"unknown schedule {schedule!r}")


class HybridTrainer(GRPOTrainer):
    """``HybridConfig``: everything of GRPO, plus the schedule of the cross-entropy weight."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._switched = False

    def sft_weight(self) -> float:
        a = self.args
        return sft_weight_at(self.state.global_step, a.schedule, self.state.max_steps or a.max_steps,
                             a.switch_step, a.sft_weight, a.sft_weight_end)

    def start_grpo_phase(self, model) -> None:
        """GRPO now starts from the current (SFT) weights: so do its reference and old policy."""
        self._switched = True
        policy = self.accelerator.unwrap_model(model)
        for frozen in (self.ref_model, self.old_model):
            if frozen is not None:
                frozen.load_state_dict(policy.state_dict())

    def training_loss(self, model, inputs, logits) -> torch.Tensor:
        weight = self.sft_weight()
        self._metrics["sft_weight"].append(weight)
        loss = logits.new_zeros(())
        if weight > 0:
            loss = loss + weight * sft_loss(logits, inputs["labels"], self.args.class_weights,
                                            self.args.label_smoothing_factor)
        if weight < 1:
            if (self.args.schedule == "sft_then_grpo" and self.args.reset_reference_at_switch
                    and not self._switched):
                self.start_grpo_phase(model)
            loss = loss + (1 - weight) * self.grpo_loss(model, inputs, logits)
        return loss
