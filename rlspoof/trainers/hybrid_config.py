"""``HybridConfig``: the recipe keys of SFT and GRPO in one run (schedules)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rlspoof.errors import ConfigError
from rlspoof.recipe import one_of
from rlspoof.trainers.grpo_config import GRPOConfig


@dataclass
class HybridConfig(GRPOConfig):
    """SFT and GRPO in one run: loss = w(step) * CE + (1 - w(step)) * GRPO.

    One schedule field covers the published hybrid (``sft_then_grpo``), its reverse and mixed
    losses, so a new schedule is a recipe value, not a new trainer.
    """

    _has_cross_entropy = True  # the CE part reads class_weights and label_smoothing_factor

    method: str = field(default="hybrid", metadata={"help": "Training method (hybrid)."})
    schedule: str = field(
        default="sft_then_grpo",
        metadata={"help": "sft_then_grpo | grpo_then_sft (switch at switch_step) | mixed "
                          "(weight sft_weight, moving linearly to sft_weight_end if set)."})
    switch_step: int | None = field(
        default=None, metadata={"help": "Optimizer step of the switch (None: half of max_steps)."})
    sft_weight: float = field(default=0.5, metadata={"help": "mixed: weight of the CE loss."})
    sft_weight_end: float | None = field(
        default=None, metadata={"help": "mixed: CE weight at the last step (linear; None: constant)."})
    reset_reference_at_switch: bool = field(
        default=True,
        metadata={"help": "sft_then_grpo: the reference becomes the policy at the switch, as when "
                          "GRPO starts from an SFT checkpoint."})
    reset_optimizer_at_switch: bool = field(
        default=True,
        metadata={"help": "sft_then_grpo: fresh AdamW moments at the switch and the learning-rate "
                          "schedule (warmup, decay) run twice, once over the SFT steps and once over "
                          "the GRPO steps, as two runs (GRPO started from an SFT folder) get. On by "
                          "default, like reset_reference_at_switch: the published hybrid is two runs, "
                          "and SFT's moments (scaled to cross-entropy gradients) and its decayed "
                          "learning rate would otherwise set GRPO's first steps. false: one optimizer "
                          "and one schedule over the whole run."})

    def __post_init__(self) -> None:
        one_of("schedule", self.schedule, ("sft_then_grpo", "grpo_then_sft", "mixed"))
        for name in ("sft_weight", "sft_weight_end"):
            value = getattr(self, name)
            if value is not None and not 0 <= value <= 1:
                raise ConfigError(f"{name} must be in [0, 1], got {value}")
        if self.switch_step is not None and self.switch_step < 0:
            raise ConfigError(f"switch_step must be >= 0, got {self.switch_step}")
        if self.schedule != "mixed" and self.switch_step is None and self.max_steps <= 0:
            raise ConfigError(f"schedule {self.schedule} needs switch_step (or max_steps to switch at half)")
        if (self.schedule != "mixed" and self.switch_step is not None
                and 0 < self.max_steps <= self.switch_step):
            raise ConfigError(f"switch_step {self.switch_step} is not before max_steps {self.max_steps}: "
                              f"the {self.schedule} run would never switch")
        super().__post_init__()
