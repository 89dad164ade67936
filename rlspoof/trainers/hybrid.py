"""Hybrid schedules: loss = w(step) * cross-entropy + (1 - w(step)) * GRPO, from one forward pass.

``sft_then_grpo`` is the published hybrid (SFT, then GRPO from the SFT weights with the
reference reset to them and, with ``reset_optimizer_at_switch``, fresh AdamW moments and a
restarted learning-rate schedule, as two runs have); ``grpo_then_sft`` its reverse; ``mixed`` a constant or linearly
scheduled weight. A part whose weight is zero is not computed (no sampling, no reference pass).
"""

from __future__ import annotations

import json

import torch
from torch.optim.lr_scheduler import LambdaLR
from transformers import get_scheduler

from rlspoof.errors import ConfigError
from rlspoof.trainers.grpo import GRPOTrainer
from rlspoof.trainers.sft import sft_loss


def switch_step_of(total_steps: int, switch_step: int | None) -> int:
    """The optimizer step at which a two-phase schedule switches (None: half of the run)."""
    return total_steps // 2 if switch_step is None else switch_step


def sft_weight_at(step: int, schedule: str, total_steps: int, switch_step: int | None = None,
                  sft_weight: float = 0.5, sft_weight_end: float | None = None) -> float:
    """Weight of the cross-entropy loss at optimizer step ``step`` (0-based).

    >>> [sft_weight_at(s, "sft_then_grpo", 4) for s in range(4)]
    [1.0, 1.0, 0.0, 0.0]
    >>> sft_weight_at(5, "mixed", 11, sft_weight=1.0, sft_weight_end=0.0)
    0.5
    """
    switch = switch_step_of(total_steps, switch_step)
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


def phase_lr_factor(args, num_steps: int):
    """The learning-rate factor ``step -> float`` of ``args.lr_scheduler_type`` (with its warmup)
    over a run of ``num_steps`` steps, as a run of that length would build it."""
    probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)  # only the factor is kept
    num_steps = max(num_steps, 1)
    scheduler = get_scheduler(args.lr_scheduler_type, optimizer=probe,
                              num_warmup_steps=args.get_warmup_steps(num_steps),
                              num_training_steps=num_steps,
                              scheduler_specific_kwargs=args.lr_scheduler_kwargs)
    if not isinstance(scheduler, LambdaLR) or len(scheduler.lr_lambdas) != 1:
        raise ConfigError(f"reset_optimizer_at_switch cannot restart lr_scheduler_type "
                          f"{args.lr_scheduler_type}; set reset_optimizer_at_switch: false")
    return scheduler.lr_lambdas[0]


class HybridTrainer(GRPOTrainer):
    """``HybridConfig``: everything of GRPO, plus the schedule of the cross-entropy weight."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._switched = False
        if self.resets_optimizer_at_switch and self.is_deepspeed_enabled:
            raise ConfigError("reset_optimizer_at_switch is not supported with DeepSpeed (its "
                              "optimizer keeps partitioned state); set reset_optimizer_at_switch: false")

    @property
    def resets_optimizer_at_switch(self) -> bool:
        return self.args.schedule == "sft_then_grpo" and self.args.reset_optimizer_at_switch

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        """With ``reset_optimizer_at_switch`` the schedule is two schedules end to end, one over
        the SFT steps and one over the GRPO steps (warmup and decay each), as two runs would
        have. It is a function of the step alone, so a resumed run gets it back exactly."""
        if self.lr_scheduler is not None or not self.resets_optimizer_at_switch:
            return super().create_scheduler(num_training_steps, optimizer)
        switch = switch_step_of(num_training_steps, self.args.switch_step)
        sft, grpo = (phase_lr_factor(self.args, n) for n in (switch, num_training_steps - switch))

        def lr_factor(step: int) -> float:
            return sft(step) if step < switch else grpo(step - switch)

        self.lr_scheduler = LambdaLR(optimizer or self.optimizer, lr_factor)
        self._created_lr_scheduler = True
        return self.lr_scheduler

    def reset_optimizer_moments(self) -> None:
        """Fresh AdamW state (moments and step count, hence bias correction) for every parameter.
        Keyed on the step rather than on a flag, so a run resumed after the switch keeps the
        GRPO moments its checkpoint holds."""
        optimizer = getattr(self.optimizer, "optimizer", self.optimizer)  # accelerate's wrapper
        optimizer.state.clear()

    def sft_weight(self) -> float:
        a = self.args
        return sft_weight_at(self.state.global_step, a.schedule, self.state.max_steps or a.max_steps,
                             a.switch_step, a.sft_weight, a.sft_weight_end)

    def resume_metadata(self) -> dict[str, str]:
        return {"switched": json.dumps(self._switched)}

    def restore_metadata(self, metadata: dict[str, str]) -> None:
        """A run resumed after its switch keeps the reference and old policy of the switch."""
        self._switched = json.loads(metadata.get("switched", "false"))

    def start_grpo_phase(self, model) -> None:
        """GRPO now starts from the current (SFT) weights: so do its reference and old policy."""
        self._switched = True
        policy = self.accelerator.unwrap_model(model)
        for frozen in (self.ref_model, self.old_model):
            if frozen is not None:
                frozen.load_state_dict(policy.state_dict())

    def training_loss(self, model, inputs, outputs) -> torch.Tensor:
        logits = outputs["logits"]
        weight = self.sft_weight()
        self._metrics["sft_weight"].append(weight)
        loss = logits.new_zeros(())
        if weight > 0:
            loss = loss + weight * sft_loss(logits, inputs["labels"], self.args.class_weights,
                                            self.args.label_smoothing_factor)
        if weight < 1:
            if (self.resets_optimizer_at_switch and self.state.global_step == switch_step_of(
                    self.state.max_steps or self.args.max_steps, self.args.switch_step)):
                self.reset_optimizer_moments()  # before this step's update: nothing is lost
            if (self.args.schedule == "sft_then_grpo" and self.args.reset_reference_at_switch
                    and not self._switched):
                self.start_grpo_phase(model)
            loss = loss + (1 - weight) * self.grpo_loss(model, inputs, logits)
        return loss
